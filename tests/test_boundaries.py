"""The core never imports Qt or the UI (ARCHITECTURE.md): checked in a clean interpreter."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("PySide6", "pyqtgraph", "ui", "shiboken6")


def core_modules():
    return sorted("gradviz." + ".".join(p.relative_to(ROOT / "gradviz").with_suffix("").parts)
                  for p in (ROOT / "gradviz").rglob("*.py") if p.name != "__main__.py")


@pytest.mark.parametrize("module", ["gradviz"] + [m.removesuffix(".__init__") for m in core_modules()])
def test_core_module_imports_no_qt(module):
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"{module} imported {r.stdout.strip() or r.stderr.strip()[-500:]}"


def test_no_core_source_mentions_qt():
    for path in (ROOT / "gradviz").rglob("*.py"):
        text = path.read_text()
        for name in FORBIDDEN[:2]:
            assert f"import {name}" not in text and f"from {name}" not in text, path
        assert "from ui" not in text and "import ui" not in text, path
