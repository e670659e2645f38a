"""What can be said about a training script without running it (``python -m gradviz validate``).

A script is a program: validating one must not execute it. So ``check`` compiles it and reads its
syntax tree: every module it imports must exist (``torch.*`` modules in GradViz's namespace, other
modules where the worker runs), and every ``torch`` name it reaches through an imported module
(``nn.Conv2d``, ``torch.fft.rfft``, ``from torch.nn import Conv2d``) must be one the core has. What
depends on values (shapes, a loop that never ends) only a run can tell.
"""
from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

from .scenario.bundled import bundled_dir
from .training import torch_namespace

__all__ = ["check", "bundled_scripts", "find_bundled_script"]


def bundled_scripts() -> list[Path]:
    """The bundled scripts (``assets/scripts/*.py``, beside the bundled scenarios), sorted by name."""
    try:
        folder = bundled_dir().parent / "scripts"
    except Exception:                 # no bundled assets installed: no scripts either
        return []
    return sorted(path for path in folder.glob("*.py") if not path.name.startswith("_"))


def find_bundled_script(name: str) -> Path | None:
    """The bundled script called ``name`` (its stem, ``.py`` optional), or None."""
    stem = str(name).removesuffix(".py")
    return next((path for path in bundled_scripts() if path.stem == stem), None)


def check(source: str, path: str) -> tuple[int, str] | None:
    """The first problem in ``source`` as ``(line, message)``, or None when none is visible."""
    try:
        tree = compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        compile(tree, path, "exec", dont_inherit=True)          # the checks only the compiler makes
    except SyntaxError as exc:
        return exc.lineno or 1, f"SyntaxError: {exc.msg}"
    except ValueError as exc:                                   # e.g. a NUL byte
        return 1, f"SyntaxError: {exc}"
    problems = _Checker(Path(path).resolve().parent).visit_all(tree)
    return min(problems, key=lambda p: p[0]) if problems else None


def _torch_modules() -> dict[str, types.ModuleType]:
    return torch_namespace._namespaces()


def _is_torch(name: str) -> bool:
    return name == "torch" or name.startswith("torch.")


class _Checker(ast.NodeVisitor):
    def __init__(self, folder: Path):
        self.folder = folder
        self.aliases: dict[str, types.ModuleType] = {}     # local name -> torch namespace module
        self.problems: list[tuple[int, str]] = []

    def visit_all(self, tree: ast.AST) -> list[tuple[int, str]]:
        # imports first (anywhere in the file), so a name used above its import still resolves
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self._import(node)
        inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and id(node) not in inner:    # whole chains only
                self._attribute(node)
        return self.problems

    # -- imports ----------------------------------------------------------------------------------

    def _module_problem(self, name: str) -> str | None:
        if _is_torch(name):
            if name in _torch_modules():
                return None
            known = ", ".join(sorted(_torch_modules()))
            return f"ModuleNotFoundError: {name} is not supported by GradViz's core (supported: {known})"
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in sys.builtin_module_names:
            return None
        if (self.folder / f"{top}.py").is_file() or (self.folder / top).is_dir():
            return None                                   # a module beside the script
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        return None if found else f"ModuleNotFoundError: No module named '{top}'"

    def _import(self, node) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                problem = self._module_problem(alias.name)
                if problem:
                    self.problems.append((node.lineno, problem))
                elif _is_torch(alias.name):
                    if alias.asname:
                        self.aliases[alias.asname] = _torch_modules()[alias.name]
                    else:
                        self.aliases["torch"] = _torch_modules()["torch"]
            return
        if node.level or not node.module:
            return                                        # a relative import: the script's own package
        problem = self._module_problem(node.module)
        if problem:
            self.problems.append((node.lineno, problem))
            return
        if not _is_torch(node.module):
            return
        module = _torch_modules()[node.module]
        for alias in node.names:
            if alias.name == "*":
                continue
            try:
                value = getattr(module, alias.name)
            except AttributeError as exc:
                self.problems.append((node.lineno, _attribute_message(exc)))
                continue
            if isinstance(value, types.ModuleType):
                self.aliases[alias.asname or alias.name] = value

    # -- torch.nn.Conv2d ----------------------------------------------------------------------------

    def _attribute(self, node: ast.Attribute) -> None:
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base)
            base = base.value
        if not isinstance(base, ast.Name) or base.id not in self.aliases:
            return
        chain.reverse()
        value = self.aliases[base.id]
        for link in chain:
            if not isinstance(value, types.ModuleType):
                return
            if link is node and isinstance(node.ctx, ast.Store | ast.Del):
                return                                    # torch.backends.cudnn.benchmark = True
            try:
                value = getattr(value, link.attr)
            except AttributeError as exc:
                self.problems.append((link.lineno, _attribute_message(exc)))
                return


def _attribute_message(exc: AttributeError) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, torch_namespace.UnsupportedAPI) else f"AttributeError: {text}"
