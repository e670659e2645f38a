"""Run PyTorch scripts twice, with real torch and on GradViz's core, and compare the two runs.

    outcomes = run_side("torch", paths)             # in a subprocess: one torch import for all
    outcomes = run_side("gradviz", paths)           # in a subprocess: run_script, recording on
    problems = compare(torch_outcome, gradviz_outcome, tolerance_for(path))

Each script runs in a fresh ``__main__`` namespace with its printed output captured. What is
compared (:func:`compare`):

- the printed text: the same text once every number is taken out, and the numbers, parsed, within
  the script's :class:`Tolerance` (equal in float64; within float32 rounding otherwise);
- the final parameters: every ``nn.Module``'s ``named_parameters()``, every leaf tensor that
  requires grad and every optimizer's parameters, found in the script's globals once it has run,
  keyed by the variable that holds them (``model.0.weight``, ``w``), with their dtype.

On GradViz's side the script runs through ``gradviz.training.script.run_script`` (what the app
and the command line run, with its recorder on: recording must not change a number) for the
printed text, and once more under ``torch_namespace.installed()`` without recording for its
globals, whose parameters are compared.

A script states its tolerance in a comment line ``# differential: float64`` (all its printed
numbers and parameters come from float64 tensors or Python floats: equal to the last bit, up to
the summation order of a reduction) or ``# differential: float32`` (the default).
"""
from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import re
import runpy
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"
BUNDLED = ROOT / "assets" / "scripts"
SIDES = ("torch", "gradviz")
TORCH_DEFAULT_SEED = 67280421310721    # torch.initial_seed() of a fresh process: both sides start there


def scripts() -> list[Path]:
    """The differential suite: the cases, then the bundled scripts."""
    return sorted(CASES.glob("*.py")) + sorted(BUNDLED.glob("*.py"))


# -- tolerances ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tolerance:
    """How far a number of GradViz's run may be from torch's, and why.

    A printed number was rounded to the digits shown: two values within ``rtol`` can still round
    to neighbouring last digits, so one unit in the last printed place is allowed on top of
    ``rtol * |value|``. A parameter is compared with ``rtol`` relative to the largest element of
    its tensor (an element near 0 carries the rounding of the larger ones it was computed from).
    """
    name: str
    rtol: float
    why: str


FLOAT64 = Tolerance(
    "float64", 8 * float(np.finfo(np.float64).eps),
    "float64: the same operations in the same order give the same bits; a few units in the last "
    "place only where a reduction (sum, matmul) may add in another order than torch's kernels")
FLOAT32 = Tolerance(
    "float32", 256 * float(np.finfo(np.float32).eps),
    "float32: the core rounds each op to float32 as torch does, but torch's kernels may sum in "
    "another order or fuse (matmul, mean); those roundings (2**-24 each) accumulate over a run of "
    "up to a few hundred steps: 256 float32 epsilons (3e-5 relative)")
TOLERANCES = {t.name: t for t in (FLOAT64, FLOAT32)}
_DIRECTIVE = re.compile(r"^#\s*differential:\s*(\w+)\s*$", re.MULTILINE)


def tolerance_for(path: Path) -> Tolerance:
    match = _DIRECTIVE.search(Path(path).read_text(encoding="utf-8"))
    return TOLERANCES[match.group(1)] if match else FLOAT32


# -- running one side -----------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one run of one script left: its printed text, its final parameters, its error."""
    name: str
    stdout: str = ""
    params: dict[str, dict] = field(default_factory=dict)   # key -> {"dtype", "shape", "values"}
    error: str | None = None
    seconds: float = 0.0
    recorded_stdout: str | None = None       # GradViz: run_script's captured output (recording on)


def _tensor_entry(t) -> dict:
    values = t.detach().double()
    # the dtype's name: printing a dtype is compared with the printed text, not here
    return {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
            "values": np.asarray(values.tolist()).ravel().tolist()}


def final_parameters(namespace: dict, torch) -> dict[str, dict]:
    """Every parameter a script's globals hold, keyed by where it was found (see the module doc)."""
    out: dict[str, dict] = {}
    seen: set[int] = set()
    public = {k: v for k, v in namespace.items() if not k.startswith("_")}
    for var, value in public.items():
        if isinstance(value, torch.nn.Module):
            for name, p in value.named_parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out[f"{var}.{name}"] = _tensor_entry(p)
    for var, value in public.items():
        if isinstance(value, torch.Tensor) and value.requires_grad and value.is_leaf and id(value) not in seen:
            seen.add(id(value))
            out[var] = _tensor_entry(value)
    for var, value in public.items():
        if isinstance(value, torch.optim.Optimizer):
            for i, group in enumerate(value.param_groups):
                for j, p in enumerate(group["params"]):
                    if id(p) not in seen:
                        seen.add(id(p))
                        out[f"{var}.param_groups[{i}][{j}]"] = _tensor_entry(p)
    return out


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]


def _reset(torch) -> None:
    """The global state a fresh process starts with (scripts run one after another here)."""
    torch.manual_seed(TORCH_DEFAULT_SEED)
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)


def _run_path(path: Path, torch) -> tuple[str, dict, str | None]:
    """Run the script as ``__main__``; (printed text, final parameters, error or None)."""
    buffer = io.StringIO()
    namespace: dict = {}
    error = None
    with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            namespace = runpy.run_path(str(path), run_name="__main__")
        except BaseException as exc:          # noqa: BLE001 - a script's failure is a result
            error = _one_line(exc)
    params = final_parameters(namespace, torch) if error is None else {}
    return buffer.getvalue(), params, error


def run_torch(paths: list[Path]) -> list[Outcome]:
    import torch
    torch.set_num_threads(1)           # deterministic reductions, and no oversubscription
    out = []
    for path in paths:
        _reset(torch)
        start = time.perf_counter()
        stdout, params, error = _run_path(path, torch)
        out.append(Outcome(path.name, stdout, params, error, time.perf_counter() - start))
    return out


def run_gradviz(paths: list[Path]) -> list[Outcome]:
    """Each script twice on the core: through run_script (recorded; its printed text) and under
    ``installed()`` without a recorder (its printed text and its globals' parameters)."""
    from gradviz.training.script import run_script
    from gradviz.training.torch_namespace import installed
    out = []
    for path in paths:
        with installed():
            import torch
            _reset(torch)
            start = time.perf_counter()
            stdout, params, error = _run_path(path, torch)
            seconds = time.perf_counter() - start
        outcome = Outcome(path.name, stdout, params, error, seconds)
        with installed():
            import torch
            _reset(torch)
        buffer = io.StringIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run_script(path.read_text(encoding="utf-8"), str(path), stdout=buffer)
        outcome.recorded_stdout = result.stdout if isinstance(getattr(result, "stdout", None), str) \
            else buffer.getvalue()
        if result.error is not None and outcome.error is None:
            outcome.error = f"run_script: {result.error}"
        out.append(outcome)
    return out


def run_side(side: str, paths: list[Path], timeout: float = 300.0) -> subprocess.Popen:
    """Start one side's run of ``paths`` in a subprocess; :func:`collect` waits for it."""
    out_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"gradviz-differential-{side}-{os.getpid()}-{id(paths)}.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.scripts.harness", side, str(out_file), *map(str, paths)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0"))
    proc.out_file, proc.timeout = out_file, timeout
    return proc


def collect(proc: subprocess.Popen) -> dict[str, Outcome]:
    try:
        _, stderr = proc.communicate(timeout=proc.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"the {proc.args[3]} side did not finish within {proc.timeout} s") from None
    if proc.returncode != 0 or not proc.out_file.exists():
        raise RuntimeError(f"the {proc.args[3]} side failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    data = json.loads(proc.out_file.read_text())
    proc.out_file.unlink()
    return {d["name"]: Outcome(**d) for d in data}


# -- comparing --------------------------------------------------------------------------------

# A number as Python and torch print them: 12, -0.5, 1.8000, 2., 1e-05, 3.2000e+01, nan, inf.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|nan|inf)(?![\w])")


def split_numbers(line: str) -> tuple[str, list[str]]:
    """(the line with each number replaced by ``{}``, the numbers as printed)."""
    return NUMBER.sub("{}", line), NUMBER.findall(line)


def _last_place(token: str) -> float:
    """One unit in the last printed place of ``token`` (0 for an integer: it must be equal)."""
    mantissa, _, exponent = token.lower().lstrip("+-").partition("e")
    if "." not in mantissa and not exponent:
        return 0.0
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_close(a: str, b: str, tol: Tolerance) -> bool:
    if a == b:
        return True
    if _last_place(a) == 0.0 and _last_place(b) == 0.0:
        return False           # integers (counts, indices, class labels) are equal or wrong
    x, y = float(a), float(b)
    if not (math.isfinite(x) and math.isfinite(y)):
        return False
    allowed = tol.rtol * max(abs(x), abs(y)) + max(_last_place(a), _last_place(b))
    return abs(x - y) <= allowed


def compare_text(expected: str, actual: str, tol: Tolerance, what: str = "printed output") -> list[str]:
    """Differences between two printed outputs (empty if none), one line each, at most five."""
    lines_e, lines_a = expected.split("\n"), actual.split("\n")
    problems = []
    for i, (le, la) in enumerate(itertools.zip_longest(lines_e, lines_a)):
        if le == la:
            continue
        text_e, numbers_e = split_numbers(le or "")
        text_a, numbers_a = split_numbers(la or "")
        if le is None or la is None or text_e != text_a:
            problems.append(f"{what}, line {i + 1}: torch printed {le!r}, GradViz {la!r}")
        else:
            bad = [(e, a) for e, a in zip(numbers_e, numbers_a) if not numbers_close(e, a, tol)]
            if bad:
                problems.append(f"{what}, line {i + 1}: torch printed {le!r}, GradViz {la!r}: "
                                f"{bad[0][0]} vs {bad[0][1]} is more than {tol.name} rounding allows ({tol.why})")
        if len(problems) == 5:
            break
    return problems


def compare_params(expected: dict, actual: dict, tol: Tolerance) -> list[str]:
    problems = []
    if list(expected) != list(actual):
        return [f"parameters: torch has {list(expected)}, GradViz {list(actual)}"]
    for key, e in expected.items():
        a = actual[key]
        if e["dtype"] != a["dtype"] or e["shape"] != a["shape"]:
            problems.append(f"parameter {key}: torch {e['dtype']} {e['shape']}, GradViz {a['dtype']} {a['shape']}")
            continue
        ev, av = np.asarray(e["values"], dtype=np.float64), np.asarray(a["values"], dtype=np.float64)
        scale = float(np.max(np.abs(ev))) if ev.size else 0.0
        diff = np.abs(ev - av)
        if ev.size and not (np.all(diff <= tol.rtol * max(scale, np.finfo(np.float64).tiny))
                            and np.array_equal(np.isnan(ev), np.isnan(av))):
            i = int(np.nanargmax(diff)) if np.any(np.isfinite(diff)) else 0
            problems.append(f"parameter {key}[{i}]: torch {ev[i]!r}, GradViz {av[i]!r} "
                            f"(relative to {scale:.3g}: {diff[i] / max(scale, 1e-300):.2e}; allowed: {tol.why})")
    return problems


def compare(expected: Outcome, actual: Outcome, tol: Tolerance) -> list[str]:
    """Everything that differs between torch's run and GradViz's (empty when they agree)."""
    if expected.error is not None:
        return [f"the script fails under real torch: {expected.error}"]
    if actual.error is not None:
        return [f"GradViz: {actual.error}"]
    problems = compare_text(expected.stdout, actual.stdout, tol)
    if actual.recorded_stdout is not None:
        problems += compare_text(expected.stdout, actual.recorded_stdout, tol, "printed output (recorded run)")
    return problems + compare_params(expected.params, actual.params, tol)


def main(argv: list[str]) -> int:
    side, out_file, *paths = argv
    runner = {"torch": run_torch, "gradviz": run_gradviz}[side]
    outcomes = runner([Path(p) for p in paths])
    Path(out_file).write_text(json.dumps([asdict(o) for o in outcomes]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
