"""A scenario file as text: reading it safely, parsing it, and finding the line of each key.

- ``read(path, shown)`` and ``decode(raw, name)``: the file's bytes as UTF-8 text, refusing files
  over ``LIMITS["max_file_bytes"]`` before reading them whole, and binary files (an image, an
  archive: ``binary_kind``) as "not a scenario file";
- ``checked(text, name)``: the same size limit for text, and a leading byte-order mark dropped;
- ``parse(text, file)``: the TOML document as dicts, after refusing what would make ``tomllib``
  slow (too many keys and table headers, dotted keys nested too deep);
- ``line_finder(text)``: the line each key path is defined on, for error messages.

Every refusal is one ``ScenarioError``; nothing here evaluates anything, so any input, however
hostile, is rejected quickly.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
import stat
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from .reader import NotScenarioFile, ScenarioError
from .schema import LIMITS

MAX_KEY_DEPTH = 32
MAX_STRUCTURE_LINES = 5_000

_KEYPART = r'''(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')'''
_KEY = rf"{_KEYPART}(?:[ \t]*\.[ \t]*{_KEYPART})*"
_HEADER = re.compile(rf"[ \t]*(\[\[?)[ \t]*({_KEY})[ \t]*\]")
_ASSIGN = re.compile(rf"[ \t]*({_KEY})[ \t]*=")
_PART = re.compile(_KEYPART)
_SPECIAL = re.compile(r"[\"'{}#]")

# A dotted key or table header of more than MAX_KEY_DEPTH parts. tomllib takes quadratic time in
# the number of parts (50,000 parts: 5 s), so such keys are refused before it sees them. Each
# candidate starts where a key part can start, and parts never backtrack: linear time.
_DEEP_KEY = re.compile(r"""(?<![A-Za-z0-9_"'.-])(?:(?:[A-Za-z0-9_-]++|"[^"\n]{0,200}"|'[^'\n]{0,200}')"""
                       rf"[ \t]*+\.[ \t]*+){{{MAX_KEY_DEPTH}}}")

# Lines that open a table or assign a key. A scenario has a few dozen; tomllib needs about 10 us
# per table header, so hundreds of thousands of them would take seconds to parse.
_STRUCTURE_LINE = re.compile(
    r"""^[ \t]*+(?:\[\[?[ \t]*+[A-Za-z0-9_"'-][^,\n\[\]]*+\]\]?[ \t]*+(?:\#[^\n]*)?$"""   # [table]
    rf"""|{_KEYPART}(?:[ \t]*+\.[ \t]*+{_KEYPART})*+[ \t]*+=)""", re.MULTILINE)     # key =


# --- text -----------------------------------------------------------------------------------

def _too_large(found: str, file: str) -> ScenarioError:
    return ScenarioError(file, expected=f"a file of at most {LIMITS['max_file_bytes']} bytes", found=found)


def checked(text: str, name: str) -> str:
    """``text`` within the size limit, without a leading byte-order mark."""
    if not isinstance(text, str):
        raise ScenarioError(name, expected="scenario text (a str)", found=type(text).__name__)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > LIMITS["max_file_bytes"]:
        raise _too_large(f"{size} bytes", name)
    return text[1:] if text.startswith("\ufeff") else text


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a one-line error: ``a directory``, ``a named pipe (FIFO)``."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read(path: str | os.PathLike, shown: str) -> str:
    """The text of the file at ``path``; ``shown`` is its name in error messages."""
    limit = LIMITS["max_file_bytes"]
    try:
        info = Path(path).stat()
        if not stat.S_ISREG(info.st_mode):        # a FIFO or device would block open() forever
            raise ScenarioError(shown, expected="a regular scenario file", found=file_kind(info.st_mode))
        size = info.st_size
        if size > limit:
            raise _too_large(f"{size} bytes", shown)
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except (OSError, ValueError) as error:     # ValueError: a NUL character in the path
        if isinstance(error, ScenarioError):
            raise
        reason = getattr(error, "strerror", None) or error
        raise ScenarioError(shown, expected="a readable scenario file",
                            found=f"{type(error).__name__}: {reason}") from None
    if len(raw) > limit:
        raise _too_large(f"more than {limit} bytes", shown)
    return decode(raw, shown)


# The first bytes of the binary files most likely to be opened or dropped by mistake.
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
          (b"\x7fELF", "a program (ELF)"), (b"\x93NUMPY", "a NumPy array (.npy)"),
          (b"SQLite format 3\x00", "an SQLite database"))
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SAMPLE = 8192


def binary_kind(raw: bytes) -> str | None:
    """What ``raw`` is when it is no text at all (``"a PNG image"``, ``"binary data"``), else None.
    Text in another encoding (a Latin-1 "café", UTF-16 with its byte-order mark) is text: the
    caller says which encoding it expected."""
    head = bytes(raw[:_SAMPLE])
    if head.startswith(_UTF16_BOMS):
        return None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        return "binary data"
    try:
        head.decode("utf-8")
        return None
    except UnicodeDecodeError as error:
        if error.start >= len(head) - 3:          # a character cut at the end of the sample
            return None
    controls = sum(1 for b in head if b < 32 and b not in b"\t\n\r\f\x1b")
    undecodable = len(head.decode("utf-8", "replace")) - len(head.decode("utf-8", "ignore"))
    return "binary data" if controls + undecodable > len(head) // 10 else None


def decode(raw: bytes, name: str) -> str:
    kind = binary_kind(raw)
    if kind is not None:
        raise NotScenarioFile(name, found=kind)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if raw.startswith(_UTF16_BOMS):
            raise ScenarioError(name, line=1, expected="UTF-8 text",
                                found="UTF-16 text (it starts with a UTF-16 byte-order mark)") from None
        line = raw[:error.start].count(b"\n") + 1
        raise ScenarioError(name, line=line, expected="UTF-8 text",
                            found=f"byte 0x{raw[error.start]:02x} at byte offset {error.start}, "
                                  "which is not UTF-8") from None


# --- parsing --------------------------------------------------------------------------------

# A flat array (no nested brackets, strings or comments inside). No array of a valid scenario
# holds more than MAX_ARRAY_VALUES values (x and y hold at most max_points; a 2-D x holds rows of at
# most max_features; an initial value at most max_param_elements), and tomllib takes about 1.6 s per
# million values, so longer arrays are refused before it sees them.
_FLAT_ARRAY = re.compile(r"\[([^\[\]\"'#]*+)\]")
MAX_ARRAY_VALUES = max(LIMITS["max_points"], LIMITS["max_param_elements"])


def _key_at(text: str, pos: int) -> str | None:
    """The dotted key path of the value starting at ``pos`` (``data.x``), or None."""
    start = text.rfind("\n", 0, pos) + 1
    assign = _ASSIGN.match(text, start)
    if not assign or assign.end() > pos:
        return None
    table = ""
    for header in _HEADER.finditer(text, 0, start):
        if text.rfind("\n", 0, header.start()) + 1 == header.start() or header.start() == 0:
            table = header.group(2)
    key = assign.group(1).replace(" ", "").replace("\t", "")
    return f"{table}.{key}" if table else key


def _long_array(text: str, file: str) -> ScenarioError | None:
    if text.count(",") <= MAX_ARRAY_VALUES:
        return None
    for match in _FLAT_ARRAY.finditer(text):
        values = match.group(1).count(",") + 1
        if values > MAX_ARRAY_VALUES:
            return ScenarioError(file, key=_key_at(text, match.start()),
                                 line=text.count("\n", 0, match.start()) + 1,
                                 expected=f"at most {MAX_ARRAY_VALUES} values in one array",
                                 found=f"about {values} values")
    return None


# --- long arrays of plain numbers, read without tomllib ---------------------------------------
# tomllib reads about a million values in 1.6 s, so a data set near the size limit took most of a
# second to parse. Arrays of FAST_ARRAY_CHARS or more characters that hold only plain decimal numbers
# in one or two dimensions (rectangular) are cut out of the text and read here; anything else
# (comments, underscores, hex, inf, ragged rows, deeper nesting) is left to tomllib, so the result
# is always what tomllib gives.
FAST_ARRAY_CHARS = 4096
_WS = r"[ \t\r\n]"                  # TOML's white space in an array (a CR only in CRLF: checked)
_NUM = r"[+-]?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+"
_ROW = rf"\[{_WS}*+{_NUM}(?:{_WS}*+,{_WS}*+{_NUM}){{{{{{width}}}}}}{_WS}*+,?{_WS}*+\]"
_FLOAT_MARK = re.compile(r"[.eE]")
_ARRAY_VALUE = re.compile(rf"(?:^[ \t]*+|[{{,][ \t]*+){_KEY}[ \t]*+=[ \t]*+(\[)", re.MULTILINE)
_ARRAY_RUN = re.compile(r"[\[\]0-9eE.,+\- \t\r\n]*+")
_FLAT = re.compile(rf"\[{_WS}*+(?:{_NUM}{_WS}*+,{_WS}*+)*+(?:{_NUM}{_WS}*+)?+\]")
_FIRST_ROW = re.compile(rf"\[{_WS}*+(\[{_WS}*+{_NUM}(?:{_WS}*+,{_WS}*+{_NUM})*+{_WS}*+,?{_WS}*+\])")


def _flat_values(body: str) -> list:
    """The numbers in ``body`` (checked: numbers, commas, white space) as tomllib gives them: an
    int without '.', 'e' or 'E', else a float."""
    tokens = body.replace(",", " ").split()
    if len(tokens) > CONVERT_CHUNK:
        time.sleep(0)                         # (each of these is one C call of ms: see _convert)
    if not _FLOAT_MARK.search(body):
        return _convert(int, tokens)
    if body.count(".") == len(tokens):        # at most one '.' per number: each one is a float
        return _convert(float, tokens)
    return [float(t) if _FLOAT_MARK.search(t) else int(t) for t in tokens]


CONVERT_CHUNK = 8192        # numbers converted per C call (a few ms)


def _convert(kind, tokens: list[str]) -> list:
    """``list(map(kind, tokens))`` in chunks, offering the GIL to other threads between them
    (``time.sleep(0)``): one ``map`` over 100,000 numbers is a single C call of 40 ms, and a window
    reading a large file in a worker thread waited for the GIL that long."""
    if len(tokens) <= CONVERT_CHUNK:
        return list(map(kind, tokens))
    out: list = []
    for start in range(0, len(tokens), CONVERT_CHUNK):
        if start:
            time.sleep(0)
        out.extend(map(kind, tokens[start:start + CONVERT_CHUNK]))
    return out


def read_array(span: str) -> list | None:
    """``span`` (``[...]``) as tomllib reads it, when it is a non-empty 1-D or rectangular 2-D array
    of plain decimal numbers (no empty rows); else None."""
    if "\r" in span and span.count("\r") != span.count("\r\n"):
        return None
    if _FLAT.fullmatch(span):
        return _flat_values(span[1:-1]) or None
    first = _FIRST_ROW.match(span)
    if first is None:
        return None
    width = len(_flat_values(first.group(1)[1:-1]))
    row = _ROW.replace("{{{width}}}", f"{{{width - 1}}}")
    if not re.fullmatch(rf"\[{_WS}*+(?:{row}{_WS}*+,{_WS}*+)*+(?:{row}{_WS}*+)?+\]", span):
        return None
    time.sleep(0)                  # the GIL offered between C calls of ms (see _convert)
    values = _flat_values(span[1:-1].replace("[", " ").replace("]", " "))
    return list(map(list, zip(*[iter(values)] * width)))


def long_arrays(text: str) -> list[tuple[int, int]]:
    """(start, end) of each ``key = [...]`` array (at the start of a line, or in an inline table) of
    FAST_ARRAY_CHARS or more characters made of digits, signs, '.', 'e', commas, brackets and white
    space only: the arrays ``read_array`` may read. A span is not checked here (it may even lie
    inside a string): callers check what they get."""
    spans: list[tuple[int, int]] = []
    if len(text) < FAST_ARRAY_CHARS:
        return spans
    match = _ARRAY_VALUE.search(text)
    while match:
        start = match.start(1)
        run = _ARRAY_RUN.match(text, start).group()
        end = run.rfind("]") + 1
        while end > 0 and run.count("[", 0, end) != run.count("]", 0, end):
            end = run.rfind("]", 0, end - 1) + 1
        if end >= FAST_ARRAY_CHARS:
            spans.append((start, start + end))
        match = _ARRAY_VALUE.search(text, start + max(end, 1))     # not within the array
    return spans


_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar("gradviz_array_memo", default=None)


@contextlib.contextmanager
def same_arrays():
    """Within it, each long array's text is read once: loading several versions of one text (the
    saver: the source, then the edited text with the same data) shares the arrays' lists between
    the scenarios it loads, so it is for scenarios that are compared and dropped."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def _cut_arrays(text: str) -> tuple[str, dict[str, list]] | None:
    """(``text`` with each long numeric array replaced by a placeholder string, {the placeholder's
    value: the array as tomllib reads it}), or None when there are none or one is unusual."""
    spans = long_arrays(text)
    if not spans:
        return None
    parts, values, last = [], {}, 0
    memo = _MEMO.get()
    for i, (start, end) in enumerate(spans):
        span = text[start:end]
        value = memo.get(span) if memo is not None else None
        if value is None:
            value = read_array(span)
            if value is None:
                return None
            if memo is not None:
                memo[span] = value
        values[f"\x00gradviz-array-{i}"] = value
        parts += [text[last:start], f'"\\u0000gradviz-array-{i}"']
        last = end
    parts.append(text[last:])
    return "".join(parts), values


def _restore(node, values: dict, found: list) -> object:
    """``node`` with each placeholder string replaced by its array; ``found`` counts them."""
    if isinstance(node, str):
        if node in values:
            found.append(node)
            return values[node]
        return node
    if isinstance(node, dict):
        return {k: _restore(v, values, found) for k, v in node.items()}
    if isinstance(node, list):
        return [_restore(v, values, found) for v in node]
    return node


def _parse_cut(skeleton: str, values: dict) -> dict | None:
    """``tomllib.loads`` of the text ``_cut_arrays`` cut: the skeleton's, its arrays put back; None
    when the skeleton is no valid TOML or a placeholder is not one whole value (it was inside a
    string): then tomllib reads the whole text, and names the error."""
    try:
        doc = tomllib.loads(skeleton)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return None
    found: list = []
    doc = _restore(doc, values, found)
    return doc if sorted(found) == sorted(values) else None


def _within_guards(skeleton: str, values: dict) -> bool:
    """True when the whole text surely passes ``_guard`` (so it need not scan the arrays): the
    skeleton does, no array is too long, and the arrays' lines cannot add too many structure lines
    (only rows of one number alone on their line look like a table header)."""
    for value in values.values():
        if len(value) > MAX_ARRAY_VALUES or (type(value[0]) is list and len(value[0]) > MAX_ARRAY_VALUES):
            return False
    extra = sum(len(v) for v in values.values() if type(v[0]) is list and len(v[0]) == 1)
    structure = sum(1 for _ in _STRUCTURE_LINE.finditer(skeleton))
    return (_long_array(skeleton, "") is None and structure + extra <= MAX_STRUCTURE_LINES
            and not _DEEP_KEY.search(skeleton))


def _guard(text: str, file: str) -> None:
    """Refuse what would make tomllib slow: arrays too long, too many keys, keys nested too deep."""
    too_long = _long_array(text, file)
    if too_long is not None:
        raise too_long
    count = 0
    for match in _STRUCTURE_LINE.finditer(text):
        count += 1
        if count > MAX_STRUCTURE_LINES:
            raise ScenarioError(file, line=text.count("\n", 0, match.start()) + 1,
                                expected=f"at most {MAX_STRUCTURE_LINES} keys and table headers",
                                found=f"more than {MAX_STRUCTURE_LINES}")
    deep = _DEEP_KEY.search(text)
    if deep:
        raise ScenarioError(file, line=text.count("\n", 0, deep.start()) + 1,
                            expected=f"keys nested at most {MAX_KEY_DEPTH} deep",
                            found=f"a dotted key or table name of more than {MAX_KEY_DEPTH} parts")


def parse(text: str, file: str) -> dict:
    """The TOML document, or one ScenarioError (with the line tomllib names, when it names one)."""
    cut = _cut_arrays(text)
    if cut is None or not _within_guards(*cut):
        _guard(text, file)
    try:
        doc = _parse_cut(*cut) if cut is not None else None
        return doc if doc is not None else tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        match = re.search(r"\(at line (\d+), column (\d+)\)|\(at end of document\)", message)
        line = column = None
        if match and match.group(1):
            line, column = int(match.group(1)), int(match.group(2))
        elif match:
            line = text.count("\n") + 1
        found = message[:match.start()].strip() if match else message
        where = f" at column {column}" if column else ""
        raise ScenarioError(file, line=line, column=column, expected="valid TOML",
                            found=f"{found}{where}") from None
    except RecursionError:
        raise ScenarioError(file, expected="valid TOML", found="values nested too deeply") from None
    except Exception as error:       # tomllib can also raise ValueError (e.g. a 5000-digit integer)
        raise ScenarioError(file, expected="valid TOML", found=f"{type(error).__name__}: {error}") from None


# --- the line of a key ----------------------------------------------------------------------

def _split_key(key: str) -> tuple[str, ...]:
    parts = []
    for part in _PART.findall(key):
        parts.append(part[1:-1] if part[:1] in "\"'" else part)
    return tuple(parts)


class KeyLines:
    """Where each key path is defined in the source: a line scanner, not a parser.

    It follows table headers (``[a.b]``, ``[[comparison]]`` with its running index), ``key =``
    assignments (dotted keys too) and the keys of inline tables, and skips strings, comments and
    continuation lines of multi-line arrays and strings. Good enough to point at a line; when a
    path is not found, the line of its closest enclosing key is used.
    """

    def __init__(self, text: str):
        self.index: dict[tuple, int] = {}
        aot: dict[tuple, int] = {}            # array-of-tables path -> current index
        current: tuple = ()
        depth = 0                             # open '[' / '{' of a value continuing on later lines
        in_string = None                      # the delimiter of an open multi-line string
        for lineno, line in enumerate(text.splitlines()[:200_000], 1):
            if len(line) > 10_000:
                line = line[:10_000]
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if depth > 0:
                depth, in_string = self._scan_value(line, 0, (), lineno, depth)
                continue
            header = _HEADER.match(line)
            if header:
                parts = _split_key(header.group(2))
                resolved: tuple = ()
                for i, part in enumerate(parts):
                    resolved += (part,)
                    if parts[:i + 1] in aot and not (header.group(1) == "[[" and i == len(parts) - 1):
                        resolved += (aot[parts[:i + 1]],)
                if header.group(1) == "[[":
                    aot[parts] = aot.get(parts, -1) + 1
                    resolved += (aot[parts],)
                current = resolved
                self._record(current, lineno)
                continue
            match = _ASSIGN.match(line)
            if match:
                key = current + _split_key(match.group(1))
                self._record(key, lineno)
                depth, in_string = self._scan_value(line, match.end(), key, lineno, 0)

    def _scan_value(self, line: str, pos: int, key: tuple, lineno: int, depth: int):
        """Record the keys of inline tables in ``line[pos:]``; return (open brackets, open string)."""
        if not _SPECIAL.search(line, pos):      # plain numbers and brackets (rows of data): fast
            return max(depth + line.count("[", pos) - line.count("]", pos), 0), None
        stack, last, expect_key = [key], key, False
        while pos < len(line):
            char = line[pos]
            if char in "\"'":
                triple = line[pos:pos + 3]
                if triple in ('"""', "'''"):
                    end = line.find(triple, pos + 3)
                    if end < 0:
                        return depth, triple
                    pos = end + 3
                    continue
                pos = self._skip_string(line, pos)
                continue
            if char == "#":
                break
            if char in "[{":
                depth += 1
                if char == "{":
                    stack.append(last)
                    expect_key = True
            elif char in "]}":
                depth = max(depth - 1, 0)
                if char == "}" and len(stack) > 1:
                    stack.pop()
            elif char == ",":
                expect_key = len(stack) > 1
            elif expect_key and not char.isspace():
                expect_key = False
                match = _ASSIGN.match(line, pos)
                if match and key:
                    last = stack[-1] + _split_key(match.group(1))
                    self._record(last, lineno)
                    pos = match.end()
                    continue
            pos += 1
        return depth, None

    def _record(self, key: tuple, lineno: int) -> None:
        for k in range(1, len(key) + 1):       # a.b.c = 1 also defines a and a.b here
            self.index.setdefault(key[:k], lineno)

    @staticmethod
    def _skip_string(line: str, pos: int) -> int:
        quote, pos = line[pos], pos + 1
        while pos < len(line) and line[pos] != quote:
            pos += 2 if quote == '"' and line[pos] == "\\" else 1
        return pos + 1

    def find(self, path: tuple) -> int | None:
        for k in range(len(path), 0, -1):
            line = self.index.get(tuple(path[:k]))
            if line is not None:
                return line
        return None


def line_finder(text: str) -> Callable[[tuple], int | None]:
    """``find(path)``: the line of a key path in ``text``; the text is scanned on the first call
    only (most files load without an error, so most are never scanned)."""
    lines: KeyLines | None = None

    def find(path: tuple) -> int | None:
        nonlocal lines
        if lines is None:
            lines = KeyLines(text)
        return lines.find(path)
    return find
