"""What a Session records: a ``History`` of every optimizer step and a loss ``Landscape`` (the
``Trace`` of one iteration is ``gradviz.trace.Trace``). Plain dataclasses of numpy arrays; no
computing beyond flattening.

``History`` rows are optimizer steps ``k`` (0-based). ``params[name][k]`` is the value *before*
step k (the one the loss at step k was computed with), so ``params`` has one row more than the
other arrays: ``params[name][steps]`` is the final value. ``HistoryBuffer`` (at the end) holds
those arrays preallocated while a run fills them.

A run whose full History would not fit its share of ``DOCUMENT_HISTORY_BUDGET`` keeps every step of
the loss, micro-losses, lr, grad scale, skipped, clip norm and total gradient norm, but parameters,
gradients and optimizer state only every ``stride``-th step (``History.reduction`` says so; see
docs/history.md). With ``stride == 1`` (every run within the budget) row k is step k, as above.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, is_, itemgetter
from pathlib import Path

import numpy as np

from .history_pool import TOTAL_BYTES
from .history_rows import Live, _is_float, _Rows, _sum_squares

# The memory every run of one document may keep in its Histories together (parameters, gradients,
# optimizer state and per-step scalars); a Session's share is this divided by the variants. 1.5 GiB:
# with the program, its data and traces the app stays within 2 GiB (docs/history.md).
DOCUMENT_HISTORY_BUDGET = TOTAL_BYTES

_DATA, _GRAD = attrgetter("_data"), attrgetter("grad")
EXPORT_CHUNK_VALUES = 2_000_000   # float64 values an export converts at once (16 MB)
_ELEMENT = re.compile(r"^(?P<name>.+?)(?:\[(?P<index>\s*\d+\s*(?:,\s*\d+\s*)*)\])?$")


def element_name(name: str, index: tuple[int, ...]) -> str:
    """``w`` for a scalar (``index == ()``), else ``0.weight[1,0]``: the one spelling of an element."""
    return f"{name}[{','.join(map(str, index))}]" if index else name


def element_names(name: str, shape: tuple) -> list[str]:
    """``w`` for a scalar, else one name per element in C order: ``0.weight[1,0]``, ``v[2]``."""
    if shape == ():
        return [name]
    return [element_name(name, index) for index in np.ndindex(*shape)]


def parse_element(text: str) -> tuple[str, tuple[int, ...]] | None:
    """The inverse of :func:`element_name`: ``"0.weight[1,0]"`` -> ``("0.weight", (1, 0))``,
    ``"w"`` -> ``("w", ())``; None when ``text`` is not an element name."""
    match = _ELEMENT.match(text.strip())
    if not match:
        return None
    index = match.group("index")
    return match.group("name"), tuple(int(i) for i in index.split(",")) if index else ()


@dataclass
class History:
    """Every optimizer step of one run (one variant), as numpy arrays; k = optimizer step.

    - ``loss[k]``: the batch loss at step k, the mean over micro-batches of the *undivided* loss;
    - ``micro_losses[k, j]``: the undivided loss of micro-batch j;
    - ``params[name]``: ``(steps + 1, *shape)``, row k = the value before step k;
    - ``grads[name]``: ``(steps, *shape)``, the ``.grad`` the optimizer saw at step k (after
      ``GradScaler.unscale_``); nan where ``.grad`` was None;
    - ``state[name][key]``: ``(steps, *shape)``, the optimizer state after step k (``step`` as a
      float); nan before the state existed;
    - ``grad_scale[k]``: the scale the loss was multiplied by (1.0 without a scaler);
    - ``skipped[k]``: the scaler skipped ``optimizer.step()`` (an inf/nan gradient);
    - ``diverged_at``: the first step whose loss, gradients or new parameters were not finite
      (that step is the last row), or None; ``message`` says what happened, "" if nothing did.

    Reduced (``stride > 1``, the run did not fit its memory budget; ``reduction`` says so in one
    line): ``grads`` and ``state`` keep steps ``0, stride, 2·stride…`` (:meth:`row_steps`), ``params``
    the values before those steps plus the final value as its last row (:meth:`param_row_steps`);
    every per-step scalar above, and ``grad_norms``, still has every step. ``row(k)`` maps a step to
    its row. Arrays are at the run's dtype (float32 runs keep float32).
    """
    variant: str
    param_names: list[str]
    steps: int
    accumulation_steps: int
    loss: np.ndarray
    micro_losses: np.ndarray
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    state: dict[str, dict[str, np.ndarray]]
    grad_scale: np.ndarray
    skipped: np.ndarray
    diverged_at: int | None = None
    message: str = ""
    # lr[k]: the learning rate step k used (first param group; a scheduler changes it), or None
    # for an older History; clip_norm[k]: the total gradient norm clip_grad_norm_ measured at step
    # k before clipping (nan where nothing was clipped), None when the run never clips.
    lr: np.ndarray | None = None
    clip_norm: np.ndarray | None = None
    # stride: params/grads/state keep every stride-th step (1: every step); reduction: why, in one
    # line for the plots ("" when not reduced); grad_norms[k]: ‖∇‖ of step k as the run recorded it
    # (summed at the run's precision; None for a script's History), used when grads are reduced.
    stride: int = 1
    reduction: str = ""
    grad_norms: np.ndarray | None = None

    def row_steps(self) -> np.ndarray:
        """The step each row of ``grads`` and ``state`` holds (``arange(steps)`` when not reduced)."""
        return np.arange(0, self.steps, self.stride)

    def param_row_steps(self) -> np.ndarray:
        """The step each row of ``params`` is the value before (the last row: the final value)."""
        kept = np.arange(0, self.steps + 1, self.stride)
        rows = len(self.params[self.param_names[0]]) if self.param_names else len(kept)
        return kept if rows <= len(kept) else np.append(kept, self.steps)

    def row(self, step: int) -> int | None:
        """The row of ``grads``/``state`` (and of ``params``) holding step ``step``, or None when the
        History does not keep it (``params``' final row: ``param_row_steps()[-1]``)."""
        step = int(step)
        return step // self.stride if step % self.stride == 0 else None

    def grad_norm(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """‖∇‖ over every parameter's elements at steps ``start:stop``, float64 (nan where a
        ``.grad`` was None): from the stored gradients (summed in float64), or, in a reduced
        History, from ``grad_norms`` (every step)."""
        stop = self.steps if stop is None else stop
        if self.stride > 1 and self.grad_norms is not None:
            return np.asarray(self.grad_norms[start:stop], dtype=np.float64)
        total = np.zeros(max(stop - start, 0))
        if not len(total):
            return total              # reshape(0, -1) is ambiguous: nothing to add up anyway
        for name in self.param_names:
            g = np.asarray(self.grads[name][start:stop], dtype=np.float64).reshape(len(total), -1)
            total += np.einsum("ij,ij->i", g, g)
        return np.sqrt(total)

    def step_sizes(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The step each update took, element by element: ``|θ(k+1) − θ(k)|`` of parameter
        ``name`` for steps ``start:stop``, float64, shape ``(stop - start, *shape)``. In a reduced
        History ``start:stop`` are params rows and the value is the mean step between two rows,
        ``|θ(row r+1) − θ(row r)| / steps between them``, at ``param_row_steps()[start:stop]``."""
        p = self.params[name]
        stop = len(p) - 1 if stop is None else stop
        delta = np.abs(np.asarray(p[start + 1:stop + 1], np.float64) - np.asarray(p[start:stop], np.float64))
        if self.stride > 1 and len(delta):
            gaps = np.diff(self.param_row_steps()[start:stop + 1]).astype(np.float64)
            delta /= gaps.reshape((-1,) + (1,) * (delta.ndim - 1))
        return delta

    def state_keys(self) -> list[str]:
        """The optimizer-state buffers of this run (``momentum_buffer``, ``exp_avg``…) in the order
        the parameters first have them; the ``step`` counter is not a buffer."""
        keys: list[str] = []
        for name in self.param_names:
            for key in (self.state.get(name) or {}):
                if key != "step" and key not in keys:
                    keys.append(key)
        return keys

    # -- the flat columns (exports) ---------------------------------------------------------------
    def _tensor_sources(self) -> list[tuple[list[str], np.ndarray, str]]:
        """(column names, stored rows ``(rows, *shape)``, kind) of each tensor, in column order."""
        out = []

        def add(prefix: str, name: str, values: np.ndarray, suffix: str = "", kind: str = "grads") -> None:
            names = [f"{prefix}{element}{suffix}" for element in element_names(name, values.shape[1:])]
            out.append((names, values, kind))

        for name in self.param_names:
            add("", name, self.params[name], kind="params")
        for name in self.param_names:
            add("grad.", name, self.grads[name])
        for name in self.param_names:
            for key, values in self.state.get(name, {}).items():
                add("state.", name, values, "." + key)
        return out

    def _scalar_columns(self, start: int, stop: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The per-step columns before the tensors' (step, loss, micro losses) and after them."""
        head: dict[str, np.ndarray] = {"step": np.arange(start, stop, dtype=np.float64),
                                       "loss": np.asarray(self.loss[start:stop], dtype=np.float64)}
        if self.accumulation_steps > 1:
            for j in range(self.accumulation_steps):
                head[f"micro_loss[{j}]"] = np.asarray(self.micro_losses[start:stop, j], dtype=np.float64)
        tail = {"grad_scale": np.asarray(self.grad_scale[start:stop], dtype=np.float64),
                "skipped": np.asarray(self.skipped[start:stop], dtype=np.float64)}
        if self.lr is not None:
            tail["lr"] = np.asarray(self.lr[start:stop], dtype=np.float64)
        if self.clip_norm is not None:
            tail["clip_norm"] = np.asarray(self.clip_norm[start:stop], dtype=np.float64)
        if self.stride > 1:
            tail["grad_norm"] = self.grad_norm(start, stop)
        return head, tail

    def _block(self, values: np.ndarray, kind: str, start: int, stop: int, j0: int, j1: int) -> np.ndarray:
        """Columns ``j0:j1`` of one tensor at steps ``start:stop``, float64 (nan at steps not kept)."""
        width = int(np.prod(values.shape[1:], dtype=np.int64))
        if self.stride == 1:
            rows = np.asarray(values[start:stop]).reshape(stop - start, width)
            return np.asarray(rows[:, j0:j1], dtype=np.float64)
        steps = self.param_row_steps() if kind == "params" else self.row_steps()
        block = np.full((stop - start, j1 - j0), np.nan)
        lo, hi = int(np.searchsorted(steps, start)), int(np.searchsorted(steps, stop))
        if hi > lo:
            kept = np.asarray(values[lo:hi]).reshape(hi - lo, width)
            block[steps[lo:hi] - start] = kept[:, j0:j1]
        return block

    def columns(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Flat float64 columns for steps ``start:stop`` (default: every step): ``step``, ``loss``,
        ``micro_loss[j]`` (when accumulating), one column per parameter element (value before the
        step: ``w``, ``0.weight[1,0]``), ``grad.<element>``, ``state.<element>.<key>``,
        ``grad_scale``, ``skipped``. A reduced History has nan in the element columns at the steps it
        did not keep, and a ``grad_norm`` column (every step)."""
        stop = self.steps if stop is None else min(stop, self.steps)
        head, tail = self._scalar_columns(start, stop)
        cols = dict(head)
        for names, values, kind in self._tensor_sources():
            block = self._block(values, kind, start, stop, 0, len(names))
            for i, name in enumerate(names):
                cols[name] = block[:, i]
        cols.update(tail)
        return cols

    def column_names(self) -> list[str]:
        """The names of :meth:`columns`, in order, without computing any column."""
        head, tail = self._scalar_columns(0, 0)
        return [*head, *(n for names, _, _ in self._tensor_sources() for n in names), *tail]

    def to_csv(self, path) -> None:
        """One row per optimizer step, the columns of :meth:`columns` (nan stays ``nan``), written
        in chunks of rows: memory stays bounded (EXPORT_CHUNK_VALUES values) whatever the size."""
        names = self.column_names()
        chunk = max(1, EXPORT_CHUNK_VALUES // max(len(names), 1))
        with Path(path).open("w", newline="") as f:
            csv.writer(f).writerow(names)          # quotes names with commas: "0.weight[1,0]"
            for start in range(0, self.steps, chunk):
                cols = self.columns(start, min(self.steps, start + chunk))
                np.savetxt(f, np.column_stack(list(cols.values())), fmt="%.17g", delimiter=",")

    def to_json(self, path) -> None:
        """Metadata plus :meth:`columns` as lists; non-finite numbers become ``null``. Written a
        few columns at a time, so memory stays bounded whatever the size."""
        def clean(values: np.ndarray) -> str:
            values = np.asarray(values, dtype=np.float64)
            out = values.tolist()
            if not np.isfinite(values).all():
                out = [v if math.isfinite(v) else None for v in out]
            return json.dumps(out, allow_nan=False)

        n = self.steps
        meta = {
            "variant": self.variant, "param_names": list(self.param_names), "steps": n,
            "accumulation_steps": self.accumulation_steps, "diverged_at": self.diverged_at,
            "message": self.message, "stride": self.stride, "reduction": self.reduction,
            "shapes": {name: list(self.params[name].shape[1:]) for name in self.param_names},
        }
        head, tail = self._scalar_columns(0, n)
        group = max(1, EXPORT_CHUNK_VALUES // max(n, 1))      # tensor columns converted at once
        with Path(path).open("w", encoding="utf-8") as f:
            f.write(json.dumps(meta)[:-1])
            f.write(', "final": {' + ", ".join(f"{json.dumps(name)}: {clean(self.params[name][-1].ravel())}"
                                              for name in self.param_names) + "}")
            f.write(', "columns": {')
            first = True

            def put(name: str, values: np.ndarray) -> None:
                nonlocal first
                f.write(("" if first else ", ") + f"{json.dumps(name)}: {clean(values)}")
                first = False

            for name, values in head.items():
                put(name, values)
            for names, values, kind in self._tensor_sources():
                for j0 in range(0, len(names), group):
                    j1 = min(len(names), j0 + group)
                    block = self._block(values, kind, 0, n, j0, j1)
                    for i in range(j1 - j0):
                        put(names[j0 + i], block[:, i])
            for name, values in tail.items():
                put(name, values)
            f.write("}}")


@dataclass
class Landscape:
    """The loss over a grid of two scalar parameters: ``z[i, j]`` is the loss at
    ``(xs[j], ys[i])`` on the whole data set, every other parameter at its initial value."""
    p1: str
    p2: str
    xs: np.ndarray
    ys: np.ndarray
    z: np.ndarray



def history_bytes(total: int, stride: int, row_bytes: dict[str, int], step_bytes: int) -> int:
    """Bytes a History of ``total`` steps keeps with ``stride``: ``row_bytes`` of one row of
    ``params``, ``grads`` and ``state`` (every key), ``step_bytes`` of the per-step scalars."""
    rows = -(-total // stride)
    param_rows = total // stride + 1 + (1 if stride > 1 else 0)
    return (total * step_bytes + param_rows * row_bytes["params"]
            + rows * (row_bytes["grads"] + row_bytes["state"]))


def plan_stride(total: int, row_bytes: dict[str, int], step_bytes: int, budget: int) -> tuple[int, str]:
    """The smallest stride whose History fits ``budget`` bytes, and the one-line reduction text
    ("" when every step fits)."""
    full = history_bytes(total, 1, row_bytes, step_bytes)
    if full <= budget or total <= 1:
        return 1, ""
    per_row = row_bytes["params"] + row_bytes["grads"] + row_bytes["state"]
    room = budget - total * step_bytes - 2 * row_bytes["params"]
    rows = max(1, room // max(per_row, 1))
    stride = max(2, -(-total // rows))
    while stride < total and history_bytes(total, stride, row_bytes, step_bytes) > budget:
        stride += 1
    return stride, (f"parameters, gradients and optimizer state every {_ordinal(stride)} step: the full "
                    f"History would need {_size(full)}, over this run's {_size(budget)} budget")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _size(n: float) -> str:
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def _kind(values) -> str:
    values = np.asarray(values)
    return "nan" if np.isnan(values).any() else "inf"


class HistoryBuffer:
    """Preallocated History arrays for ``total`` steps, filled in place as a run goes.

    Storage: per-step scalars (loss, micro-batch losses, lr, grad scale, skipped, clip norm, the total
    gradient norm) for every step; parameter values, gradients and optimizer state at the dtype the
    run has, every ``stride``-th step (1: every step), each kind as one ``(rows, elements)`` array per
    dtype written with one ``concatenate`` per step, or one ``copyto`` from the engine's :class:`Live`
    storage (uninitialised: a page is touched only when its row is written; from the pool of
    released History memory when a block fits, its pages already in: history_pool.py). Row ``r`` of
    grads/state is step ``r * stride``; row ``r`` of params is the value before step ``r * stride``,
    and with ``stride > 1`` a last row holds the final value (``finish``).

    Divergence is checked as the rows are written: the Σx² of the row just written (BLAS, the gradient
    norm for free) is finite unless an element is not (or it overflowed), and only then does
    :meth:`bad_at` look at that one step's elements. ``suspect`` says the last step needs that look.

    The step engine writes through :meth:`record_grads` and :meth:`record_params`; the script
    recorder fills the per-parameter views (``params[i][k]``, ``grads[i][k]``, ``grad_none``,
    :meth:`record_state``) directly.
    """

    def __init__(self, names: list[str], params: list, total: int, accumulation_steps: int, *,
                 clipping: bool = False, stride: int = 1, reduction: str = ""):
        self.names, self.total = names, total
        self.stride = stride = max(1, int(stride))
        self.reduction = reduction if stride > 1 else ""
        rows = -(-total // stride)                      # grads/state rows: steps 0, s, 2s... < total
        self.lr = np.full(total, np.nan)                # the step's lr (first param group)
        self.clip_norm = np.full(total, np.nan) if clipping else None
        self.loss = np.full(total, np.nan)
        self.micro = np.empty((total, accumulation_steps))     # the engine writes every entry
        self.norm = np.empty(total)                     # ‖∇‖ of every step (the engine's record)
        self.norms_recorded = False
        shapes = [tuple(p._data.shape) for p in params]
        self._shapes = shapes
        dtypes = [p._data.dtype for p in params]
        # params: steps 0, s, 2s, ... (<= total) and, with stride > 1, one more row for the final value
        self._params = _Rows(total // stride + 1 + (1 if stride > 1 else 0), shapes, dtypes, True)
        self.params = self._params.views
        for values, p in zip(self.params, params):
            values[0] = p._data
        self._grads = _Rows(rows, shapes, dtypes, False)    # unpadded: the norm sums one flat row
        self.grads = self._grads.views
        self.grad_none = [np.zeros(total, dtype=bool) for _ in params]
        self.state: list[dict[str, np.ndarray]] = [{} for _ in params]
        self._state_rows: dict[str, _Rows] = {}        # keys whose arrays have the parameters' layout
        self._state_count = -1                          # keys over all parameters once every one has all
        self._plan: tuple | None = None                 # how the live state is copied (_live_plan)
        self.grad_scale = np.ones(total)
        self.skipped = np.zeros(total, dtype=bool)
        self.suspect = False                            # the last step's cheap check tripped
        self._none_step = -1                            # the last step some .grad was None
        self.tail_at: int | None = None                 # the step the final params row holds (stride > 1)

    def row(self, step: int) -> int | None:
        """The grads/state row holding ``step``, or None when that step is not kept."""
        return step // self.stride if step % self.stride == 0 else None

    # -- the engine's writes ------------------------------------------------------------------
    def record_grads(self, step: int, loss: float, lr: float, params: list) -> None:
        """Step ``step``'s loss, lr and the ``.grad`` the optimizer is about to see."""
        self.loss[step] = loss
        self.lr[step] = lr
        self.norms_recorded = True
        if not math.isfinite(loss):
            self.suspect = True
        stride = self.stride
        row = step if stride == 1 else (step // stride if step % stride == 0 else None)
        grads = list(map(_GRAD, params))
        try:
            datas = list(map(_DATA, grads))
        except AttributeError:                         # some .grad is None
            datas = None
        if datas is not None:
            total = self._grads.write(row, datas)
        else:                                          # nan rows are filled when the History is cut
            self._none_step = step
            total, views = 0.0, self._grads
            for i, g in enumerate(grads):
                if g is None:
                    self.grad_none[i][step] = True
                    continue
                out = views.current(i, row)
                out[...] = g._data
                flat = out.reshape(-1)
                total += _sum_squares(flat)
            if not math.isfinite(total):
                self.suspect = True
            self.norm[step] = math.nan
            return
        if not math.isfinite(total):
            self.suspect = True
        self.norm[step] = math.sqrt(total) if total >= 0 else math.nan

    def record_params(self, step: int, params: list, optimizer_state: dict, live: Live | None = None,
                      live_state: dict[str, Live] | None = None) -> None:
        """The parameters after step ``step`` and (on a kept step) the optimizer state. ``live`` /
        ``live_state``: the engine's :class:`Live` storage of the parameters / of state keys; a row
        is then copied whole, wherever the arrays still are its views (else array by array)."""
        stride = self.stride
        after = step + 1
        rows = self._params
        row = after if stride == 1 else (after // stride if after % stride == 0 else None)
        if live is not None and all(map(is_, map(_DATA, params), live.arrays)) and rows.binds(live):
            total = rows.write_live(row, live)
        else:
            total = rows.write(row, list(map(_DATA, params)))
        if not math.isfinite(total):
            self.suspect = True
        if step % stride:
            return
        row = step // stride
        states = list(map(optimizer_state.get, params))
        if self._state_count >= 0 and None not in states and sum(map(len, states)) == self._state_count:
            plan = self._plan
            if plan is None or plan[0] is not live_state:
                plan = self._plan = self._live_plan(live_state)
            _, getter, expected, copies, others = plan
            if copies and all(map(is_, chain.from_iterable(map(getter, states)), expected)):
                for out, source in copies:                  # the live buffers, one copy per key and dtype
                    np.copyto(out[row], source)
                for key, rows in others:
                    rows.write_only(row, [s[key] for s in states])
                return
            for key, rows in self._state_rows.items():
                arrays = list(map(itemgetter(key), states))
                held = None if live_state is None else live_state.get(key)
                if held is not None and all(map(is_, arrays, held.arrays)) and rows.binds(held):
                    for group, source in zip(rows.groups, held.flats):
                        np.copyto(group[0][row], source)
                else:
                    rows.write_only(row, arrays)
            return
        for i, s in enumerate(states):
            if s:
                self.record_state(i, row, s)
        self._check_complete(states)

    def _live_plan(self, live_state: dict[str, Live] | None) -> tuple:
        """``(live_state, getter, expected, copies, others)``: the state keys held in ``live_state`` in
        this buffer's layout are copied whole (``copies``: (rows array, live flat) pairs) while
        ``getter(state)`` of every parameter's state gives exactly the ``expected`` arrays; the
        ``others`` (key, rows) are written array by array."""
        held = {key: live for key, live in (live_state or {}).items()
                if key in self._state_rows and self._state_rows[key].binds(live)}
        keys = list(held)
        copies = [(group[0], source) for key in keys
                  for group, source in zip(self._state_rows[key].groups, held[key].flats)]
        others = [(key, rows) for key, rows in self._state_rows.items() if key not in held]
        if not keys:
            return live_state, None, (), [], others
        getter = itemgetter(*keys) if len(keys) > 1 else (lambda s, key=keys[0]: (s[key],))
        expected = tuple(held[key].arrays[i] for i in range(len(self.names)) for key in keys)
        return live_state, getter, expected, copies, others

    def _check_complete(self, states: list) -> None:
        """Every parameter has the same state keys, each stored side by side: the fast path."""
        self._plan = None
        keys = set(self._state_rows)
        if not keys or any(not s or set(s) != keys for s in states) \
                or any(arrays.get(key) is not self._state_rows[key].views[i]
                       for i, arrays in enumerate(self.state) for key in keys):
            self._state_count = -1
            return
        self._state_count = len(keys) * len(states)

    def finish(self, done: int, params: list) -> None:
        """The run stopped after ``done`` steps with ``params`` final: with ``stride > 1`` keep their
        value as the last params row (a kept step already holds it)."""
        if self.stride > 1 and done % self.stride:
            row = done // self.stride + 1
            for values, p in zip(self.params, params):
                values[row] = p._data
            self.tail_at = done

    # -- checks ----------------------------------------------------------------------------------
    def bad_at(self, step: int, check_grads: bool) -> str | None:
        """Why step ``step`` (the last one written) diverged: its loss, a gradient or a new parameter
        is not finite (in that order); None when the cheap check only overflowed. Clears ``suspect``."""
        self.suspect = False
        loss = self.loss[step]
        if not math.isfinite(loss):
            return f"loss is {_kind(loss)}"
        if check_grads:
            row = self.row(step)
            for i, name in enumerate(self.names):
                if not self.grad_none[i][step]:
                    values = self._grads.current(i, row)
                    if not np.isfinite(values).all():
                        return f"the gradient of {name} is {_kind(values)}"
        after = step + 1
        row = after // self.stride if after % self.stride == 0 else None
        for i, name in enumerate(self.names):
            values = self._params.current(i, row)
            if not np.isfinite(values).all():
                return f"{name} is {_kind(values)}"
        if self.norms_recorded and not math.isfinite(self.norm[step]) and self._none_step != step:
            # Σg² overflowed at the run's precision: add it up again in float64
            self.norm[step] = math.sqrt(sum(float(np.sum(np.square(self._grads.current(i, self.row(step)),
                                                                   dtype=np.float64)))
                                            for i in range(len(self.names))))
        return None

    # -- the script recorder's writes ---------------------------------------------------------------
    def record_state(self, i: int, row: int, state: dict) -> None:
        """Parameter ``i``'s optimizer state at row ``row`` (a buffer appears the step it exists:
        its earlier rows are nan)."""
        arrays = self.state[i]
        for key, value in state.items():
            values = arrays.get(key)
            if values is None:
                values = arrays[key] = self._new_state(i, key, np.asarray(value))
                values[:row] = np.nan
            values[row] = value

    def _new_state(self, i: int, key: str, value: np.ndarray) -> np.ndarray:
        shape = self._shapes[i]
        rows = -(-self.total // self.stride)
        if value.ndim == 0:                       # the step counter: float64 for every parameter
            layout = ((), np.dtype(np.float64))
        elif value.shape == shape and _is_float(value.dtype):
            layout = (shape, value.dtype)
        else:                                     # not shaped like its parameter: kept on its own
            dtype = value.dtype if _is_float(value.dtype) else np.dtype(np.float64)
            return np.empty((rows,) + value.shape, dtype=dtype)
        stored = self._state_rows.get(key)
        if stored is None:
            if layout[0] == ():
                shapes, dtypes = [()] * len(self._shapes), [layout[1]] * len(self._shapes)
            else:
                shapes = list(self._shapes)
                dtypes = [layout[1] if p.dtype == self.params[i].dtype else p.dtype for p in self.params]
            stored = self._state_rows[key] = _Rows(rows, shapes, dtypes, True)
        view = stored.views[i]
        if view.shape[1:] != layout[0]:
            return np.empty((rows,) + value.shape, dtype=layout[1])
        return view

    # -- the History ------------------------------------------------------------------------------
    def param_rows(self, steps: int) -> int:
        """How many params rows a History of ``steps`` steps holds."""
        s = self.stride
        return steps // s + 1 + (1 if s > 1 and steps % s and self.tail_at == steps else 0)

    def history(self, variant: str, steps: int, diverged_at: int | None, message: str,
                copy_out: bool = False, first_params: list | None = None) -> History:
        """The History of the first ``steps`` steps: views of this buffer, or (``copy_out``) copies
        that hold none of its memory. ``first_params`` (with ``steps == 0``): the values before step
        0 as they are kept elsewhere (a Session's first checkpoint), used instead of copying the
        params row (25 ms for nine large variants)."""
        s = self.stride
        rows = -(-steps // s)
        for values, none in zip(self.grads, self.grad_none):       # nan where .grad was None
            hit = np.flatnonzero(none[:steps])
            if hit.size:
                if s > 1:
                    hit = hit[hit % s == 0] // s
                values[hit] = np.nan

        def cut(a: np.ndarray, n: int) -> np.ndarray:
            return a[:n].copy() if copy_out else a[:n]
        prows = self.param_rows(steps)                # the final value's row follows the kept ones
        if first_params is not None and steps == 0:
            params = {n: np.asarray(v).reshape((1,) + a.shape[1:])
                      for n, v, a in zip(self.names, first_params, self.params)}
        else:
            params = {n: cut(a, prows) for n, a in zip(self.names, self.params)}
        return History(
            variant=variant, param_names=list(self.names), steps=steps,
            accumulation_steps=self.micro.shape[1], loss=cut(self.loss, steps),
            micro_losses=cut(self.micro, steps), params=params,
            grads={n: cut(a, rows) for n, a in zip(self.names, self.grads)},
            state={n: {key: cut(a, rows) for key, a in st.items()} for n, st in zip(self.names, self.state)},
            grad_scale=cut(self.grad_scale, steps), skipped=cut(self.skipped, steps),
            diverged_at=diverged_at, message=message, lr=cut(self.lr, steps),
            clip_norm=None if self.clip_norm is None else cut(self.clip_norm, steps),
            stride=s, reduction=self.reduction,
            grad_norms=cut(self.norm, steps) if self.norms_recorded else None)
