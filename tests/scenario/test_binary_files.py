"""A binary file (a picture, an archive) opened or dropped by mistake: one line saying it is not a
scenario file, naming what it is, from the loader, the script reader and the app's open and drop."""
from __future__ import annotations

import pickle
import struct
import zlib

import pytest

from gradviz.scenario import ScenarioError, load
from gradviz.scenario.reader import NotScenarioFile
from gradviz.scenario.script_source import ScriptSourceError, decode_script, read_script
from gradviz.scenario.toml_source import binary_kind
from tests.ui.conftest import _isolated_settings, make_window, no_dialogs  # noqa: F401  (the app's fixtures)


def png_bytes() -> bytes:
    """A real 2x2 PNG image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


EXPECTED = "not a scenario file (expected a .toml lesson or a .py script, found "


def test_a_png_is_not_a_scenario_file_through_the_loader(tmp_path):
    path = tmp_path / "picture.png"
    path.write_bytes(png_bytes())
    with pytest.raises(ScenarioError) as info:
        load(path)
    message = str(info.value)
    assert message == f"{path}: {EXPECTED}a PNG image)"
    assert "\n" not in message and "UTF-8" not in message and "0x89" not in message
    assert isinstance(info.value, NotScenarioFile)
    assert str(pickle.loads(pickle.dumps(info.value))) == message      # crosses the worker process
    with pytest.raises(ScenarioError, match="not a scenario file"):
        load(png_bytes(), name="picture.png")                           # bytes given directly


def test_a_png_named_toml_or_py_says_the_same(tmp_path):
    toml = tmp_path / "lesson.toml"
    toml.write_bytes(png_bytes())
    with pytest.raises(ScenarioError, match=r"lesson\.toml: not a scenario file .*found a PNG image\)$"):
        load(toml)
    script = tmp_path / "lesson.py"
    script.write_bytes(png_bytes())
    with pytest.raises(ScriptSourceError) as info:
        read_script(script)
    assert str(info.value) == f"lesson.py: {EXPECTED}a PNG image)"
    assert isinstance(info.value, ScenarioError)      # whatever reports a bad .toml reports it too


@pytest.mark.parametrize("data, kind", [
    (png_bytes(), "a PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a JPEG image"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
    (b"PK\x03\x04\x14\x00\x00\x00", "a ZIP archive"),
    (bytes(range(256)) * 4, "binary data"),
    (b"[scenario]\ntitle = \"x\"\x00\n", "binary data"),
])
def test_binary_kinds(data, kind):
    assert binary_kind(data) == kind
    with pytest.raises(ScriptSourceError, match=f"found {kind}"):
        decode_script(data, "x.py")


@pytest.mark.parametrize("data", [
    b'[scenario]\ntitle = "caf\xc3\xa9"\n',            # UTF-8 text
    b'[scenario]\ntitle = "caf\xe9"\n',                 # Latin-1 text: text, in the wrong encoding
    b"\xff\xfe[\x00s\x00",                              # UTF-16 with its byte-order mark
    b"",
])
def test_text_in_any_encoding_is_not_called_binary(data):
    assert binary_kind(data) is None


def test_text_in_the_wrong_encoding_still_names_the_byte(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[scenario]\ntitle = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match="UTF-8") as info:
        load(path)
    assert info.value.line == 2 and "not a scenario file" not in str(info.value)
    utf16 = tmp_path / "utf16.toml"
    utf16.write_bytes("[scenario]\n".encode("utf-16"))
    with pytest.raises(ScenarioError, match="expected UTF-8 text, found UTF-16 text"):
        load(utf16)


# -- through the app: File ▸ Open's path and a drop on the window ------------------------------------

def test_the_app_says_a_dropped_png_is_not_a_scenario_file(make_window, no_dialogs, tmp_path, qtbot):  # noqa: F811
    from PySide6 import QtCore, QtGui

    picture = tmp_path / "picture.png"
    picture.write_bytes(png_bytes())
    window = make_window()
    title = window.document.scenario.title

    assert window.load(picture) == f"{picture}: {EXPECTED}a PNG image)"
    script = tmp_path / "picture.py"
    script.write_bytes(png_bytes())
    assert window.load(script) == f"picture.py: {EXPECTED}a PNG image)"     # no exception escapes

    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(picture))])
    pos = QtCore.QPointF(window.rect().center())
    actions = QtCore.Qt.DropAction.CopyAction
    buttons, mods = QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier
    window.dragEnterEvent(QtGui.QDragEnterEvent(pos.toPoint(), actions, mime, buttons, mods))
    window.dropEvent(QtGui.QDropEvent(pos, actions, mime, buttons, mods))
    qtbot.waitUntil(lambda: bool(no_dialogs), timeout=5000)
    assert no_dialogs[-1] == f"{picture}: {EXPECTED}a PNG image)"
    assert "UTF-8" not in no_dialogs[-1] and "0x89" not in no_dialogs[-1]
    assert window.document.scenario.title == title                 # the open lesson stays
