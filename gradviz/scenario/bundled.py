"""The scenarios that ship with GradViz: found as package data, listed, and looked up by name.

They live in the repository's ``assets/scenarios/``, which pyproject.toml installs as the package
``gradviz.assets`` (an editable install maps that package onto the folder), so
``importlib.resources`` finds them from any working directory, installed or not editable.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .reader import ScenarioError, suggest

PACKAGE = "gradviz.assets"
DEFAULT_SCENARIO = "01_tutorial_wx_b"


# A checkout run without installing (``python main.py`` with only the dependencies installed) has
# no gradviz.assets package: its files are then the checkout's own assets/ folder.
_CHECKOUT_ASSETS = Path(__file__).resolve().parents[2] / "assets"


def bundled_dir() -> Path:
    """The folder of the bundled scenario files (a folder on disk: pip installs packages unzipped)."""
    try:
        return Path(str(resources.files(PACKAGE) / "scenarios"))
    except ModuleNotFoundError:
        if (_CHECKOUT_ASSETS / "scenarios").is_dir():
            return _CHECKOUT_ASSETS / "scenarios"
        raise ScenarioError(PACKAGE, expected="the bundled scenarios installed with GradViz "
                            "(pip install .)", found=f"no package {PACKAGE}") from None


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
