"""The step engine: one live model, optimizer, GradScaler and batch order, and the optimizer step.

``Engine.step(step)`` is exactly ``docs/contracts.md`` ("One optimizer step k"): it only calls
``forward``, the loss, ``backward()``, ``zero_grad()``, ``clip_grad_norm_``, ``scheduler.step()``
and ``step()`` in the order the toggles say, marks each phase for a recorder, and copies what it
sees into a History buffer. A ``Checkpoint`` holds everything step k depends on (the scheduler's
state too), so restoring one and stepping replays a step bit for bit.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .. import amp, trace
from .._tensor import Tensor, from_array
from ..nn.utils import clip_grad_norm_
from ..optim.optimizer import FlatBinding
from .build import (
    Setup,
    batch_tensors,
    build_loss,
    build_model,
    build_optimizer,
    build_scaler,
    build_scheduler,
    loss_module_name,
)
from .history import HistoryBuffer
from .history_rows import Live, live_arrays

__all__ = ["Engine", "Checkpoint", "BatchOrder", "batch_order"]

_NO_AUTOCAST = contextlib.nullcontext()        # reusable: a run without autocast enters it every step


def batch_order(n: int, batch_size: int, shuffle: bool, seed: int) -> Iterator[np.ndarray]:
    """One index array per optimizer step, forever (docs/contracts.md; the exporter copies it)."""
    rng = np.random.default_rng(seed + 1)      # only for shuffling
    per_epoch = n // batch_size                # a partial last batch is dropped
    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for i in range(per_epoch):
            yield order[i * batch_size:(i + 1) * batch_size]


class BatchOrder:
    """:func:`batch_order` with a state that can be saved and restored (for exact replays)."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.rng = np.random.default_rng(seed + 1)
        self.per_epoch = n // batch_size
        self.position = self.per_epoch          # the next call starts an epoch
        self.order: np.ndarray | None = None

    def next(self) -> tuple[int, np.ndarray | None]:
        """(position in the epoch, indices); indices are None when not shuffling (use the position)."""
        if self.position == self.per_epoch:
            self.order = self.rng.permutation(self.n) if self.shuffle else None
            self.position = 0
        i = self.position
        self.position += 1
        if self.order is None:
            return i, None
        return i, self.order[i * self.batch_size:(i + 1) * self.batch_size]

    def get_state(self):
        return _snapshot(self.rng.bit_generator.state), self.order, self.position

    def set_state(self, state) -> None:
        self.rng.bit_generator.state = _snapshot(state[0])
        self.order, self.position = state[1], state[2]


@dataclass
class Checkpoint:
    """Everything an optimizer step depends on, taken before it: enough to replay it exactly."""
    params: list[np.ndarray]
    grads: list[np.ndarray | None]
    optimizer: dict
    scaler: dict | None
    batches: tuple | None
    scheduler: dict | None = None


class Engine:
    """One live copy of the model, optimizer, scaler and batch order, and the step that drives them.

    The Session keeps one engine for the recorded run and another for replays, so that tracing
    an iteration never disturbs a run in progress.
    """

    def __init__(self, setup: Setup):
        loop = setup.variant_spec.loop
        self.loop = loop
        self.model = build_model(setup)
        self.names, self.params, self.forward = self.model.names, self.model.params, self.model.forward
        # the parameters as views of one flat array per dtype (laid out as a History row), and the
        # optimizer's state buffers too once they exist (_adopt_state): recording a step copies a
        # row whole instead of array by array. Only where the arrays live changes, not a value.
        self.live: Live = live_arrays([p._data for p in self.params])
        for p, view in zip(self.params, self.live.arrays):
            p._data = view
        self.live_state: dict[str, Live] = {}
        self._state_seen = -1                    # len(optimizer.state) when the state was last adopted
        self.objective = setup.objective
        self.float16 = setup.float16
        self.autocast_dtype = setup.autocast_dtype          # float16, bfloat16 or None
        self.accumulation_steps = setup.accumulation_steps
        self.optimizer = build_optimizer(setup.variant_spec, self.params)
        self.scaler = build_scaler(setup)
        self.scheduler = build_scheduler(setup.variant_spec, self.optimizer)
        self.scheduler_first = self.scheduler is not None and loop.scheduler.placement == "before_step"
        self.max_norm = loop.clip_grad_norm
        self.unscale_first = self.scaler is not None and loop.unscale_before_clip
        self.zero_before = loop.zero_grad == "before_backward"
        self.zero_after = loop.zero_grad == "after_step"
        self.set_to_none = bool(loop.set_to_none)
        self.loss_fn = build_loss(setup)
        self.data = setup.data
        self.batches: BatchOrder | None = None
        self._cache: dict[int, list] = {}
        # called between the phases of a step (after each micro-batch's forward and backward), in
        # the stepping thread: the app's run thread steps aside there while the UI thread is busy
        # (ui/run_thread.py); None: nothing. It must not touch the engine.
        self.pause: Callable[[], None] | None = None
        if not self.objective:
            self.batch_size = setup.batch_size
            self.micro_size = setup.micro_size
            self.batches = BatchOrder(self.data.n, self.batch_size, loop.shuffle, setup.scenario.seed)

    # -- data ---------------------------------------------------------------------------------
    def next_micro_batches(self) -> list:
        """[(inputs, target)] for the next optimizer step, one per micro-batch (an empty dict and None
        for objectives)."""
        accumulation_steps = self.accumulation_steps
        if self.objective:
            return self._cache.setdefault(0, [({}, None)] * accumulation_steps)
        position, order = self.batches.next()
        if order is None:         # no shuffling: the same batches every epoch, built once
            cached = self._cache.get(position)
            if cached is None:
                start, mb = position * self.batch_size, self.micro_size
                cached = self._cache[position] = [batch_tensors(self.data, slice(start + j * mb, start + (j + 1) * mb))
                                                  for j in range(accumulation_steps)]
            return cached
        mb = self.micro_size
        return [batch_tensors(self.data, order[j * mb:(j + 1) * mb]) for j in range(accumulation_steps)]

    # -- one optimizer step (docs/contracts.md) -------------------------------------------------
    def step(self, step: int, buf: HistoryBuffer | None = None, rec=None) -> Tensor:
        """Run optimizer step ``step`` (0-based); record into ``buf`` (if given) and mark its phases
        for ``rec`` (if given). Returns the last micro-batch's loss."""
        optimizer, scaler, accumulation_steps = self.optimizer, self.scaler, self.accumulation_steps
        if self.zero_before:
            if rec is not None:
                rec.phase("zero_grad", 0, step)
            optimizer.zero_grad(self.set_to_none)
        total = 0.0
        loss = None
        for micro_batch, (inputs, target) in enumerate(self.next_micro_batches()):
            if rec is not None:
                rec.phase("forward", micro_batch, step)
            with amp.autocast(dtype=self.autocast_dtype) if self.autocast_dtype else _NO_AUTOCAST:
                pred = self.forward(inputs)
                if rec is not None:
                    rec.phase("loss", micro_batch, step)
                if self.objective:
                    loss = pred
                elif rec is not None:       # group the loss's ops so the graph view can fold them into one box
                    with trace.module_scope(loss_module_name(micro_batch, accumulation_steps)):
                        loss = self.loss_fn(pred, target)
                else:
                    loss = self.loss_fn(pred, target)
            value = loss.item()
            total += value
            if self.pause is not None:
                self.pause()
            if buf is not None:
                buf.micro[step, micro_batch] = value
            if accumulation_steps > 1 and self.loop.divide_loss:
                loss = loss / accumulation_steps
            if rec is not None:
                rec.phase("backward", micro_batch, step)
            if scaler is not None:
                if buf is not None and micro_batch == 0:
                    buf.grad_scale[step] = scaler.get_scale()
                scaler.scale(loss).backward()
            else:
                loss.backward()
            if self.pause is not None:
                self.pause()
        if rec is not None:
            rec.phase("step", 0, step)
        if self.unscale_first:
            scaler.unscale_(optimizer)
        if self.max_norm is not None:
            total_norm = clip_grad_norm_(self.params, self.max_norm)
            if buf is not None:
                buf.clip_norm[step] = total_norm.item()
        if scaler is not None and not self.unscale_first:
            # the grads were clipped while still scaled (the mistake); unscaling now is what
            # scaler.step() would do first, and lets the History hold the grads step() sees
            scaler.unscale_(optimizer)
        if self.scheduler_first:
            self._scheduler_step()
        if buf is not None:
            buf.record_grads(step, total / accumulation_steps, optimizer.param_groups[0]["lr"], self.params)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if self.scheduler is not None and not self.scheduler_first:
            self._scheduler_step()
        if len(optimizer.state) != self._state_seen:
            self._adopt_state()
        if buf is not None:
            if scaler is not None:
                buf.skipped[step] = scaler.last_step_skipped()
            buf.record_params(step, self.params, optimizer.state, self.live, self.live_state)
        if self.zero_after:
            if rec is not None:
                rec.phase("zero_grad_after", 0, step)
            optimizer.zero_grad(self.set_to_none)
        return loss

    def _adopt_state(self) -> None:
        """Move the optimizer's state buffers into :class:`Live` storage, key by key, where every
        parameter has the same keys and each key's arrays are all parameter-shaped (``exp_avg``) or
        all 0-d (``step``): the values are copied, the state dicts then hold views (updated in place
        as before). Keys that do not fit stay as they are (the History copies them one by one)."""
        state = self.optimizer.state
        self._state_seen = len(state)
        self.live_state = {}
        states = [state.get(p) for p in self.params]
        if not states or any(not s for s in states):
            if states and not any(states):       # a stateless algorithm (plain SGD): bind the parameters
                self._bind_flat()
            return
        keys = list(states[0])
        if any(list(s) != keys for s in states):
            return
        for key in keys:
            arrays = [s[key] for s in states]
            if not all(type(a) is np.ndarray and a.dtype.kind == "f" for a in arrays):
                continue
            shaped = all(a.shape == p._data.shape and a.dtype == p._data.dtype for a, p in zip(arrays, self.params))
            scalars = all(a.ndim == 0 and a.dtype == arrays[0].dtype for a in arrays)
            if not (shaped or scalars):
                continue
            live = self.live_state[key] = live_arrays(arrays)
            for s, view in zip(states, live.arrays):
                s[key] = view
        self._bind_flat()

    def _bind_flat(self) -> None:
        """Let the optimizer update every parameter with one call per op (``Optimizer.bind_flat``):
        the same numbers, without the per-parameter calls."""
        if len(self.live.flats) == 1 and all(len(live.flats) == 1 for live in self.live_state.values()):
            self.optimizer.bind_flat(FlatBinding(
                self.params, self.live.arrays, self.live.flats[0],
                {key: (live.flats[0], live.arrays) for key, live in self.live_state.items()}))

    def _scheduler_step(self) -> None:
        # torch warns when scheduler.step() comes before any optimizer.step() (placement
        # before_step, or a first step the GradScaler skipped); the run shows that, not a warning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step()

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            params=[p._data.copy() for p in self.params],
            grads=[None if p.grad is None else p.grad._data.copy() for p in self.params],
            optimizer=_snapshot(self.optimizer.state_dict()),
            scaler=None if self.scaler is None else dict(self.scaler.state_dict()),
            batches=None if self.batches is None else self.batches.get_state(),
            scheduler=None if self.scheduler is None else copy.deepcopy(self.scheduler.state_dict()))

    def restore(self, c: Checkpoint) -> None:
        for p, value, grad in zip(self.params, c.params, c.grads):
            np.copyto(p._data, value)
            p.grad = None if grad is None else from_array(grad.copy())
        self.optimizer.load_state_dict(_snapshot(c.optimizer))
        self._state_seen = -1                   # load_state_dict put new arrays in: adopt them again
        if self.scaler is not None:
            self.scaler.load_state_dict(c.scaler)
        if self.batches is not None:
            self.batches.set_state(c.batches)
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(c.scheduler))


def _snapshot(value):
    """``copy.deepcopy`` of a state dict (dicts, lists, tuples, numpy arrays, numbers, strings)
    without deepcopy's generic machinery: arrays are copied in their own memory order, as
    ``ndarray.__deepcopy__`` copies them; anything else goes through ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:                  # leaves inline: a checkpoint copies one dict per parameter
        return {k: v if type(v) in _ATOMIC else v.copy(order="K") if type(v) is np.ndarray and v.dtype.kind != "O"
                else _snapshot(v) for k, v in value.items()}
    if kind in _ATOMIC:
        return value
    if kind is np.ndarray and value.dtype.kind != "O":
        return value.copy(order="K")
    if kind is list:
        return [_snapshot(v) for v in value]
    if kind is tuple:
        return tuple(_snapshot(v) for v in value)
    return copy.deepcopy(value)


_ATOMIC = frozenset({int, float, bool, str, type(None)})
