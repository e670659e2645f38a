"""Packaging: a plain (not editable) install has every package and the bundled scenarios, and its
command line works from any folder."""
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gradviz.scenario import DEFAULT_SCENARIO, bundled
from gradviz.scenario.bundled import bundled_scripts

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_of_the_tree_is_listed_in_pyproject():
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("gradviz", "ui") for init in (ROOT / top).rglob("__init__.py")}
    missing = found - set(SETUPTOOLS["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert set(SETUPTOOLS["packages"]) == found | {"gradviz.assets"}


def test_the_bundled_scenarios_are_package_data_of_gradviz_assets():
    assert SETUPTOOLS["package-dir"] == {"gradviz.assets": "assets"}
    patterns = SETUPTOOLS["package-data"]["gradviz.assets"]
    shipped = {p for pattern in patterns for p in (ROOT / "assets").glob(pattern)}
    assert sorted(shipped) == sorted([*(ROOT / "assets" / "scenarios").iterdir(),
                                      *(ROOT / "assets" / "scripts").iterdir()])
    assert sorted(p.name for p in [*bundled(), *bundled_scripts()]) == sorted(p.name for p in shipped)


def _can_build_a_wheel() -> bool:
    return (importlib.util.find_spec("setuptools.command.bdist_wheel") is not None
            or importlib.util.find_spec("wheel") is not None)


@pytest.mark.skipif(not _can_build_a_wheel(), reason="setuptools cannot build a wheel offline here")
def test_a_plain_install_runs_from_another_folder(tmp_path):
    source, site, elsewhere = tmp_path / "source", tmp_path / "site", tmp_path / "elsewhere"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "tests", "benchmarks", "test-artifacts", "build", "dist", "*.egg-info",
        "__pycache__", ".hypothesis", ".pytest_cache"))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-build-isolation", "--target", str(site), str(source)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "", "QT_QPA_PLATFORM": "offscreen"}

    def python(*args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=elsewhere,
                              env=env, timeout=120)

    where = python("-c", "import importlib; print('\\n'.join(importlib.import_module(p).__file__ "
                         f"for p in {SETUPTOOLS['packages']!r}))")
    assert where.returncode == 0, where.stderr
    assert all(Path(f).is_relative_to(site) for f in where.stdout.split()), where.stdout
    listing = python("-m", "gradviz", "list")
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    assert [line.split()[0] for line in listing.stdout.splitlines()] == \
        [p.stem for p in [*bundled(), *bundled_scripts()]]
    run = python("-m", "gradviz", "run", DEFAULT_SCENARIO, "--steps", "3")
    assert run.returncode == 0 and "steps: 3" in run.stdout, run.stderr
    # a bundled script runs in the worker process, from the installed package
    script = python("-m", "gradviz", "run", "01_tutorial_loop", "--timeout", "60")
    assert script.returncode == 0, script.stderr
    assert "w =  tensor([1.8000], requires_grad=True)" in script.stdout.splitlines(), script.stdout
    assert list(elsewhere.iterdir()) == []
