"""The headless command line, ``python -m gradviz``: the same Session the app runs, without a screen.

    python -m gradviz list                                   # the bundled scenarios and scripts
    python -m gradviz run 01_tutorial_wx_b --steps 500 --out history.csv
    python -m gradviz run lesson.py --timeout 10 --out history.json    # a PyTorch script, on the core
    python -m gradviz validate lesson.toml lesson.py         # "FILE: ok" or the one-line error
    python -m gradviz export-torch lesson.toml -o lesson.py  # the same run as a PyTorch script

SCENARIO is a file path or the stem of a bundled scenario or script. A script (``.py``) runs in the
worker process (``gradviz.training.worker``: time limit, memory cap); its own standard output
passes through unchanged and GradViz's summary goes to standard error. ``validate`` never runs a
script: it compiles it and checks what it imports and which ``torch`` names it uses.

Every user error (a missing or invalid file, an unwritable output, an unknown extension, a bad
option) is one line on stderr, ``gradviz: error: ...``, and exit status 2; never a traceback. A
script that fails (an exception, the time limit, the memory cap) exits 1 with the one line naming
the script's file and line. Ctrl-C exits with 130.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from . import script_checks
from .scenario import Scenario, ScenarioError, bundled, find_bundled, load
from .scenario.script_source import SCRIPT_SUFFIX, ScriptSourceError, header, read_script

PROG = "gradviz"
OUT_FORMATS = (".csv", ".json")
PROGRESS_EVERY = 0.1          # seconds between progress bar redraws
SCRIPT_TIMEOUT = 60.0         # seconds a script may run (``run --timeout``)
SCRIPT_MEMORY_MB = 2048       # MB a script may allocate (``run --memory``)
SCRIPT_FAILED = 1             # exit status of a script that failed (2 stays the user's usage errors)


class UserError(Exception):
    """Something the user can fix; ``str()`` is the one line shown after ``gradviz: error:``."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (raised, so ``main`` prints it)."""

    def error(self, message: str):
        raise UserError(f"{message} (see '{self.prog} --help')")


SUMMARY_WIDTH = 80            # characters of a description shown by ``list``


def _safe(text) -> str:
    """``text`` fit for a terminal: control characters (escape sequences, bells, line breaks)
    shown as ``\\x1b`` instead of reaching the terminal, so a scenario cannot drive it."""
    text = str(text)
    if all(c >= " " and c != "\x7f" for c in text):
        return text
    return "".join(c if unicodedata.category(c) != "Cc" else f"\\x{ord(c):02x}" for c in text)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).splitlines()).strip() or type(exc).__name__
    text = _safe(text)
    return text if len(text) <= 500 else text[:497] + "..."


def _summary(description: str) -> str:
    """The first sentence of the first line, cut to SUMMARY_WIDTH."""
    line = (description.strip().splitlines() or [""])[0]
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
    sentence = _safe(sentence)
    return sentence if len(sentence) <= SUMMARY_WIDTH else sentence[:SUMMARY_WIDTH - 3].rstrip() + "..."


# -- helpers -----------------------------------------------------------------------------------

def script_path(name: str) -> Path | None:
    """The script ``name`` names: a ``.py`` path, or a bundled script by stem; else None (a TOML
    scenario). A file of that name wins over a bundled one, as for scenarios."""
    path = Path(name)
    if path.suffix.lower() == SCRIPT_SUFFIX:
        return path
    if path.exists() or os.sep in name or "/" in name or path.suffix.lower() == ".toml":
        return None
    if find_bundled(name) is not None:
        return None
    return script_checks.find_bundled_script(name)


def load_scenario(name: str) -> Scenario:
    """A scenario file, or a bundled scenario by stem (``01_tutorial_wx_b``): a file first."""
    path = Path(name)
    has_folder = os.sep in name or "/" in name
    if not path.exists() and not has_folder:
        found = find_bundled(name)
        if found is not None:
            return load(found)
    if path.exists() or has_folder or path.suffix.lower() == ".toml":
        return load(path)         # a Path, never text: "runs[1].toml" is a file name
    stems = [p.stem for p in bundled()] + [p.stem for p in script_checks.bundled_scripts()]
    raise UserError(f"{name!r} is neither a file nor a bundled scenario "
                    f"(bundled: {', '.join(stems) or 'none'})")


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place, so an
    interrupted or failed write never leaves a half-written file (the saver's rules: through
    symlinks, keeping permissions, refusing a read-only file)."""
    from .scenario.saver import write_atomic
    try:
        write_atomic(path, write)
    except ScenarioError as exc:
        raise UserError(f"cannot write {path}: expected {exc.expected}, found {exc.found}") from None


class ProgressBar:
    """``[#######.........]  45%  4500/10000 steps`` on a terminal, redrawn in place."""

    def __init__(self, stream: TextIO, width: int = 30):
        self.stream, self.width = stream, width
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        fraction = done / total if total else 1.0
        filled = int(round(fraction * self.width))
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%}  "
                          f"{done}/{total} steps")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _format_value(values: np.ndarray) -> str:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        return f"{float(values):.6g}"
    if values.size <= 8:
        text = np.array2string(values, precision=6, separator=", ", floatmode="maxprec")
        return " ".join(text.split())            # a matrix on one line too: [[1., 0.], [0., 1.]]
    return (f"shape {tuple(values.shape)}, mean {np.mean(values):.4g}, "
            f"min {np.min(values):.4g}, max {np.max(values):.4g}")


# -- commands ----------------------------------------------------------------------------------

def _out_path(args) -> Path | None:
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in OUT_FORMATS:
        raise UserError(f"cannot write {out}: unknown extension {out.suffix or '(none)'!r}; "
                        f"use {' or '.join(OUT_FORMATS)}")
    if out is not None and not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise UserError(f"cannot write {out}: directory {out.parent} does not exist")
    return out


def _check_steps(steps: int, session) -> None:
    """``--steps`` obeys the loader's limits on ``loop.steps`` (a file could not ask for more)."""
    from .scenario.schema import LIMITS
    if steps > LIMITS["max_steps"]:
        raise UserError(f"--steps {steps}: expected at most {LIMITS['max_steps']} steps (the limit a "
                        "scenario file has)")
    elements = sum(int(np.prod(np.shape(values)[1:])) for values in session.history.params.values())
    if steps * elements > LIMITS["max_recorded_values"]:
        raise UserError(f"--steps {steps}: expected steps x parameter elements of at most "
                        f"{LIMITS['max_recorded_values']} (every step is recorded), found "
                        f"{steps} x {elements}; use at most {LIMITS['max_recorded_values'] // elements} steps")


def cmd_run(args) -> int:
    from .training.session import Session

    script = script_path(args.scenario)
    if script is not None:
        return cmd_run_script(args, script)
    if args.timeout is not None or args.memory is not None:
        raise UserError("--timeout and --memory apply to scripts (.py); a TOML scenario runs no code")
    out = _out_path(args)
    scenario = load_scenario(args.scenario)
    session = Session(scenario, args.variant)
    if args.steps is not None:
        _check_steps(args.steps, session)
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        history = session.run(args.steps, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if out is not None:
        write = history.to_json if out.suffix.lower() == ".json" else history.to_csv
        write_atomically(out, write)

    print(_safe(f"{scenario.title} [{history.variant}]"))
    if history.steps:
        print(f"steps: {history.steps}   final loss: {float(history.loss[-1]):.6g}")
    else:
        print("steps: 0")
    for name in history.param_names:
        print(f"  {name} = {_format_value(history.params[name][-1])}")      # the final value
    if history.message:
        print(_safe(history.message))
    if history.reduction:
        print(_safe(f"History: {history.reduction}"))
    if out is not None:
        print(f"wrote {out} ({history.steps} steps)")
    return 0


def _pass_through(message) -> None:
    """The script's printed text, unchanged, on our stdout (its stderr on our stderr)."""
    stream = sys.stderr if getattr(message, "stream", "stdout") == "stderr" else sys.stdout
    text = getattr(message, "text", None)
    if text is not None:
        stream.write(text)
        stream.flush()


def cmd_run_script(args, path: Path) -> int:
    from .training.worker import ScriptWorker, WorkerError

    if args.steps is not None or args.variant != 0:
        raise UserError(f"--steps and --variant apply to TOML scenarios; {path.name} runs its own loop")
    out = _out_path(args)
    try:
        source = read_script(path)
    except ScriptSourceError as exc:
        raise UserError(str(exc)) from None
    timeout = SCRIPT_TIMEOUT if args.timeout is None else args.timeout
    memory = SCRIPT_MEMORY_MB if args.memory is None else args.memory
    with ScriptWorker() as worker:
        try:
            result = worker.run(source, str(path), timeout=timeout, memory_mb=memory, on_message=_pass_through)
        except WorkerError as exc:
            print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
            return SCRIPT_FAILED
    for note in getattr(result, "notes", None) or []:
        print(f"{PROG}: note: {_one_line(note)}", file=sys.stderr)
    if result.error is not None:
        print(f"{PROG}: error: {_one_line(result.error)}", file=sys.stderr)
        return SCRIPT_FAILED
    history = result.history
    if out is not None:
        if history is None:
            raise UserError(f"cannot write {out}: {path.name} made no optimizer step or manual update, "
                            "so there is no History")
        write = history.to_json if out.suffix.lower() == ".json" else history.to_csv
        write_atomically(out, write)
    print(_script_summary(path, result), file=sys.stderr)
    if out is not None:
        print(f"wrote {out} ({history.steps} iterations)", file=sys.stderr)
    return 0


def _script_summary(path: Path, result) -> str:
    history = result.history
    if history is None or not history.steps:
        return f"{path.name}: ran; no iterations recorded"
    names = ", ".join(history.param_names[:6]) + (", ..." if len(history.param_names) > 6 else "")
    return (f"{path.name}: {history.steps} iterations, final loss {float(history.loss[-1]):.6g} "
            f"(parameters: {names})")


def _validate_script(name: str) -> str:
    """``FILE: ok`` or ``FILE:LINE: what is wrong``, without running the script."""
    try:
        source = read_script(name)
    except ScriptSourceError as exc:
        return f"{name}: {str(exc).split(': ', 1)[-1]}"
    problem = script_checks.check(source, name)
    return f"{name}: ok" if problem is None else f"{name}:{problem[0]}: {problem[1]}"


def cmd_validate(args) -> int:
    from .training.session import Session

    all_ok = True
    for name in args.files:
        if Path(name).suffix.lower() == SCRIPT_SUFFIX:
            line = _validate_script(name)
            all_ok &= line == f"{name}: ok"
            print(line)
            sys.stdout.flush()
            continue
        try:
            scenario = load(Path(name))
            for variant in range(len(scenario.variants())):
                Session(scenario, variant)       # builds model and data, one forward pass
        except ScenarioError as exc:
            print(_one_line(exc))                # already "FILE:LINE: [key] expected ..., found ..."
            all_ok = False
        except Exception as exc:                 # SessionError, or a bug: still one line
            print(f"{_safe(name)}: {_one_line(exc)}")
            all_ok = False
        else:
            print(f"{_safe(name)}: ok")
        sys.stdout.flush()
    return 0 if all_ok else 2


def cmd_export_torch(args) -> int:
    from .codegen import export_torch

    scenario = load_scenario(args.scenario)
    script = export_torch(scenario, args.variant)
    if args.output == "-":
        sys.stdout.write(script.source)
        return 0
    out = Path(args.output)
    write_atomically(out, lambda tmp: tmp.write_text(script.source, encoding="utf-8"))
    print(f"wrote {out} ({len(script.source.splitlines())} lines, variant {script.variant!r})",
          file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    rows = []
    for path in bundled():
        try:
            scenario = load(path)
            rows.append((path.stem, scenario.title, _summary(scenario.description)))
        except ScenarioError as exc:
            rows.append((path.stem, "(invalid)", _one_line(exc)))
    for path in script_checks.bundled_scripts():
        try:
            title, description = header(read_script(path), path.name)
            rows.append((path.stem, title, _summary(description)))
        except ScriptSourceError as exc:
            rows.append((path.stem, "(invalid)", _one_line(exc)))
    if not rows:
        print("no bundled scenarios found")
        return 0
    stem_width = max(len(r[0]) for r in rows)
    title_width = max(len(r[1]) for r in rows)
    for stem, title, summary in rows:
        print(_safe(f"{stem:<{stem_width}}  {title:<{title_width}}  {summary}".rstrip()))
    return 0


# -- entry point -------------------------------------------------------------------------------

def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, found {value}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, found {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="GradViz without a screen: run, check and export scenarios.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a scenario or a script headless and write its History",
                              description="Run a scenario headless; print the final loss and parameters. "
                                          "A script's own output passes through; the summary goes to stderr.")
    run.add_argument("scenario", metavar="SCENARIO",
                     help="a scenario file (.toml), a script (.py), or a bundled one's name")
    run.add_argument("--steps", type=_non_negative, help="optimizer steps (default: the scenario's)")
    run.add_argument("--out", metavar="FILE", help="write the History to FILE.csv or FILE.json")
    run.add_argument("--variant", type=_non_negative, default=0,
                     help="0 = the main run (default), i = the i-th comparison")
    run.add_argument("--timeout", type=_positive, metavar="S",
                     help=f"a script's time limit in seconds (default {SCRIPT_TIMEOUT:g})")
    run.add_argument("--memory", type=_positive, metavar="MB",
                     help=f"a script's memory cap in MB (default {SCRIPT_MEMORY_MB})")
    run.set_defaults(func=cmd_run)

    validate = commands.add_parser("validate", help="check scenario files and scripts",
                                   description="Print 'FILE: ok' or the file's one-line error; "
                                               "exit 0 when all are valid, 2 otherwise. Scripts are "
                                               "compiled and checked, never run.")
    validate.add_argument("files", metavar="FILE", nargs="+")
    validate.set_defaults(func=cmd_validate)

    export = commands.add_parser("export-torch", help="write the scenario as a runnable PyTorch script",
                                 description="Write the same run as a self-contained PyTorch script.")
    export.add_argument("scenario", metavar="SCENARIO", help="a scenario file or a bundled scenario's name")
    export.add_argument("-o", "--output", default="-", metavar="FILE",
                        help="where to write the script ('-' = standard output, the default)")
    export.add_argument("--variant", type=_non_negative, default=0,
                        help="0 = the main run (default), i = the i-th comparison")
    export.set_defaults(func=cmd_export_torch)

    listing = commands.add_parser("list", help="list the bundled scenarios and scripts")
    listing.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise UserError("choose a command: run, validate, export-torch or list "
                            f"(see '{PROG} --help')")
        return args.func(args)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:                     # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:                       # `python -m gradviz list | head -1`
        return 0
    except Exception as exc:                      # ScenarioError, SessionError, UserError, a bug: one line
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
