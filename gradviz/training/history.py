"""What a Session records: a ``History`` of every optimizer step and a loss ``Landscape`` (the
``Trace`` of one iteration is ``gradviz.trace.Trace``). Plain dataclasses of numpy arrays; no
computing beyond flattening.

``History`` rows are optimizer steps ``k`` (0-based). ``params[name][k]`` is the value *before*
step k (the one the loss at step k was computed with), so ``params`` has one row more than the
other arrays: ``params[name][steps]`` is the final value. ``HistoryBuffer`` (at the end) holds
those arrays preallocated while a run fills them.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

    def grad_norm(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """‖∇‖ over every parameter's elements at steps ``start:stop``, float64 (nan where a
        ``.grad`` was None)."""
        stop = self.steps if stop is None else stop
        total = np.zeros(max(stop - start, 0))
        if not len(total):
            return total              # reshape(0, -1) is ambiguous: nothing to add up anyway
        for name in self.param_names:
            g = np.asarray(self.grads[name][start:stop], dtype=np.float64).reshape(len(total), -1)
            total += np.einsum("ij,ij->i", g, g)
        return np.sqrt(total)

    def step_sizes(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The step each update took, element by element: ``|θ(k+1) − θ(k)|`` of parameter
        ``name`` for steps ``start:stop``, float64, shape ``(stop - start, *shape)``."""
        stop = self.steps if stop is None else stop
        p = self.params[name]
        return np.abs(np.asarray(p[start + 1:stop + 1], np.float64) - np.asarray(p[start:stop], np.float64))

    def state_keys(self) -> list[str]:
        """The optimizer-state buffers of this run (``momentum_buffer``, ``exp_avg``…) in the order
        the parameters first have them; the ``step`` counter is not a buffer."""
        keys: list[str] = []
        for name in self.param_names:
            for key in (self.state.get(name) or {}):
                if key != "step" and key not in keys:
                    keys.append(key)
        return keys

    def columns(self) -> dict[str, np.ndarray]:
        """Flat float64 columns of length ``steps``: ``step``, ``loss``, ``micro_loss[j]`` (when
        accumulating), one column per parameter element (value before the step: ``w``,
        ``0.weight[1,0]``), ``grad.<element>``, ``state.<element>.<key>``, ``grad_scale``, ``skipped``."""
        n = self.steps
        cols: dict[str, np.ndarray] = {"step": np.arange(n, dtype=np.float64),
                                       "loss": np.asarray(self.loss, dtype=np.float64)}
        if self.accumulation_steps > 1:
            for j in range(self.accumulation_steps):
                cols[f"micro_loss[{j}]"] = np.asarray(self.micro_losses[:, j], dtype=np.float64)

        def add(prefix: str, name: str, values: np.ndarray, suffix: str = "") -> None:
            elements = element_names(name, values.shape[1:])
            # an explicit width: reshape(0, -1) is ambiguous and raises for a run of 0 steps
            flat = np.asarray(values[:n], dtype=np.float64).reshape(n, len(elements))
            for i, element in enumerate(elements):
                cols[f"{prefix}{element}{suffix}"] = flat[:, i]

        for name in self.param_names:
            add("", name, self.params[name])
        for name in self.param_names:
            add("grad.", name, self.grads[name])
        for name in self.param_names:
            for key, values in self.state.get(name, {}).items():
                add("state.", name, values, "." + key)
        cols["grad_scale"] = np.asarray(self.grad_scale, dtype=np.float64)
        cols["skipped"] = np.asarray(self.skipped, dtype=np.float64)
        if self.lr is not None:
            cols["lr"] = np.asarray(self.lr[:n], dtype=np.float64)
        if self.clip_norm is not None:
            cols["clip_norm"] = np.asarray(self.clip_norm[:n], dtype=np.float64)
        return cols

    def to_csv(self, path) -> None:
        """One row per optimizer step, the columns of :meth:`columns` (nan stays ``nan``)."""
        cols = self.columns()
        table = np.column_stack(list(cols.values())) if self.steps else np.empty((0, len(cols)))
        with Path(path).open("w", newline="") as f:
            csv.writer(f).writerow(cols)          # quotes names with commas: "0.weight[1,0]"
            np.savetxt(f, table, fmt="%.17g", delimiter=",")

    def to_json(self, path) -> None:
        """Metadata plus :meth:`columns` as lists; non-finite numbers become ``null``."""
        def clean(values: np.ndarray) -> list:
            values = np.asarray(values, dtype=np.float64)
            out = values.tolist()
            if not np.isfinite(values).all():
                out = [v if np.isfinite(v) else None for v in out]
            return out

        document = {
            "variant": self.variant, "param_names": list(self.param_names), "steps": self.steps,
            "accumulation_steps": self.accumulation_steps, "diverged_at": self.diverged_at,
            "message": self.message,
            "shapes": {name: list(self.params[name].shape[1:]) for name in self.param_names},
            "final": {name: clean(self.params[name][self.steps].ravel()) for name in self.param_names},
            "columns": {name: clean(values) for name, values in self.columns().items()},
        }
        Path(path).write_text(json.dumps(document, allow_nan=False))


@dataclass
class Landscape:
    """The loss over a grid of two scalar parameters: ``z[i, j]`` is the loss at
    ``(xs[j], ys[i])`` on the whole data set, every other parameter at its initial value."""
    p1: str
    p2: str
    xs: np.ndarray
    ys: np.ndarray
    z: np.ndarray


def _kind(values) -> str:
    values = np.asarray(values)
    return "nan" if np.isnan(values).any() else "inf"


class HistoryBuffer:
    """Preallocated History arrays for ``total`` steps, filled in place as a run goes (the step
    engine writes rows; the Session checks them for divergence and cuts a ``History`` out)."""

    def __init__(self, names: list[str], params: list, total: int, accumulation_steps: int, *,
                 clipping: bool = False):
        self.names, self.total = names, total
        self.lr = np.full(total, np.nan)            # the step's lr (first param group)
        self.clip_norm = np.full(total, np.nan) if clipping else None
        self.loss = np.full(total, np.nan)
        self.micro = np.full((total, accumulation_steps), np.nan)
        self.params = [np.empty((total + 1,) + p.shape, dtype=p.dtype) for p in params]
        for values, p in zip(self.params, params):
            values[0] = p._data
        self.grads = [np.full((total,) + p.shape, np.nan, dtype=p.dtype) for p in params]
        self.grad_none = [np.zeros(total, dtype=bool) for _ in params]
        self.state: list[dict[str, np.ndarray]] = [{} for _ in params]
        self.grad_scale = np.ones(total)
        self.skipped = np.zeros(total, dtype=bool)

    def record_state(self, i: int, step: int, state: dict) -> None:
        """Parameter ``i``'s optimizer state after step ``step`` (a buffer appears the step it exists)."""
        arrays = self.state[i]
        for key, value in state.items():
            values = arrays.get(key)
            if values is None:
                value = np.asarray(value)
                dtype = value.dtype if value.dtype.kind == "f" and value.ndim else np.float64
                values = arrays[key] = np.full((self.total,) + value.shape, np.nan, dtype=dtype)
            values[step] = value

    def first_bad(self, start: int, stop: int, check_grads: bool) -> tuple[int, str] | None:
        """The first step in [start, stop) whose loss, grads or new params are not finite, and why."""
        if stop <= start:
            return None
        found: list[tuple[int, str]] = []

        def first(mask: np.ndarray, what: str, values: np.ndarray) -> None:
            hits = np.flatnonzero(mask)
            if hits.size:
                step = start + int(hits[0])
                found.append((step, f"{what} is {_kind(values[step])}"))

        first(~np.isfinite(self.loss[start:stop]), "loss", self.loss)
        for name, grads, none in zip(self.names, self.grads, self.grad_none):
            if check_grads:
                rows = grads[start:stop].reshape(stop - start, -1)
                first(~np.isfinite(rows).all(axis=1) & ~none[start:stop], f"the gradient of {name}", grads)
        for name, params in zip(self.names, self.params):
            rows = params[start + 1:stop + 1].reshape(stop - start, -1)
            first(~np.isfinite(rows).all(axis=1), f"{name}", params[1:])
        if not found:
            return None
        return min(found, key=lambda item: item[0])     # ties keep the order above: loss, grads, params

    def history(self, variant: str, steps: int, diverged_at: int | None, message: str,
                copy_out: bool = False) -> History:
        def cut(a: np.ndarray, n: int) -> np.ndarray:
            return a[:n].copy() if copy_out else a[:n]
        return History(
            variant=variant, param_names=list(self.names), steps=steps,
            accumulation_steps=self.micro.shape[1], loss=cut(self.loss, steps),
            micro_losses=cut(self.micro, steps),
            params={n: cut(a, steps + 1) for n, a in zip(self.names, self.params)},
            grads={n: cut(a, steps) for n, a in zip(self.names, self.grads)},
            state={n: {key: cut(a, steps) for key, a in s.items()} for n, s in zip(self.names, self.state)},
            grad_scale=cut(self.grad_scale, steps), skipped=cut(self.skipped, steps),
            diverged_at=diverged_at, message=message, lr=cut(self.lr, steps),
            clip_norm=None if self.clip_norm is None else cut(self.clip_norm, steps))
