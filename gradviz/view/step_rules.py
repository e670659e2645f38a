"""The update rule of each optimizer (and the GradScaler's unscale), with one element's numbers.

``step_formulas(replay, event, node, element, grad_before)`` turns one ``StepEvent`` into lines::

    buf ← μ · buf + g = 0.9 · (−3.1) + (−2.0) = −4.79
    w ← w − lr · buf = 1.0 − 0.1 · (−4.79) = 1.479

Each line ends with the recorded number where the trace keeps it (the parameter after the step, the
momentum buffer, Adam's m and v); intermediates it does not keep (Adam's bias-corrected m_hat and
v_hat, the decayed learning rate) are computed from recorded state.  ``Formula.computed`` is the
rule evaluated in float64, so a test checks that the formula reproduces the recorded result.  The
templates are each optimizer's ``UPDATE_RULE`` (``gradviz.optim``, the GradScaler's in
``gradviz.amp``); this module picks the lines a step used and puts in the hyperparameters it recorded
(``ParamUpdate.hyper``) and the state before and after it.
"""
from __future__ import annotations

import math

import numpy as np

from .. import optim
from ..amp import GradScaler
from .format import format_shape
from .mathtext import Formula, Num, Sym, _at, _pick, build, element_text

__all__ = ["step_formulas", "largest_update"]

_GREEK = {"mu": Sym("μ"), "tau": Sym("τ"), "lam": Sym("λ"), "eps": Sym("ε"), "alpha": Sym("α"), "eta": Sym("η"),
          "b1": Sym("β₁", html="β<sub>1</sub>", latex=r"\beta_1"), "b2": Sym("β₂", html="β<sub>2</sub>",
                                                                               latex=r"\beta_2"),
          "lr": Sym("lr"), "t": Sym("t"), "s": Sym("s"),
          "lrt": Sym("lr_t", html="lr<sub>t</sub>", latex=r"\mathrm{lr}_t")}


class _Lines:
    """Collects one update's lines: ``add(key, numbers, value, computed, note)``."""

    def __init__(self, title: str, syms: dict, idx: tuple, rules: dict):
        self.title, self.syms, self.idx, self.rules = title, syms, idx, rules
        self.out: list[Formula] = []

    def add(self, key: str, nums: dict, value, computed=None, note: str = "") -> None:
        """The line ``key`` of the optimizer's ``UPDATE_RULE``: the rule, then ``nums`` put in, then ``value``."""
        template = self.rules[key]
        arrow = " ← " if " ← " in template else " = "
        lhs, rhs = template.split(arrow, 1)
        env_num = {k: (Num(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in nums.items()}
        sides = [(rhs, env_num)] if rhs != "{r}" else []
        sides.append(("{r}", {"r": Num(value)}))
        self.out.append(build("step", self.title + (f": {note}" if note else ""), [(template, self.syms)],
                              sides, value, computed if computed is not None else value, self.idx))


def _state(state: dict, key: str, idx: tuple, default: float = 0.0) -> float:
    v = (state or {}).get(key)
    x = _at(v, idx) if v is not None else None
    return default if x is None else x


def largest_update(u) -> tuple:
    """The element of a parameter that the step moved most (``()`` for a scalar)."""
    diff = np.abs(np.asarray(u.after, dtype=np.float64) - np.asarray(u.before, dtype=np.float64))
    if diff.ndim == 0:
        return ()
    with np.errstate(invalid="ignore"):
        flat = int(np.nanargmax(diff)) if np.isfinite(diff).any() else 0
    return tuple(int(i) for i in np.unravel_index(flat, diff.shape))


def step_formulas(replay, event, node, element, grad_before) -> list[Formula]:
    """The formulas of ``event`` (a StepEvent) for parameter ``node`` (None: the first parameter
    with a gradient) at ``element`` (None: the element that moved most)."""
    if event.skipped:
        return [_skipped(replay, event, node, grad_before)]
    updates = [u for u in event.updates if (u.node == node if node is not None else u.grad is not None)]
    if not updates:
        updates = [u for u in event.updates if node is None or u.node == node]
    if not updates:
        return []
    u = updates[0]
    base = replay.node_name(u.node)
    if u.grad is None:
        return [build("step", f"{event.optimizer}.step(): {base} skipped", [("{w} unchanged (.grad is None)",
                                                                             {"w": Sym(base)})], [])]
    shape = np.shape(u.after)
    largest = element is None and len(shape) > 0
    idx = largest_update(u) if largest else _pick(element, shape)
    where = ""
    if idx:
        where = f", element {element_text(idx)} of {format_shape(shape)}" + (" (the largest update)" if largest else "")
    title = f"{event.optimizer}.step() on {base}{where}"
    name = base + element_text(idx)
    syms = dict(_GREEK, w=Sym(name), g=Sym(base + ".grad" + element_text(idx)), gnew=Sym("g"), m=Sym("m"), v=Sym("v"),
                buf=Sym("buf"), mhat=Sym("m_hat", html="<i>m</i><sub>hat</sub>", latex=r"\hat{m}"),
                vhat=Sym("v_hat", html="<i>v</i><sub>hat</sub>", latex=r"\hat{v}"),
                gs=Sym("ĝ", latex=r"\hat{g}"), vmax=Sym("v_max", html="<i>v</i><sub>max</sub>", latex=r"v_{\max}"),
                gbar=Sym("ḡ", latex=r"\bar{g}"), vt=Sym("ṽ", latex=r"\tilde{v}"), s=Sym("s"), sum=Sym("Σg²"))
    hyper = getattr(u, "hyper", None) or {}
    algorithm = _algorithm(event.optimizer, hyper)
    rules = {**GradScaler.UPDATE_RULE, **(algorithm[0].UPDATE_RULE if algorithm else {}),
             "unknown": "{w} ← {a}"}
    lines = _Lines(title, syms, idx, rules)
    theta, after, g = _at(u.before, idx), _at(u.after, idx), _at(u.grad, idx)
    if event.unscale:
        # ĝ: the .grad when unscale_() ran; shown only when nothing (a clip) changed it between the two
        scaled, changed = grad_before(u.node, event.unscale.get("event"))
        gs = _at(scaled, idx) if scaled is not None else None
        if gs is not None and not changed:
            lines.add("unscale", {"gs": gs, "s": float(event.unscale["scale"])}, g,
                      gs * float(event.unscale["inv_scale"]),
                      note="GradScaler.unscale_() divided the gradient by the scale s first")
    if algorithm is None:
        lines.add("unknown", {"a": theta}, after, note="the rule of this optimizer is not known here")
        return lines.out
    algorithm[1](lines, u, hyper, idx, theta, after, g)
    return lines.out


def _algorithm(name: str, hyper: dict):
    """(optimizer class, its lines) for a step of ``name`` (a subclass in a script: by its hyperparameters)."""
    if not hyper:
        return None
    if name in ("Adam", "AdamW") or "betas" in hyper:
        return optim.Adam, _adam
    if name == "RMSprop" or "alpha" in hyper:
        return optim.RMSprop, _rmsprop
    if name == "Adagrad" or "lr_decay" in hyper:
        return optim.Adagrad, _adagrad
    if name == "SGD" or "dampening" in hyper:
        return optim.SGD, _sgd
    return None


def _gradient(lines: _Lines, hyper: dict, theta: float, g: float, coupled: bool = True) -> float:
    """maximize and (coupled) weight decay: the lines that change g before the rule uses it."""
    if hyper.get("maximize"):
        g = -g
        lines.add("maximize", {"g": -g}, g, note="maximize: ascend")
        lines.syms["g"] = lines.syms["gnew"]
    wd = float(hyper.get("weight_decay") or 0.0)
    if wd and coupled:
        new = g + wd * theta
        lines.add("weight_decay", {"g": g, "lam": wd, "w": theta}, new, note="weight decay (L2)")
        lines.syms["g"] = lines.syms["gnew"]
        g = new
    return g


def _sgd(lines: _Lines, u, hyper: dict, idx, theta, after, g) -> None:
    lr, mu = float(hyper.get("lr", 0.0)), float(hyper.get("momentum") or 0.0)
    tau, nesterov = float(hyper.get("dampening") or 0.0), bool(hyper.get("nesterov"))
    g = _gradient(lines, hyper, theta, g)
    if not mu:
        lines.add("plain", {"w": theta, "lr": lr, "g": g}, after, theta - lr * g)
        return
    buf_after = _state(u.state_after, "momentum_buffer", idx, g)
    if "momentum_buffer" not in (u.state_before or {}):
        lines.add("first_buffer", {"g": g}, buf_after, g, note="the first step: buf starts as a copy of g")
        buf = g
    else:
        prev = _state(u.state_before, "momentum_buffer", idx)
        buf = mu * prev + (1 - tau) * g
        lines.add("dampening" if tau else "momentum", {"mu": mu, "buf": prev, "tau": tau, "g": g}, buf_after, buf)
    if nesterov:
        step = g + mu * buf_after
        lines.add("nesterov", {"g": g, "mu": mu, "buf": buf_after}, step, note="Nesterov")
        lines.syms["g"] = lines.syms["gnew"]
        lines.add("plain", {"w": theta, "lr": lr, "g": step}, after, theta - lr * (g + mu * buf))
    else:
        lines.add("step", {"w": theta, "lr": lr, "buf": buf_after}, after, theta - lr * buf)


def _adam(lines: _Lines, u, hyper: dict, idx, theta, after, g) -> None:
    lr, (b1, b2) = float(hyper.get("lr", 0.0)), (float(x) for x in hyper.get("betas", (0.9, 0.999)))
    eps, wd = float(hyper.get("eps", 1e-8)), float(hyper.get("weight_decay") or 0.0)
    decoupled = bool(hyper.get("decoupled_weight_decay"))
    t = _state(u.state_after, "step", (), 1.0)
    if wd and decoupled:
        decayed = theta * (1 - lr * wd)
        lines.add("decoupled_decay", {"w": theta, "lr": lr, "lam": wd}, decayed,
                  note="decoupled weight decay (AdamW)")
        theta = decayed
    g = _gradient(lines, hyper, theta, g, coupled=not decoupled)
    m_prev, v_prev = _state(u.state_before, "exp_avg", idx), _state(u.state_before, "exp_avg_sq", idx)
    m, v = _state(u.state_after, "exp_avg", idx), _state(u.state_after, "exp_avg_sq", idx)
    lines.add("m", {"b1": b1, "m": m_prev, "g": g}, m, b1 * m_prev + (1 - b1) * g,
              note="m = exp_avg, the moving average of g")
    lines.add("v", {"b2": b2, "v": v_prev, "g": g}, v, b2 * v_prev + (1 - b2) * g * g,
              note="v = exp_avg_sq, the moving average of g²")
    if hyper.get("amsgrad"):
        vmax_prev = _state(u.state_before, "max_exp_avg_sq", idx)
        vmax = _state(u.state_after, "max_exp_avg_sq", idx, v)
        lines.add("amsgrad", {"vmax": vmax_prev, "v": v}, vmax, max(vmax_prev, v), note="amsgrad keeps the largest v")
        v = vmax
    mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    lines.add("mhat", {"m": m, "b1": b1, "t": int(t)}, mhat, note=f"bias correction, step t = {int(t)}")
    lines.add("vhat", {"v": v, "b2": b2, "t": int(t)}, vhat)
    lines.add("step", {"w": theta, "lr": lr, "mhat": mhat, "vhat": vhat, "eps": eps}, after,
              theta - lr * mhat / (math.sqrt(max(vhat, 0.0)) + eps))


def _rmsprop(lines: _Lines, u, hyper: dict, idx, theta, after, g) -> None:
    lr, alpha, eps = float(hyper.get("lr", 0.0)), float(hyper.get("alpha", 0.99)), float(hyper.get("eps", 1e-8))
    mu, centered = float(hyper.get("momentum") or 0.0), bool(hyper.get("centered"))
    g = _gradient(lines, hyper, theta, g)
    v_prev, v = _state(u.state_before, "square_avg", idx), _state(u.state_after, "square_avg", idx)
    lines.add("v", {"alpha": alpha, "v": v_prev, "g": g}, v, alpha * v_prev + (1 - alpha) * g * g,
              note="v = square_avg")
    lines.syms["d"], denom = lines.syms["v"], v
    if centered:
        a_prev, a = _state(u.state_before, "grad_avg", idx), _state(u.state_after, "grad_avg", idx)
        lines.add("grad_avg", {"alpha": alpha, "gbar": a_prev, "g": g}, a, alpha * a_prev + (1 - alpha) * g,
                  note="centered: ḡ = grad_avg")
        denom = v - a * a
        lines.add("centered", {"v": v, "gbar": a}, denom)
        lines.syms["d"] = lines.syms["vt"]
    root = math.sqrt(max(denom, 0.0)) + eps
    if mu > 0:
        b_prev = _state(u.state_before, "momentum_buffer", idx)
        b = _state(u.state_after, "momentum_buffer", idx)
        lines.add("momentum", {"mu": mu, "buf": b_prev, "g": g, "d": denom, "eps": eps}, b, mu * b_prev + g / root)
        lines.add("momentum_step", {"w": theta, "lr": lr, "buf": b}, after, theta - lr * (mu * b_prev + g / root))
    else:
        lines.add("step", {"w": theta, "lr": lr, "g": g, "d": denom, "eps": eps}, after, theta - lr * g / root)


def _adagrad(lines: _Lines, u, hyper: dict, idx, theta, after, g) -> None:
    lr, decay, eps = float(hyper.get("lr", 0.0)), float(hyper.get("lr_decay") or 0.0), float(hyper.get("eps", 1e-10))
    t = _state(u.state_after, "step", (), 1.0)
    g = _gradient(lines, hyper, theta, g)
    clr = lr
    lines.syms["r"] = lines.syms["lr"]
    if decay:
        clr = lr / (1 + (t - 1) * decay)
        lines.add("lr_decay", {"lr": lr, "t": int(t), "eta": decay}, clr, note="learning-rate decay")
        lines.syms["r"] = lines.syms["lrt"]
    s_prev, s = _state(u.state_before, "sum", idx), _state(u.state_after, "sum", idx)
    lines.add("sum", {"s": s_prev, "g": g}, s, s_prev + g * g, note="s = sum of every g² so far")
    lines.add("step", {"w": theta, "r": clr, "g": g, "s": s, "eps": eps}, after,
              theta - clr * g / (math.sqrt(max(s, 0.0)) + eps))


def _skipped(replay, event, node, grad_before) -> Formula:
    nodes = [node] if node is not None else list(replay.param_names)
    found = None
    for nid in nodes:
        g = grad_before(nid)[0]
        if g is not None and not np.isfinite(np.asarray(g, dtype=np.float64)).all():
            found = (nid, g)
            break
    s = (event.unscale or {}).get("scale")
    env = {"s": Sym("s")}
    if found is None:
        return build("step", f"{event.optimizer}.step() skipped by the GradScaler",
                     [("inf/nan in some ĝ → no step; the parameters keep their values", env)], [])
    nid, g = found
    flat = np.asarray(g, dtype=np.float64).ravel()
    bad = int(np.flatnonzero(~np.isfinite(flat))[0])
    idx = tuple(int(i) for i in np.unravel_index(bad, np.shape(g))) if np.ndim(g) else ()
    name = replay.node_name(nid)
    return build("step", f"{event.optimizer}.step() skipped: the GradScaler found inf/nan"
                 + (f" (scale {s:g})" if s else "") + ", so the parameters keep their values",
                 [("{g}", {"g": Sym(f"{name}.grad{element_text(idx)}")})],
                 [("{r}", {"r": Num(float(flat[bad]))})], float(flat[bad]), element=idx)
