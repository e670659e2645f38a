"""Time a control edit's check, Save and Open on scenarios of 100 KB, 1 MB and 2 MB, before and after
issue 12's changes, against reading the same text with tomllib.

    python benchmarks/bench_edits.py            # from the repo root

Each scenario is generated: a commented file with inline two-feature data (the largest part of any
scenario near the size limit), the 2 MB one with the most points a file may hold, padded with
comment lines to ``LIMITS["max_file_bytes"]``.

- edit: what the Controls do for one lr change. After: ``edits.editable_copy`` (sharing the data)
  + ``check_scenario(new, before)``. Before: ``copy.deepcopy`` + the full ``validate`` with the
  reader's array checks. "re-serialise": the path the issue measured (``loads(dumps(new))``, the
  file text re-made and re-read on every edit; at 2 MB it is refused by the size limit).
- save: ``saver.save`` of the edited scenario. Before: tomlkit parses the whole source text, the
  arrays are read by tomllib and checked by the reader, and the written text is loaded once more.
- open: ``loader.loads`` of the text. Before: tomllib reads the arrays, the reader checks them.

"Before" runs the same code with the fast paths switched off (``legacy``), in the same process.
The reference is ``tomllib.loads`` of the same text: what any TOML application pays to read it, so
the ratios hold on a slower or busier machine. Targets: an edit under 10 ms (any size), a 2 MB
save well under a second (under 0.5 s). Printed, not asserted.
"""
from __future__ import annotations

import contextlib
import copy
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradviz.scenario import LIMITS, ScenarioError, checks, loads, saver, toml_source  # noqa: E402
from gradviz.scenario.checks import validate  # noqa: E402
from gradviz.scenario.edits import check_scenario, editable_copy  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from limit_files import commented_moons  # noqa: E402

REPEATS = 5
SLOW_S = 2.0               # a measurement longer than this is taken once
EDIT_TARGET_S = 0.010
SAVE_TARGET_S = 0.5
SIZES = (("100 KB", 5_000, 100_000), ("1 MB", 50_000, 1_000_000),
         ("2 MB", LIMITS["max_points"], LIMITS["max_file_bytes"]))
def scenario_text(points: int, size: int) -> str:
    """A commented scenario with ``points`` two-feature points, padded with comments to ``size`` bytes."""
    return commented_moons(points, size)


@contextlib.contextmanager
def legacy():
    """The code as it was: no fast array reader, writer or check (each falls back to the old path)."""
    saved = (toml_source.FAST_ARRAY_CHARS, saver.FAST_ARRAY_NUMBERS, checks._plain_array)
    toml_source.FAST_ARRAY_CHARS = saver.FAST_ARRAY_NUMBERS = 10 ** 12
    checks._plain_array = lambda *args: None
    try:
        yield
    finally:
        toml_source.FAST_ARRAY_CHARS, saver.FAST_ARRAY_NUMBERS, checks._plain_array = saved


def best(work) -> float:
    """Seconds: the best of REPEATS runs (one when the first is slower than SLOW_S)."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
        if times[0] > SLOW_S:
            break
    return min(times)


def edit_before(scenario):
    new = copy.deepcopy(scenario)
    new.optimizer.hyper["lr"] = 0.2
    validate(new)


def edit_after(scenario):
    new = editable_copy(scenario)
    new.optimizer.hyper["lr"] = 0.2
    assert check_scenario(new, scenario) is None


def reserialise(scenario):
    new = copy.deepcopy(scenario)
    new.optimizer.hyper["lr"] = 0.2
    try:
        loads(saver.dumps(new))
    except ScenarioError:          # over the size limit: the edit was refused
        pass


def save_before(scenario, path: Path):
    text = saver.render(scenario)
    loads(text, name=str(path))
    saver.write_text_atomic(path, text)


def measure(label: str, points: int, size: int, folder: Path) -> dict:
    text = scenario_text(points, size)
    path = folder / "bench.toml"
    row = dict(label=label, bytes=len(text.encode()), reference=best(lambda: tomllib.loads(text)))
    row["open_after"] = best(lambda: loads(text))
    scenario = loads(text)
    edited = editable_copy(scenario)
    edited.optimizer.hyper["lr"] = 0.2
    row["edit_after"] = best(lambda: edit_after(scenario))
    row["save_after"] = best(lambda: saver.save(copy.copy(edited), path))
    assert loads(path.read_text(encoding="utf-8")) == edited
    with legacy():
        row["open_before"] = best(lambda: loads(text))
        row["edit_before"] = best(lambda: edit_before(scenario))
        row["reserialise"] = best(lambda: reserialise(scenario))
        row["save_before"] = best(lambda: save_before(edited, path))
    return row


def main() -> int:
    print(f"{'scenario':<8} {'bytes':>9} {'tomllib':>8} | {'edit: before':>12} {'re-serialise':>12} "
          f"{'after':>8} {'after/ref':>9} | {'save: before':>12} {'after':>8} {'after/ref':>9} "
          f"{'speed-up':>8} | {'open: before':>12} {'after':>8} {'after/ref':>9}")
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        for label, points, size in SIZES:
            r = measure(label, points, size, Path(folder))
            ref = r["reference"]
            ok &= r["edit_after"] < EDIT_TARGET_S and r["save_after"] < SAVE_TARGET_S
            print(f"{r['label']:<8} {r['bytes']:>9} {ref * 1e3:>6.0f}ms | {r['edit_before'] * 1e3:>10.1f}ms "
                  f"{r['reserialise'] * 1e3:>10.0f}ms {r['edit_after'] * 1e3:>6.2f}ms {r['edit_after'] / ref:>9.4f} | "
                  f"{r['save_before'] * 1e3:>10.0f}ms {r['save_after'] * 1e3:>6.0f}ms {r['save_after'] / ref:>9.2f} "
                  f"{r['save_before'] / r['save_after']:>7.0f}x | {r['open_before'] * 1e3:>10.0f}ms "
                  f"{r['open_after'] * 1e3:>6.0f}ms {r['open_after'] / ref:>9.2f}")
    print(f"(ref: tomllib.loads of the same text; targets: edit < {EDIT_TARGET_S * 1e3:.0f} ms, "
          f"save < {SAVE_TARGET_S * 1e3:.0f} ms)")
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
