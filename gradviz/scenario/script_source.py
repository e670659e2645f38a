"""A Python script as a scenario's source: reading the file, and its header comment.

    source = read_script("lesson.py")      # text, or one ScriptSourceError line
    title, description = header(source)    # from the comment block at the top

The header is the comment block the file starts with (after a ``#!`` line and a coding line):
its first line is the title, the lines after it the description (an empty ``#`` line starts a
new paragraph). A file without one is titled by its module docstring's first line, else by its
file name. Nothing here runs the script: that is ``gradviz.training.script``'s job.
"""
from __future__ import annotations

import ast
import io
import re
import stat
import tokenize
from pathlib import Path

from .reader import NotScenarioFile, ScenarioError
from .schema import LIMITS
from .toml_source import binary_kind

__all__ = ["ScriptSourceError", "read_script", "decode_script", "header", "SCRIPT_SUFFIX"]

SCRIPT_SUFFIX = ".py"
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")


class ScriptSourceError(ScenarioError):
    """The file cannot be read as a script; ``str()`` is one line naming the file. A ScenarioError, so
    whatever opens a file (the app's Open, a drop) reports it as it reports a bad .toml file."""

    def __init__(self, message: str):
        file, _, rest = str(message).partition(": ")
        super().__init__(file, expected="a Python script that can be read", found=rest or message)
        self.args = (str(message),)

    def __reduce__(self):
        return type(self), (self.args[0],)


def read_script(path) -> str:
    """The text of the script at ``path`` (size-limited; UTF-8 or its PEP 263 coding line)."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise ScriptSourceError(f"{path.name}: cannot read the file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):            # a FIFO or device would block read_bytes() forever
        from .toml_source import file_kind
        raise ScriptSourceError(f"{path.name}: expected a regular script file, found {file_kind(info.st_mode)}")
    size = info.st_size
    if size > LIMITS["max_file_bytes"]:
        raise ScriptSourceError(f"{path.name}: the file has {size} bytes, more than the "
                                f"{LIMITS['max_file_bytes']} a script may have")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScriptSourceError(f"{path.name}: cannot read the file ({exc.strerror or exc})") from None
    return decode_script(data, path.name)


def decode_script(data: bytes, name: str = "script.py") -> str:
    """``data`` as text, the way Python reads a source file (BOM, coding line, else UTF-8); binary
    data (an image, an archive) is "not a scenario file"."""
    kind = binary_kind(data)
    if kind is not None:
        raise ScriptSourceError(str(NotScenarioFile(name, found=kind)))
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc).splitlines()[0]
        raise ScriptSourceError(f"{name}: the file is not text Python can read ({reason})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise ScriptSourceError(f"{name}: the file holds NUL bytes: it is not a Python script")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def header(source: str, name: str = "") -> tuple[str, str]:
    """``(title, description)`` from the comment block at the top of ``source``."""
    lines = source.splitlines()
    i = 0
    while i < len(lines) and i < 2 and (lines[i].startswith("#!") or _CODING.match(lines[i])):
        i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    block: list[str] = []
    while i < len(lines) and lines[i].lstrip().startswith("#"):
        block.append(lines[i].lstrip()[1:].removeprefix(" ").rstrip())
        i += 1
    while block and not block[0].strip():
        block.pop(0)
    if block:
        title = block[0].strip()
        paragraphs, current = [], []
        for text in block[1:]:
            if text.strip():
                current.append(text.strip())
            elif current:
                paragraphs.append(" ".join(current))
                current = []
        if current:
            paragraphs.append(" ".join(current))
        return title, "\n\n".join(paragraphs)
    doc = _docstring(source)
    if doc:
        first, _, rest = doc.strip().partition("\n")
        return first.strip(), " ".join(rest.split())
    return (Path(name).stem if name else "script"), ""


def _docstring(source: str) -> str | None:
    try:
        return ast.get_docstring(ast.parse(source))
    except (SyntaxError, ValueError):
        return None
