"""The core never imports Qt or the UI (ARCHITECTURE.md): checked in a clean interpreter."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("PySide6", "pyqtgraph", "ui", "shiboken6")

# One clean interpreter imports every core module in turn and notes, after each, the forbidden
# modules that import brought in: a module that pulls in Qt is named whichever order they come in
# (a module already imported by an earlier one adds nothing new, and the earlier one is named).
# One interpreter for all: the same check as an interpreter per module, since a forbidden module
# imported by any of them is in sys.modules after all of them (and 74 interpreters took 99 s).
PROBE = """
import importlib, json, sys
forbidden = tuple(sys.argv[1].split(","))
blamed, seen = {}, set()
for module in sys.argv[2:]:
    try:
        importlib.import_module(module)
    except Exception as exc:
        blamed[module] = f"failed to import: {type(exc).__name__}: {exc}"
        continue
    bad = sorted(m for m in sys.modules if m.split(".")[0] in forbidden and m not in seen)
    if bad:
        blamed[module] = ", ".join(bad)
        seen.update(bad)
print(json.dumps(blamed))
"""


def core_modules():
    return sorted("gradviz." + ".".join(p.relative_to(ROOT / "gradviz").with_suffix("").parts)
                  for p in (ROOT / "gradviz").rglob("*.py") if p.name != "__main__.py")


def test_no_core_module_imports_qt():
    modules = ["gradviz"] + [m.removesuffix(".__init__") for m in core_modules()]
    assert len(modules) > 50                              # the walk found the package
    r = subprocess.run([sys.executable, "-c", PROBE, ",".join(FORBIDDEN), *modules], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    blamed = json.loads(r.stdout)
    assert blamed == {}, "\n".join(f"{m} imported {what}" for m, what in blamed.items())


def test_the_check_names_a_module_that_imports_qt(tmp_path):
    """The probe itself: a package whose second module imports a forbidden name is named."""
    pkg = tmp_path / "fakecore"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "clean.py").write_text("import json\n")
    (pkg / "dirty.py").write_text("import fakeqt\n")
    (tmp_path / "fakeqt.py").write_text("")
    r = subprocess.run([sys.executable, "-c", PROBE, "fakeqt", "fakecore.clean", "fakecore.dirty"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert json.loads(r.stdout) == {"fakecore.dirty": "fakeqt"}


def test_no_core_source_mentions_qt():
    for path in (ROOT / "gradviz").rglob("*.py"):
        text = path.read_text()
        for name in FORBIDDEN[:2]:
            assert f"import {name}" not in text and f"from {name}" not in text, path
        assert "from ui" not in text and "import ui" not in text, path
