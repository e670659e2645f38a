"""A guided tour's stops as places in a replay: which run and iteration, which frame, which node.

    stops = lesson_tour(scenario)             # [[tour]] of a TOML file, or a script's "# tour:" comments
    variant = stop_variant(scenario, stop)    # the run the stop is in (0: the main run)
    place = resolve(replay, stop)             # replay: that run's iteration ``stop.iteration``
    place.frame, place.node                   # the Player's position, the node to highlight (or None)

Where a stop lands in the replay of its iteration (one rule, the same for every view and test):

- ``event`` given: the first frame whose event is of that kind within ``phase`` (of ``micro_batch``)
  or within the whole iteration; when ``node`` is given too, the first such event about that node
  (if there is one, else the first event of that kind);
- else ``node`` and ``phase`` given: the first event about the node within the phase (the
  backward's accumulation into ``w.grad``, say), else the start of the phase;
- else ``phase`` given: the start of the phase (right after it begins);
- else: frame 0, the start of the iteration (what ``.grad`` holds before anything runs).

A stop's node is a parameter or input name (``w``, ``0.weight``, ``x``) or an op's grad_fn name
(``MulBackward0``), as ``Replay.node_name`` gives it. No Qt here.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..scenario.schema import Scenario, TourStop
from ..scenario.script_source import tour as script_tour

__all__ = ["StopPlace", "lesson_tour", "stop_variant", "resolve", "node_ids", "stop_label"]


@dataclass(frozen=True)
class StopPlace:
    """Where a stop is in its replay: the Player's ``frame`` and the ``node`` id to highlight."""
    frame: int
    node: int | None


def lesson_tour(scenario: Scenario | None) -> list[TourStop]:
    """The scenario's tour: its ``[[tour]]`` stops, or a script's ``# tour:`` comments (a bad comment
    raises its one-line ScenarioError); [] without one."""
    if scenario is None:
        return []
    if scenario.script is not None:
        name = scenario.path.name if scenario.path is not None else "script.py"
        return script_tour(scenario.script, name)
    return list(scenario.tour)


def stop_variant(scenario: Scenario, stop: TourStop) -> int:
    """The index of the run ``stop`` is in (0, the main run, when it names none or an unknown one)."""
    if stop.run is None:
        return 0
    names = [v.name for v in scenario.variants()]
    return names.index(stop.run) if stop.run in names else 0


def node_ids(replay, name: str | None) -> list[int]:
    """The nodes of ``replay`` named ``name`` (``Replay.node_name``), in node order."""
    if not name:
        return []
    return [nid for nid in replay.nodes if replay.node_name(nid) == name]


def _spans(replay, stop: TourStop) -> list[tuple[int, int]]:
    """The ranges of frames a stop is looked for in: each run of its phase (of its micro-batch;
    a script may enter a phase more than once), every phase of its micro-batch, or all frames."""
    last = len(replay) - 1
    starts = replay.phase_starts()
    bounds = [(pos, (starts[k + 1][0] - 1 if k + 1 < len(starts) else last), phase, mb)
              for k, (pos, phase, mb) in enumerate(starts)]
    if stop.phase is not None:
        for micro_batch in (stop.micro_batch, None):        # no such micro-batch: any
            spans = [(lo, hi) for lo, hi, phase, mb in bounds
                     if phase == stop.phase and (micro_batch is None or mb == micro_batch)]
            if spans:
                return spans
        return [(0, last)]                                  # no such phase in this iteration
    if stop.micro_batch is not None:
        spans = [(lo, hi) for lo, hi, _phase, mb in bounds if mb == stop.micro_batch]
        if spans:
            return [(spans[0][0], spans[-1][1])]
    return [(0, last)]


def resolve(replay, stop: TourStop) -> StopPlace:
    """Where ``stop`` lands in ``replay`` (see the module docstring)."""
    spans = _spans(replay, stop)
    frames = [i for lo, hi in spans for i in range(max(lo, 1), hi + 1)]
    ids = node_ids(replay, stop.node)
    frame = spans[0][0] if (stop.phase is not None or stop.micro_batch is not None) else 0
    if stop.event is not None:
        hits = [i for i in frames if replay.frame(i).event_kind == stop.event]
        about = [i for i in hits if replay.frame(i).event_node in ids]
        frame = (about or hits or [frame])[0]
    elif ids and stop.phase is not None:
        about = [i for i in frames if replay.frame(i).event_node in ids]
        frame = (about or [frame])[0]
    node = None
    if ids:
        current = replay.frame(frame).event_node
        node = current if current in ids else ids[0]
    return StopPlace(frame, node)


def stop_label(index: int, count: int) -> str:
    """``"Stop 2 of 5"`` for the 0-based ``index`` 1 of ``count`` stops."""
    return f"Stop {index + 1} of {count}"
