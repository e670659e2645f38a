"""Saving behaves like an editor's save: through symlinks, keeping permissions, refusing
read-only targets, never naming the temporary file (issue: robustness, files)."""
from __future__ import annotations

import os
import stat

import pytest

from gradviz.scenario import DEFAULT_SCENARIO, bundled_path, load
from gradviz.scenario.reader import ScenarioError
from gradviz.scenario.saver import save, write_text_atomic

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and symlinks")


def _scenario():
    return load(bundled_path(DEFAULT_SCENARIO))


@posix_only
def test_save_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.toml"
    write_text_atomic(real, "old\n")
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    save(_scenario(), link)
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert "[scenario]" in real.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@posix_only
def test_existing_file_keeps_its_mode_and_new_file_follows_umask(tmp_path):
    existing = tmp_path / "shared.toml"
    existing.write_text("x")
    os.chmod(existing, 0o640)
    save(_scenario(), existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    old = os.umask(0o027)
    try:
        fresh = save(_scenario(), tmp_path / "fresh.toml")
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640       # 0666 & ~0027


@posix_only
def test_read_only_target_is_refused_with_one_line_naming_the_file(tmp_path):
    target = tmp_path / "locked.toml"
    target.write_text("keep me")
    os.chmod(target, 0o444)
    with pytest.raises(ScenarioError) as info:
        save(_scenario(), target)
    message = str(info.value)
    assert "locked.toml" in message and "read-only" in message
    assert "\n" not in message and ".tmp" not in message
    assert target.read_text() == "keep me"


@posix_only
def test_unwritable_directory_error_never_names_the_temporary_file(tmp_path, monkeypatch):
    import tempfile

    def fail(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".x.toml.abc.tmp"))
    monkeypatch.setattr(tempfile, "mkstemp", fail)
    with pytest.raises(ScenarioError) as info:
        save(_scenario(), tmp_path / "x.toml")
    assert ".tmp" not in str(info.value) and "x.toml" in str(info.value)


def test_a_directory_or_fifo_is_not_a_save_target(tmp_path):
    with pytest.raises(ScenarioError, match="regular file"):
        write_text_atomic(tmp_path, "x")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.toml"
        os.mkfifo(fifo)
        with pytest.raises(ScenarioError, match="special file"):
            write_text_atomic(fifo, "x")
