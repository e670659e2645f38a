"""The lessons that ship with GradViz: found as package data, listed, and looked up by name.

TOML scenarios live in the repository's ``assets/scenarios/``, PyTorch scripts in
``assets/scripts/``; pyproject.toml installs ``assets/`` as the package ``gradviz.assets`` (an
editable install maps that package onto the folder), so ``importlib.resources`` finds them from
any working directory, installed or not editable.

    bundled()            # the TOML scenarios          bundled_scripts()     # the scripts
    find_bundled(stem)   # one scenario, or None       find_bundled_script(stem)
    lessons()            # both, as Lesson(name, title, path, kind): for ``list`` and the Open dialog
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .reader import ScenarioError, suggest
from .script_source import ScriptSourceError, header, read_script

PACKAGE = "gradviz.assets"
DEFAULT_SCENARIO = "01_tutorial_wx_b"


# A checkout run without installing (``python main.py`` with only the dependencies installed) has
# no gradviz.assets package: its files are then the checkout's own assets/ folder.
_CHECKOUT_ASSETS = Path(__file__).resolve().parents[2] / "assets"


def _assets(folder: str, what: str) -> Path:
    try:
        return Path(str(resources.files(PACKAGE) / folder))
    except ModuleNotFoundError:
        if (_CHECKOUT_ASSETS / folder).is_dir():
            return _CHECKOUT_ASSETS / folder
        raise ScenarioError(PACKAGE, expected=f"the bundled {what} installed with GradViz "
                            "(pip install .)", found=f"no package {PACKAGE}") from None


def bundled_dir() -> Path:
    """The folder of the bundled scenario files (a folder on disk: pip installs packages unzipped)."""
    return _assets("scenarios", "scenarios")


def scripts_dir() -> Path:
    """The folder of the bundled PyTorch scripts."""
    return _assets("scripts", "scripts")


def bundled() -> list[Path]:
    """The bundled scenario files (``assets/scenarios/*.toml``), sorted by name."""
    return sorted(bundled_dir().glob("*.toml"))


def find_bundled(name: str) -> Path | None:
    """The bundled scenario called ``name`` (its stem, ``.toml`` optional), or None."""
    stem = str(name).removesuffix(".toml")
    return next((path for path in bundled() if path.stem == stem), None)


def bundled_path(stem: str) -> Path:
    """The bundled scenario called ``stem`` (e.g. ``"04_rosenbrock_race"``; ``.toml`` optional);
    a ScenarioError naming the bundled ones (and the closest) if there is none."""
    path = find_bundled(stem)
    if path is None:
        stem = str(stem).removesuffix(".toml")
        stems = [p.stem for p in bundled()]
        raise ScenarioError(str(bundled_dir()), expected=f"one of the bundled scenarios: {', '.join(stems)}",
                            found=f"{stem!r}{suggest(stem, stems)}")
    return path


def bundled_scripts() -> list[Path]:
    """The bundled PyTorch scripts (``assets/scripts/*.py``), sorted by name."""
    return sorted(path for path in scripts_dir().glob("*.py") if not path.name.startswith("_"))


def find_bundled_script(name: str) -> Path | None:
    """The bundled script called ``name`` (its stem, ``.py`` optional), or None."""
    stem = str(name).removesuffix(".py")
    return next((path for path in bundled_scripts() if path.stem == stem), None)


@dataclass(frozen=True)
class Lesson:
    """One bundled lesson: ``name`` is its file's stem, ``kind`` "scenario" (TOML) or "script"."""
    name: str
    title: str
    path: Path
    kind: str


def _scenario_title(path: Path) -> str:
    """``[scenario] title`` read without loading (or validating) the whole scenario."""
    try:
        title = tomllib.loads(path.read_text(encoding="utf-8")).get("scenario", {}).get("title")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        title = None
    return title if isinstance(title, str) and title.strip() else path.stem


def _script_title(path: Path) -> str:
    """The first line of the script's header comment (``script_source.header``)."""
    try:
        return header(read_script(path), path.name)[0] or path.stem
    except ScriptSourceError:
        return path.stem


def lessons() -> list[Lesson]:
    """Every bundled lesson with its title: the TOML scenarios, then the scripts, each by name."""
    return ([Lesson(p.stem, _scenario_title(p), p, "scenario") for p in bundled()]
            + [Lesson(p.stem, _script_title(p), p, "script") for p in bundled_scripts()])
