"""Write a ``Scenario`` back to TOML: canonical text, or the user's own file with their edits.

- ``dumps(scenario)``: canonical, readable TOML. Defaults are left out, except what a reader
  wants to see at a glance (title, seed, the model, the loss kind, the optimizer's kind and lr,
  the number of steps). ``loads(dumps(s)) == s`` for every scenario the loader produces.
- ``render(scenario)``: what ``save`` writes. For a scenario loaded from text
  (``scenario.source_text``), that text is edited in place with tomlkit, so comments, blank lines
  and key order survive; only the keys whose meaning changed are touched. If the edited document
  does not load back equal (it always should), the canonical text is used instead. The long
  numeric arrays (data near the size limit: tomlkit took 10 s to parse 2 MB of them) are cut out
  before tomlkit sees the text and put back verbatim, unless their value changed.
- ``save(scenario, path)``: checks the text loads back equal (or, for the canonical text, loads),
  then writes it atomically (a temporary file in the same directory, then ``os.replace``), so a
  crash never leaves half a file.

The text is produced here only: an edit in the Controls changes the ``Scenario`` and nothing else.
"""
from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
import tomllib
from itertools import chain
from pathlib import Path

import numpy as np
import tomlkit
from tomlkit.items import AoT, InlineTable, Table

from .checks import NO_CLIPPING, NO_SCHEDULER, default_input_names, tour_misfit
from .datasets import generator_options
from .loader import loads
from .reader import ScenarioError
from .schema import (
    FULL_BATCH,
    OPTIMIZER_DEFAULTS,
    SCALER_DEFAULTS,
    SCHEDULER_DEFAULTS,
    LoopSpec,
    OptimizerSpec,
    ParamInit,
    Scenario,
    SchedulerSpec,
    TourStop,
)
from .toml_source import long_arrays, same_arrays

HEADER = "GradViz scenario; the format is described in docs/scenarios.md"


class _Inline(dict):
    """A table written inline (``{ init = "normal", std = 0.1 }``) and replaced as a whole."""


_NOT_PLAIN = (list, tuple, np.ndarray, np.generic)


def _plain(value):
    """Python scalars and lists only (numpy values and tuples from a UI become TOML-able). A list
    of plain values, or of lists of them (inline data), is returned as it is, not walked."""
    if type(value) is list:
        types = set(map(type, value))
        if types == {list}:
            types = set(map(type, chain.from_iterable(value)))
        if not any(issubclass(t, _NOT_PLAIN) for t in types):
            return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --- the scenario as nested dicts -----------------------------------------------------------
# ``full=False``: the canonical form (non-default keys only). ``full=True``: every key with its
# effective value (comparisons spelled out completely), for comparing two scenarios key by key.

def _param(spec: ParamInit):
    if spec.init == "value":
        return _plain(spec.value)
    table = _Inline(init=spec.init)
    if spec.shape:
        table["shape"] = list(spec.shape)
    if spec.init == "normal":
        table["std"] = float(spec.std)
    if spec.init == "uniform":
        table["low"], table["high"] = float(spec.low), float(spec.high)
    return table


def _data(scenario: Scenario, full: bool) -> dict | None:
    data = scenario.data
    if data.kind == "none" or scenario.model.kind == "objective":
        return None
    if data.kind == "inline":
        table = {"x": _plain(data.x), "y": _plain(data.y)}
        first = table["x"][0] if table["x"] else 0.0
        d = len(first) if isinstance(first, list) else 1
    else:
        table = {"kind": data.kind, "n": int(data.n), "noise": float(data.noise)}
        for option, default in generator_options(data.kind).items():
            value = _plain(data.options.get(option, default))
            if full or value != default:
                table[option] = value
        d = 1 if data.kind == "linear" else 2
    if data.input_names and (full or list(data.input_names) != default_input_names(d)):
        table["inputs"] = list(data.input_names)
    return table


def _optimizer(spec: OptimizerSpec, base: dict, full: bool) -> dict:
    """kind and lr always, then the hyperparameters that differ from ``base`` (all if full)."""
    table = {"kind": spec.kind}
    for key in OPTIMIZER_DEFAULTS[spec.kind]:
        value = _plain(spec.hyper[key])
        if full or key == "lr" or value != _plain(base.get(key)):
            table[key] = value
    return table


def _loop(loop: LoopSpec, base: LoopSpec, full: bool, comparison: bool) -> dict:
    """The loop keys that differ from ``base`` (all if full; steps always for the main loop)."""
    table: dict = {}
    for key in ("steps", "batch_size", "shuffle", "accumulation_steps", "divide_loss", "zero_grad",
                "set_to_none", "precision", "loss_scaling", "clip_grad_norm", "unscale_before_clip"):
        value = _plain(getattr(loop, key))
        if key in ("batch_size", "clip_grad_norm") and value is None:
            if comparison and (full or getattr(base, key) is not None):   # or it would inherit the main's
                table[key] = FULL_BATCH if key == "batch_size" else NO_CLIPPING
            continue
        if full or value != _plain(getattr(base, key)) or (key == "steps" and not comparison):
            table[key] = value
    if loop.loss_scaling:
        scaler = {k: _plain(loop.scaler.get(k, d)) for k, d in SCALER_DEFAULTS.items()}
        reference = base.scaler if comparison else SCALER_DEFAULTS
        scaler = {k: v for k, v in scaler.items() if full or v != _plain(reference.get(k))}
        if scaler:
            table["scaler"] = _Inline(scaler) if comparison and not full else scaler
    return table


def _scheduler(spec: SchedulerSpec | None, base: SchedulerSpec | None, full: bool) -> dict | None:
    """kind always, then the hyperparameters that differ from ``base`` (the main scheduler of the
    same kind, for a comparison) or from the defaults (all if full); None: nothing to write."""
    if spec is None:
        return {"kind": NO_SCHEDULER} if base is not None or full else None
    same = base is not None and base.kind == spec.kind
    reference = base.hyper if same else SCHEDULER_DEFAULTS[spec.kind]
    table = {"kind": spec.kind}
    for key in SCHEDULER_DEFAULTS[spec.kind]:
        value = _plain(spec.hyper.get(key))
        if value is not None and (full or value != _plain(reference.get(key))):
            table[key] = value
    if full or spec.placement != (base.placement if same else "after_step"):
        table["placement"] = spec.placement
    return table


def to_dict(scenario: Scenario, *, full: bool = False) -> dict:
    """The scenario as the nested dicts of its TOML file (see the module comment above)."""
    out: dict = {"scenario": {"title": scenario.title}}
    if full or scenario.description:
        out["scenario"]["description"] = scenario.description
    out["scenario"]["seed"] = int(scenario.seed)
    if scenario.run_name is not None:
        out["scenario"]["run"] = scenario.run_name
    model = scenario.model
    if model.kind == "layers":
        out["model"] = {"layers": [int(v) for v in _plain(model.layers)]}
        if full or model.activation != "tanh":
            out["model"]["activation"] = model.activation
    else:
        out["model"] = {model.kind: model.expression,
                        "parameters": {name: _param(p) for name, p in model.parameters.items()}}
    data = _data(scenario, full)
    if data is not None:
        out["data"] = data
        out["loss"] = {"kind": scenario.loss.kind}
        if full or scenario.loss.reduction != "mean":
            out["loss"]["reduction"] = scenario.loss.reduction
    main = scenario.optimizer
    out["optimizer"] = _optimizer(main, OPTIMIZER_DEFAULTS[main.kind], full)
    out["loop"] = _loop(scenario.loop, LoopSpec(), full, comparison=False)
    if scenario.loop.scheduler is not None:
        out["scheduler"] = _scheduler(scenario.loop.scheduler, None, full)
    comparisons = []
    for variant in scenario.comparisons:
        kind = variant.optimizer.kind
        base = main.hyper if kind == main.kind else OPTIMIZER_DEFAULTS[kind]
        table = {"name": variant.name, "optimizer": _optimizer(variant.optimizer, base, full)}
        loop = _loop(variant.loop, scenario.loop, full, comparison=True)
        if loop or full:
            table["loop"] = loop
        main_scheduler = scenario.loop.scheduler
        if full or variant.loop.scheduler != main_scheduler:
            scheduler = _scheduler(variant.loop.scheduler, main_scheduler, full)
            if scheduler is not None:
                table["scheduler"] = scheduler
        if not full:
            table = {k: _Inline(v) if isinstance(v, dict) else v for k, v in table.items()}
        comparisons.append(table)
    if comparisons:
        out["comparison"] = comparisons
    stops = [_stop(stop) for stop in scenario.tour if tour_misfit(scenario, stop) is None]
    if stops:           # a stop an edit left without its run or its iteration is not written
        out["tour"] = stops
    return out


def _stop(stop: TourStop) -> dict:
    """A tour stop's table: iteration, then the keys it gives, the text last (it is the longest)."""
    table = {"iteration": int(stop.iteration)}
    for key in ("run", "phase", "event", "micro_batch", "node", "plot"):
        value = getattr(stop, key)
        if value is not None:
            table[key] = _plain(value)
    table["text"] = stop.text
    return table


# --- rendering ------------------------------------------------------------------------------

def _item(value, inline: bool = False):
    """A tomlkit item: inline tables for _Inline (and anything inside an inline table)."""
    if isinstance(value, dict):
        if inline or isinstance(value, _Inline):
            table = tomlkit.inline_table()
            for key, item in value.items():
                table.append(key, _item(item, inline=True))
            return table
        table = tomlkit.table()
        for key, item in value.items():            # plain keys before sub-tables
            if not (isinstance(item, dict) and not isinstance(item, _Inline)):
                table.append(key, _item(item))
        for key, item in value.items():
            if isinstance(item, dict) and not isinstance(item, _Inline):
                table.append(key, _item(item))
        return table
    if isinstance(value, list):
        array = tomlkit.array()
        for item in value:
            array.append(_item(item, inline=True))
        if len(value) > 4 and all(isinstance(v, list) for v in value):
            array.multiline(True)                  # one row per line for (n, d) data
        return array
    if isinstance(value, str) and "\n" in value:
        return _multiline(value)
    return tomlkit.item(value)


def _multiline(text: str):
    """A triple-quoted string for readable descriptions, when it surely reads back the same."""
    item = tomlkit.string(text, multiline=True)
    try:
        if tomllib.loads("s = " + item.as_string())["s"] == text:
            return item
    except tomllib.TOMLDecodeError:
        pass
    return tomlkit.item(text)


# Arrays of this many numbers or more are written by ``_array_text`` (tomlkit builds an item per
# number: 4 s for data near the size limit), exactly as tomlkit would write them.
FAST_ARRAY_NUMBERS = 1000
_NUMBER_TYPES = frozenset((int, float))


def _array_text(value) -> str | None:
    """tomlkit's text for ``value``, a list of ints and floats or a list of more than 4 such lists
    (written one per line, as ``_item`` makes them), when it holds FAST_ARRAY_NUMBERS or more
    numbers; else None."""
    if type(value) is not list or not value:
        return None
    if set(map(type, value)) == {list}:
        if len(value) <= 4 or sum(map(len, value)) < FAST_ARRAY_NUMBERS:
            return None
        if not set(map(type, chain.from_iterable(value))) <= _NUMBER_TYPES:
            return None
        return "[\n" + "".join(["    [" + ", ".join(map(repr, row)) + "],\n" for row in value]) + "]"
    if len(value) < FAST_ARRAY_NUMBERS or not set(map(type, value)) <= _NUMBER_TYPES:
        return None
    return "[" + ", ".join(map(repr, value)) + "]"


def _set_aside(table: dict, old: dict | None = None) -> dict[str, str]:
    """Replace the long arrays of ``to_dict``'s data and parameters (those that differ from
    ``old``'s, when given) by placeholder strings, in copies of the dicts that hold them;
    -> {the placeholder as tomlkit writes it: the array's text}."""
    arrays: dict[str, str] = {}
    nonce = secrets.token_hex(8)
    for path in (("data",), ("model", "parameters")):
        parent, reference = table, old
        for key in path:
            if not isinstance(parent.get(key), dict):
                break
            parent[key] = type(parent[key])(parent[key])
            parent, reference = parent[key], (reference or {}).get(key)
        else:
            for key, value in list(parent.items()):
                text = None if old is not None and (reference or {}).get(key) == value else _array_text(value)
                if text is not None:
                    placeholder = f"gradviz-array-{nonce}-{len(arrays)}"
                    parent[key] = placeholder
                    arrays[f'"{placeholder}"'] = text
    return arrays


def dumps(scenario: Scenario) -> str:
    """Canonical TOML for ``scenario``: ``loads(dumps(s)) == s``."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment(HEADER))
    table = to_dict(scenario)
    arrays = _set_aside(table)
    for key, value in table.items():
        doc.add(tomlkit.nl())
        if key in ("comparison", "tour"):
            aot = tomlkit.aot()
            for item in value:
                aot.append(_item(dict(item)))
            doc.append(key, aot)
        else:
            doc.append(key, _item(value))
    text = tomlkit.dumps(doc)
    return _paste(text, arrays) if arrays else text


def _is_inline(container) -> bool:
    return isinstance(container, InlineTable)


def _apply(container, old: dict, new: dict, canonical: dict, inline: bool = False) -> None:
    """Edit ``container`` (a tomlkit table) so that it means ``new`` where it meant ``old``.

    New sub-tables are inline when ``inline`` (a comparison's optimizer and loop) or when the
    container itself is inline."""
    for key in old:
        if key not in new and key in container:
            del container[key]
    rescheduled = old.get("scheduler") != new.get("scheduler")      # comparisons inherit from it
    for key, value in new.items():
        if key in old and old[key] == value and not (key == "comparison" and rescheduled):
            continue
        if key == "comparison":
            _apply_comparisons(container, old.get(key, []), value, canonical.get(key, []), rescheduled)
        elif key == "tour":             # a changed tour is written anew, one [[tour]] table per stop
            aot = tomlkit.aot()
            for stop in value:
                aot.append(_item(dict(stop)))
            container[key] = aot
        elif key == "optimizer" and key in canonical and (old.get(key) or {}).get("kind") != value["kind"]:
            # another optimizer: its canonical table rather than every hyperparameter spelled out
            container[key] = _item(canonical[key], inline=inline or _is_inline(container))
        elif isinstance(value, dict) and not isinstance(value, _Inline):
            if key not in container or not isinstance(container[key], (Table, InlineTable)):
                make_inline = inline or _is_inline(container)
                container[key] = tomlkit.inline_table() if make_inline else tomlkit.table()
            _apply(container[key], old.get(key) or {}, value, canonical.get(key) or {})
        else:
            container[key] = _item(value, inline=_is_inline(container))


def _apply_comparisons(doc, old: list, new: list, canonical: list, rescheduled: bool = False) -> None:
    """Edit the [[comparison]] tables; ``rescheduled``: the main scheduler changed, so each
    comparison's scheduler (which inherits from it) is rewritten relative to the new one."""
    if not new:
        if "comparison" in doc:
            del doc["comparison"]
        return
    if "comparison" not in doc or not isinstance(doc["comparison"], AoT):
        doc["comparison"] = tomlkit.aot()
    aot = doc["comparison"]
    for i, table in enumerate(new):
        if i < len(old) and i < len(aot):
            _apply(aot[i], old[i], table, canonical[i], inline=True)
            if rescheduled:
                if "scheduler" in canonical[i]:
                    aot[i]["scheduler"] = _item(canonical[i]["scheduler"], inline=True)
                elif "scheduler" in aot[i]:
                    del aot[i]["scheduler"]
        else:
            table = _item(dict(canonical[i]))
            table.trivia.indent = "\n"                   # a blank line before [[comparison]]
            aot.append(table)
    while len(aot) > len(new):
        del aot[len(aot) - 1]


def render(scenario: Scenario) -> str:
    """The text ``save`` writes: the edited source document when there is one, else ``dumps``."""
    return _render(scenario)[0]


def _render(scenario: Scenario) -> tuple[str, bool]:
    """(the text, whether it was loaded back and found equal to ``scenario``)."""
    if scenario.source_text:
        try:
            text = _edit_source(scenario, str(scenario.path or "<scenario>"))
            if text is not None:
                return text, True
        except Exception:           # noqa: BLE001 -- keeping comments is best effort; dumps is exact
            pass
    return dumps(scenario), False


def _edit_source(scenario: Scenario, name: str) -> str | None:
    """``scenario.source_text`` edited to mean ``scenario``, or None. tomlkit edits a copy of the
    text whose long numeric arrays are placeholders (``_cut``); each pass loads the whole text."""
    source = scenario.source_text
    skeleton, arrays = _cut(source)
    doc = tomlkit.parse(skeleton)
    target = to_dict(scenario, full=True)
    canonical = to_dict(scenario)
    text = source
    with same_arrays():         # the data arrays' text is the same in each pass: read it once
        for _ in range(4):      # inherited comparison values may need a second pass
            current = loads(text, name=name)
            if current == scenario:
                return text
            old, wanted = to_dict(current, full=True), dict(target)
            changed = _set_aside(wanted, old)       # a changed long array: written by _array_text
            _apply(doc, old, wanted, canonical)
            text = _paste(doc.as_string(), {**arrays, **changed})
            if text is None:
                return None
    return None


# Runs of this many comment lines or more are set aside too: tomlkit takes ~0.1 ms per line.
COMMENT_BLOCK_LINES = 8
_COMMENT_BLOCK = re.compile(rf"(?:^[ \t]*#[^\n]*\n){{{COMMENT_BLOCK_LINES},}}", re.MULTILINE)


def _cut(source: str) -> tuple[str, dict[str, str]]:
    """``source`` with each long numeric array (``toml_source.long_arrays``) replaced by a quoted
    placeholder and each long run of comment lines by a placeholder comment, and {placeholder: the
    text it stands for}. (A run inside a multi-line string is put back as it was, too.)"""
    nonce = secrets.token_hex(8)
    pieces = [(start, end, f'"gradviz-array-{nonce}-{i}"') for i, (start, end) in enumerate(long_arrays(source))]
    skeleton, arrays = _replace(source, pieces)
    comments = [(m.start(), m.end(), f"# gradviz-comments-{nonce}-{i}\n")
                for i, m in enumerate(_COMMENT_BLOCK.finditer(skeleton))]
    skeleton, blocks = _replace(skeleton, comments)
    return skeleton, {**arrays, **blocks}


def _replace(text: str, pieces: list[tuple[int, int, str]]) -> tuple[str, dict[str, str]]:
    """``text`` with each (start, end, placeholder) span replaced, and {placeholder: the span}."""
    taken: dict[str, str] = {}
    parts, last = [], 0
    for start, end, placeholder in pieces:
        if placeholder in text:                    # cannot be (a random nonce), but then: no cut
            return text, {}
        taken[placeholder] = text[start:end]
        parts += [text[last:start], placeholder]
        last = end
    parts.append(text[last:])
    return "".join(parts), taken


def _paste(skeleton: str, arrays: dict[str, str]) -> str | None:
    """The text of ``skeleton`` with the arrays back in place of their placeholders (an edit that
    replaced an array dropped its placeholder); None if a placeholder appears more than once."""
    parts, last = [], 0
    found = sorted((skeleton.find(p), p) for p in arrays if p in skeleton)
    for position, placeholder in found:
        if skeleton.count(placeholder) != 1:
            return None
        parts += [skeleton[last:position], arrays[placeholder]]
        last = position + len(placeholder)
    parts.append(skeleton[last:])
    return "".join(parts)


def save(scenario: Scenario, path: str | os.PathLike) -> Path:
    """Write ``scenario`` to ``path`` atomically; returns the path.

    The text is loaded back first, so an invalid scenario raises ``ScenarioError`` and nothing is
    written. Afterwards ``scenario.path`` and ``scenario.source_text`` describe the saved file.
    """
    path = Path(path)
    text, checked = _render(scenario)
    if not checked:
        loads(text, name=str(path))               # raises ScenarioError for an invalid scenario
    write_text_atomic(path, text)
    scenario.path, scenario.source_text = path, text
    return path


def _umask() -> int:
    mask = os.umask(0o022)        # the only way to read it; set straight back
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`write_atomic`'s guarantees; returns the path."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return write_atomic(path, write)


def write_atomic(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``'s target, then rename it over the
    target, so a crash never leaves half a file; returns ``path``.

    Like an editor's save: a symlink is written through to its target (the link stays a link),
    an existing file keeps its permission bits, a new file gets the default ones (0666 minus the
    umask), and a read-only target is refused rather than replaced. The temporary file never
    appears in an error. Errors are a one-line ``ScenarioError`` naming ``path`` as given.
    """
    path = Path(path)

    def refuse(expected: str, found: str) -> ScenarioError:
        return ScenarioError(str(path), expected=expected, found=found)

    try:
        target = Path(os.path.realpath(path))       # through every symlink, even a dangling one
        info = os.stat(target) if os.path.lexists(target) else None
    except OSError as error:
        raise refuse("a writable location", error.strerror or type(error).__name__) from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise refuse("a regular file to write", "a directory" if stat.S_ISDIR(info.st_mode)
                         else "a special file (pipe, device or socket)")
        if not info.st_mode & 0o222 or not os.access(target, os.W_OK):   # root ignores access()
            raise refuse("a writable file", "the file is read-only (change its permissions or "
                         "use Save As)")
        mode = stat.S_IMODE(info.st_mode)
    else:
        mode = 0o666 & ~_umask()
    directory = target.parent
    if not directory.is_dir():
        raise refuse("a writable location", f"the folder {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as error:
        found = error.strerror or type(error).__name__
        raise refuse("a writable location", f"cannot create a file in {directory}: {found}") from None
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as error:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise refuse("a writable location", error.strerror or type(error).__name__) from None
        raise
    return path


__all__ = ["dumps", "render", "save", "to_dict", "write_atomic", "write_text_atomic"]
