"""A Python script as a scenario's source: reading the file, and its header comment.

    source = read_script("lesson.py")      # text, or one ScriptSourceError line
    title, description = header(source)    # from the comment block at the top

The header is the comment block the file starts with (after a ``#!`` line and a coding line):
its first line is the title, the lines after it the description (an empty ``#`` line starts a
new paragraph). A file without one is titled by its module docstring's first line, else by its
file name. Nothing here runs the script: that is ``gradviz.training.script``'s job.

A script carries its lesson's guided tour in comments, anywhere in the file (docs/scenarios.md, "Guided tours")::

    # tour: iteration=0 phase=backward node=w plot=Gradients
    #   The first backward: w.grad = -8.0, b.grad = -4.0.
    #   (each text line is indented by two spaces or more after the '#')

``tour(source, name)`` reads those stops (``TourStop``, the same as a TOML ``[[tour]]``) or raises one
ScenarioError naming the file, the line, the key and what was expected.
"""
from __future__ import annotations

import ast
import io
import re
import stat
import tokenize
from pathlib import Path

from .reader import NotScenarioFile, Reader, ScenarioError
from .schema import LIMITS, MAX_TOUR_STOPS, TourStop
from .toml_source import binary_kind

__all__ = ["ScriptSourceError", "read_script", "decode_script", "header", "tour", "SCRIPT_SUFFIX"]

SCRIPT_SUFFIX = ".py"
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")
_TOUR = re.compile(r"^[ \t]*#[ \t]?tour:(.*)$")                     # "# tour: iteration=0 ..."
_RUN = re.compile(r"^[ \t]*#[ \t]?run:[ \t]*(.*?)[ \t]*$")              # "# run: forgot zero_grad (bug)"
_TOUR_TEXT = re.compile(r"^[ \t]*#(?:[ \t]{2,}(.*\S)|[ \t]*)$")    # "#   its text", or "#" (a break)
_TOUR_FIELD = re.compile(r'\s*([A-Za-z_]\w*)=("[^"]*"|\S+)')


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
    while i < len(lines) and lines[i].lstrip().startswith("#") and not _TOUR.match(lines[i]):
        if not _RUN.match(lines[i]):             # the run's name is not part of the description
            block.append(lines[i].lstrip()[1:].removeprefix(" ").rstrip())
        i += 1
    while block and not block[0].strip():
        block.pop(0)
    if block:
        return block[0].strip(), "\n\n".join(_paragraphs(block[1:]))
    doc = _docstring(source)
    if doc:
        first, _, rest = doc.strip().partition("\n")
        return first.strip(), " ".join(rest.split())
    return (Path(name).stem if name else "script"), ""


def run_name(source: str) -> str | None:
    """The lesson name of the script's run from a ``# run: <name>`` comment line (the first one,
    anywhere in the file), or None: the run is then named after what it ran ("SGD(lr=0.1)")."""
    for line in source.splitlines():
        match = _RUN.match(line)
        if match and match.group(1):
            return " ".join(match.group(1).split())[:200]
    return None


def _docstring(source: str) -> str | None:
    try:
        return ast.get_docstring(ast.parse(source))
    except (SyntaxError, ValueError):
        return None


def tour(source: str, name: str = "script.py") -> list[TourStop]:
    """The guided tour in ``source``'s ``# tour:`` comments (see the module docstring), in order.

    Each stop's keys are a TOML ``[[tour]]`` table's (``docs/scenarios.md``), written ``key=value``
    (``plot="Parameter space"`` quoted when it has spaces); its text is the comment lines below it
    indented by two spaces or more (an empty ``#`` line between them starts a new paragraph). The
    iteration is checked against the run when the script has run, not here."""
    from .checks import OP_LABEL, TOUR_RULES  # checks needs the whole scenario layer: not at import
    lines = source.splitlines()
    stops: list[TourStop] = []
    line_of: dict[int, int] = {}
    reader = Reader(Path(name).name if name else "script.py",
                    lambda path: line_of.get(path[1]) if len(path) > 1 else None)
    i = 0
    while i < len(lines):
        match = _TOUR.match(lines[i])
        i += 1
        if not match:
            continue
        index = len(stops)
        line_of[index] = i
        where = ("tour", index)
        if index >= MAX_TOUR_STOPS:
            reader.fail(where, f"at most {MAX_TOUR_STOPS} tour stops", f"{index + 1}")
        values: dict = {}
        rest = match.group(1)
        pos = 0
        while rest[pos:].strip():
            field = _TOUR_FIELD.match(rest, pos)
            if field is None:
                reader.fail(where, "key=value pairs, e.g. iteration=0 phase=backward node=w",
                            repr(rest[pos:].strip()[:40]))
            key, value = field.group(1), field.group(2).strip('"')
            if key not in TOUR_RULES or key == "text":
                reader.check_keys({key: None}, where, tuple(k for k in TOUR_RULES if k != "text"))
            if key in ("iteration", "micro_batch"):
                value = int(value) if re.fullmatch(r"[0-9]{1,9}", value) else value
            values[key] = reader.check(value, where + (key,), TOUR_RULES[key])
            pos = field.end()
        text: list[str] = []
        while i < len(lines) and not _TOUR.match(lines[i]):
            more = _TOUR_TEXT.match(lines[i])
            if more is None:
                break
            text.append(more.group(1) or "")
            i += 1
        while text and not text[-1]:
            text.pop()
        values["text"] = reader.check("\n".join(_paragraphs(text)), where + ("text",), TOUR_RULES["text"])
        if "iteration" not in values:
            reader.fail(where + ("iteration",), "an integer for 'iteration'", "none (it is required)")
        node = values.get("node")
        if node is not None and not (OP_LABEL.fullmatch(node) or re.fullmatch(r"[\w.]+", node)):
            reader.fail(where + ("node",), "a parameter or input name or an op's grad_fn name", repr(node))
        stops.append(TourStop(**values))
    return stops


def _paragraphs(lines: list[str]) -> list[str]:
    """Text lines joined into paragraphs (an empty line between two), one paragraph per item."""
    out, current = [], []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out
