"""The math of every event, with its numbers (issue 11): the formula texts at chosen events of the
bundled scenarios contain the numbers the core recorded, and each optimizer's rule, evaluated on the
recorded state, reproduces the recorded parameter after the step."""
from __future__ import annotations

import dataclasses
import functools
import math
import re

import numpy as np
import pytest

from gradviz import trace as T
from gradviz.functions import RULES
from gradviz.scenario import bundled_path
from gradviz.scenario.loader import load
from gradviz.scenario.schema import OPTIMIZER_DEFAULTS, OptimizerSpec
from gradviz.training.session import Session
from gradviz.view.formulas import Formula, edge_formula, formulas_for_frame
from gradviz.view.mathtext import number_text
from gradviz.view.replay import Replay

STEMS = ["01_tutorial_wx_b", "02_forgot_zero_grad", "03_gradient_accumulation", "04_rosenbrock_race",
         "05_ill_conditioned_bowl", "06_saddle_point", "07_mlp_two_moons", "08_tanh_neuron", "09_fp16_underflow",
         "10_adam_vs_adamw", "11_bfloat16_vs_float16", "12_clipping_scaled_gradients",
         "13_scheduler_before_step"]


@functools.cache
def replay_of(stem: str, variant: int = 0, iteration: int = 0) -> Replay:
    return Replay(Session(load(bundled_path(stem)), variant).trace_iteration(iteration))


def variant_where(stem: str, kind: str, **hyper) -> int:
    """The index of the first run of ``stem`` with optimizer ``kind`` and these hyperparameters
    (runs are found by what they do, not by their names)."""
    for i, v in enumerate(load(bundled_path(stem)).variants()):
        if v.optimizer.kind == kind and all(v.optimizer.hyper.get(k) == x for k, x in hyper.items()):
            return i
    raise LookupError(f"{stem}: no {kind} run with {hyper}")


@functools.cache
def replay_with_optimizer(kind: str, iteration: int = 2, **hyper) -> Replay:
    """The ill-conditioned bowl (two scalars) run with optimizer ``kind`` and ``hyper`` over its defaults."""
    scenario = load(bundled_path("05_ill_conditioned_bowl"))
    spec = OptimizerSpec(kind, {**OPTIMIZER_DEFAULTS[kind], **hyper})
    return Replay(Session(dataclasses.replace(scenario, optimizer=spec)).trace_iteration(iteration))


def frames_of(replay, kind: str, node: int | None = None):
    return [f for f in replay if f.event_kind == kind and (node is None or f.event_node == node)]


def num(x) -> str:
    return number_text(float(x), "plain")


def factor(x) -> str:
    """A number as a later factor of a product shows it: in parentheses when negative."""
    text = num(x)
    return f"({text})" if text.startswith("−") else text


def step_frame(replay):
    (frame,) = frames_of(replay, "step")
    return frame


def check_latex(text: str) -> None:
    """Balanced braces and \\left/\\right pairs, ASCII only, no HTML left in it."""
    assert text.isascii(), text
    depth = 0
    for c in text:
        depth += {"{": 1, "}": -1}.get(c, 0)
        assert depth >= 0, text
    assert depth == 0, text
    assert text.count("\\left(") == text.count("\\right)"), text
    assert "<" not in text and "&" not in text.replace("\\&", ""), text


def check_html(text: str) -> None:
    for tag in ("sub", "sup", "i", "span"):
        assert text.count(f"<{tag}") == text.count(f"</{tag}>"), text


def check(f: Formula) -> None:
    check_latex(f.latex)
    check_html(f.symbolic_html)
    check_html(f.numeric_html)
    assert f.plain and f.title


# -- the one table: every row carries its formulas --------------------------------------------------
def test_every_rule_has_a_formula_for_its_forward_and_its_inputs():
    for short, rule in RULES.items():
        assert rule.math is not None, short
        math_ = rule.math
        assert math_.forward and math_.inputs, short
        assert math_.local or math_.grads, f"{short}: no gradient formula"
        for template in (math_.forward, *math_.local, *math_.grads):
            if template is not None:
                assert template.count("{") == template.count("}"), (short, template)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "GradScaler"])
def test_every_optimizer_carries_its_update_rule(name):
    import gradviz.amp
    import gradviz.optim
    from gradviz.view.mathtext import render
    cls = getattr(gradviz.optim, name, None) or getattr(gradviz.amp, name)
    assert cls.UPDATE_RULE
    for key, template in cls.UPDATE_RULE.items():
        assert " ← " in template or " = " in template, (name, key)
        check_latex(render(template, {}, "latex"))
        check_html(render(template, {}, "html"))


# -- forward, backward per edge, the fused loss, accumulation ---------------------------------------
def test_forward_shows_the_op_and_its_numbers():
    replay = replay_of("02_forgot_zero_grad")
    mul = next(n for n, i in replay.nodes.items() if i.op == "mul")
    (frame,) = frames_of(replay, "forward", mul)
    (f,) = formulas_for_frame(replay, frame)
    assert f.kind == "forward"
    assert "w · x" in f.plain and "1.0 · 2.0 = 2.0" in f.plain, f.plain
    assert f.value == float(np.ravel(frame.event.value)[0])
    check(f)


def test_backward_per_edge_is_the_chain_rule_with_the_numbers():
    replay = replay_of("02_forgot_zero_grad")
    w = replay.param_nodes["w"]
    mul = next(n for n, i in replay.nodes.items() if i.op == "mul")
    (frame,) = frames_of(replay, "backward", mul)
    (f,) = formulas_for_frame(replay, frame)             # x needs no gradient: only the edge to w
    sent = frame.event.grad_inputs[frame.event.inputs.index(w)]
    assert "∂L/∂w" in f.plain and "∂L/∂out · ∂out/∂w" in f.plain and "∂L/∂out · x" in f.plain, f.plain
    assert "−4.0 · 2.0 = −8.0" in f.plain, f.plain
    assert f.value == float(sent) == -8.0
    assert "∂L/∂<i>w</i>" in f.symbolic_html and f.numeric_html.startswith("= ")
    assert "\\frac{\\partial L}{\\partial w}" in f.latex
    check(f)
    assert edge_formula(replay, frame, w, mul).plain == f.plain       # the edge's tooltip says the same


def test_a_fused_loss_node_shows_its_own_gradient_formula():
    replay = replay_of("02_forgot_zero_grad")
    loss = next(n for n, i in replay.nodes.items() if i.op == "mse_loss")
    (frame,) = frames_of(replay, "backward", loss)
    (f,) = formulas_for_frame(replay, frame)
    assert "∂L/∂pred[0] = 2(pred − y)/N = 2(2.0 − 4.0)/1 = −4.0" == f.plain
    assert "\\frac{2(\\mathrm{pred} - y)}{N}" in f.latex
    check(f)


def test_bce_with_logits_gradient_is_probability_minus_label_over_n():
    replay = replay_of("07_mlp_two_moons")
    loss = next(n for n, i in replay.nodes.items() if i.op == "bce_with_logits")
    (frame,) = frames_of(replay, "backward", loss)
    (f,) = formulas_for_frame(replay, frame, element=(3, 0))
    e = frame.event
    z = replay.frame(frame.index).nodes[e.inputs[0]].value
    assert "(σ(z) − y)/N" in f.plain and f"σ({num(z[3, 0])})" in f.plain and "/200" in f.plain, f.plain
    assert f.value == float(e.grad_inputs[0][3, 0]) and "[3,0]" in f.title
    check(f)


def test_a_matrix_product_shows_one_element_as_its_sum():
    replay = replay_of("07_mlp_two_moons")
    frame = frames_of(replay, "forward")[0]              # the first Linear: x @ 0.weightᵀ + 0.bias
    (f,) = formulas_for_frame(replay, frame, element=(2, 5))
    info = replay.nodes[frame.event.node]
    x, w, b = (replay.frame(frame.index).nodes[i].value for i in info.inputs)
    assert "x @ 0.weightᵀ + 0.bias" in f.plain
    assert f"{num(x[2, 0])} · {factor(w[5, 0])}" in f.plain and f.value == float(frame.event.value[2, 5])
    assert math.isclose(float(x[2] @ w[5] + b[5]), f.value, rel_tol=1e-5)
    for f in formulas_for_frame(replay, frames_of(replay, "backward")[1]):     # the last Linear's three edges
        check(f)


def test_accumulation_adds_the_new_gradient_to_the_old_one():
    replay = replay_of("02_forgot_zero_grad", iteration=1)
    w = replay.param_nodes["w"]
    (frame,) = [f for f in frames_of(replay, "accumulate") if f.event_node == w]
    (f,) = formulas_for_frame(replay, frame)
    assert "w.grad ← w.grad + ∂L/∂w = −8.0 + (−7.2) = −15.2" == f.plain
    assert f.value == float(frame.event.after)
    check(f)


def test_a_node_shows_its_formulas_as_of_the_frame():
    replay = replay_of("02_forgot_zero_grad")
    w = replay.param_nodes["w"]
    last = replay.frame(len(replay) - 1)
    kinds = [f.kind for f in formulas_for_frame(replay, last, node=w)]
    assert kinds == ["accumulate", "step"]
    mul = next(n for n, i in replay.nodes.items() if i.op == "mul")
    assert [f.kind for f in formulas_for_frame(replay, last, node=mul)] == ["forward", "backward"]
    assert formulas_for_frame(replay, replay.frame(0), node=mul) == []
    forward_only = replay.frame(replay.phase_range("loss")[0])
    assert [f.kind for f in formulas_for_frame(replay, forward_only, node=mul)] == ["forward"]
    # before backward an edge shows the forward of the op it feeds; x never gets a gradient
    x = next(i for i in replay.nodes[mul].inputs if i != w)
    assert edge_formula(replay, forward_only, w, mul).kind == "forward"
    assert edge_formula(replay, last, x, mul).kind == "forward"
    assert edge_formula(replay, replay.frame(0), w, mul) is None


# -- the optimizers: each rule reproduces the recorded step ---------------------------------------
def check_step(replay, formulas, param: str, element=()) -> None:
    """The last line ends with the recorded value after the step and the rule, evaluated in float64
    from the recorded state, gives it back; every line with a recorded value agrees likewise."""
    frame = step_frame(replay)
    (u,) = [u for u in frame.event.updates if u.node == replay.param_nodes[param]]
    after = float(np.asarray(u.after)[element] if element else u.after)
    assert formulas and formulas[-1].value == after
    assert formulas[-1].plain.endswith("= " + num(after)), formulas[-1].plain
    for f in formulas:
        assert f.kind == "step"
        assert math.isclose(f.computed, f.value, rel_tol=2e-6, abs_tol=1e-9), (f.plain, f.computed, f.value)
        check(f)


def test_sgd_step_is_w_minus_lr_times_grad():
    replay = replay_of("02_forgot_zero_grad")
    formulas = formulas_for_frame(replay, step_frame(replay))
    assert [f.plain for f in formulas] == ["w ← w − lr · w.grad = 1.0 − 0.01 · (−8.0) = 1.08"]
    check_step(replay, formulas, "w")


def test_sgd_momentum_shows_the_buffer_then_the_step():
    replay = replay_of("05_ill_conditioned_bowl", variant_where("05_ill_conditioned_bowl", "sgd", momentum=0.8), 2)
    frame = step_frame(replay)
    formulas = formulas_for_frame(replay, frame)
    u = frame.event.updates[0]
    buf, line = formulas
    assert buf.plain.startswith("buf ← μ · buf + x.grad = 0.8 · ")
    assert num(u.state_before["momentum_buffer"]) in buf.plain and buf.value == float(u.state_after["momentum_buffer"])
    assert line.plain.startswith("x ← x − lr · buf = ")
    check_step(replay, formulas, "x")
    assert "\\mu" in buf.latex


def test_sgd_first_momentum_step_copies_the_gradient():
    replay = replay_of("05_ill_conditioned_bowl", variant_where("05_ill_conditioned_bowl", "sgd", momentum=0.8), 0)
    buf, _line = formulas_for_frame(replay, step_frame(replay))
    assert buf.plain.startswith("buf ← x.grad = ") and "first step" in buf.title


def test_sgd_nesterov():
    replay = replay_of("04_rosenbrock_race", variant_where("04_rosenbrock_race", "sgd", nesterov=True), 3)
    formulas = formulas_for_frame(replay, step_frame(replay))
    assert [f.plain.split(" = ")[0] for f in formulas] == ["buf ← μ · buf + x.grad", "g ← x.grad + μ · buf",
                                                            "x ← x − lr · g"]
    check_step(replay, formulas, "x")


@pytest.mark.parametrize("hyper", [dict(momentum=0.9, dampening=0.5, weight_decay=0.1),
                                   dict(maximize=True, weight_decay=0.01)])
def test_sgd_dampening_weight_decay_and_maximize(hyper):
    replay = replay_with_optimizer("sgd", **hyper, lr=0.01)
    formulas = formulas_for_frame(replay, step_frame(replay))
    text = "\n".join(f.plain for f in formulas)
    if hyper.get("dampening"):
        assert "(1 − τ)" in text and "g ← x.grad + λ · x" in text
    if hyper.get("maximize"):
        assert "g ← −x.grad" in text
    check_step(replay, formulas, "x")


def test_adam_shows_m_v_their_bias_corrections_and_the_step():
    replay = replay_of("04_rosenbrock_race", variant_where("04_rosenbrock_race", "adam"), 3)
    frame = step_frame(replay)
    u = frame.event.updates[0]
    formulas = formulas_for_frame(replay, frame)
    m, v, mhat, vhat, step = formulas
    assert m.plain.startswith("m ← β₁ · m + (1 − β₁) · x.grad = 0.9 · ")
    assert m.value == float(u.state_after["exp_avg"]) and v.value == float(u.state_after["exp_avg_sq"])
    assert num(u.state_before["exp_avg"]) in m.plain and num(u.grad) in m.plain
    assert mhat.plain.startswith("m_hat = m/(1 − β₁ᵗ) = ") and "0.9⁴" in mhat.plain      # the 4th step
    assert vhat.plain.startswith("v_hat = v/(1 − β₂ᵗ) = ") and "0.999⁴" in vhat.plain
    assert step.plain.startswith("x ← x − lr · m_hat/(√v_hat + ε) = ")
    assert "\\hat{m}" in step.latex and "\\sqrt{\\hat{v}}" in step.latex and "\\epsilon" in step.latex
    assert "<i>m</i><sub>hat</sub>" in step.symbolic_html and "β<sub>1</sub>" in m.symbolic_html
    check_step(replay, formulas, "x")


def test_adamw_decays_the_weight_before_the_adam_step():
    stem = "10_adam_vs_adamw"
    replay = replay_of(stem, variant_where(stem, "adamw"), 2)
    formulas = formulas_for_frame(replay, step_frame(replay))
    assert formulas[0].plain.startswith("a ← a · (1 − lr · λ) = ") and "0.05 · 0.1" in formulas[0].plain
    assert "decoupled" in formulas[0].title
    check_step(replay, formulas, "a")


def test_adam_amsgrad_keeps_the_largest_v():
    replay = replay_with_optimizer("adam", amsgrad=True, lr=0.1, weight_decay=0.01)
    formulas = formulas_for_frame(replay, step_frame(replay))
    assert any(f.plain.startswith("v_max ← max(v_max, v)") for f in formulas)
    assert any(f.plain.startswith("g ← x.grad + λ · x") for f in formulas)
    check_step(replay, formulas, "x")


def test_rmsprop():
    replay = replay_of("04_rosenbrock_race", variant_where("04_rosenbrock_race", "rmsprop"), 3)
    formulas = formulas_for_frame(replay, step_frame(replay))
    assert [f.plain.split(" = ")[0] for f in formulas] == ["v ← α · v + (1 − α) · x.grad²",
                                                            "x ← x − lr · x.grad/(√v + ε)"]
    check_step(replay, formulas, "x")


def test_rmsprop_centered_with_momentum():
    replay = replay_with_optimizer("rmsprop", centered=True, momentum=0.5, lr=0.01)
    formulas = formulas_for_frame(replay, step_frame(replay))
    assert [f.plain.split(" = ")[0] for f in formulas] == [
        "v ← α · v + (1 − α) · x.grad²", "ḡ ← α · ḡ + (1 − α) · x.grad", "ṽ", "buf ← μ · buf + x.grad/(√ṽ + ε)",
        "x ← x − lr · buf"]
    check_step(replay, formulas, "x")


@pytest.mark.parametrize("lr_decay", [0.0, 0.1])
def test_adagrad(lr_decay):
    if lr_decay:
        replay = replay_with_optimizer("adagrad", lr_decay=lr_decay, lr=0.5)
    else:
        replay = replay_of("04_rosenbrock_race", variant_where("04_rosenbrock_race", "adagrad"), 3)
    formulas = formulas_for_frame(replay, step_frame(replay))
    names = [f.plain.split(" = ")[0] for f in formulas]
    assert names[-2:] == ["s ← s + x.grad²", "x ← x − " + ("lr_t" if lr_decay else "lr") + " · x.grad/(√s + ε)"]
    if lr_decay:
        assert names[0] == "lr_t" and "(3 − 1) · 0.1" in formulas[0].plain        # the third step
    check_step(replay, formulas, "x")


def test_a_selected_element_of_a_matrix_parameter():
    replay = replay_of("07_mlp_two_moons", iteration=1)
    frame = step_frame(replay)
    w = replay.param_nodes["0.weight"]
    formulas = formulas_for_frame(replay, frame, node=w, element=(3, 1))
    steps = [f for f in formulas if f.kind == "step"]
    assert all("element [3,1] of (16, 2)" in f.title for f in steps)
    assert steps[-1].plain.startswith("0.weight[3,1] ← 0.weight[3,1] − lr · ")
    check_step(replay, steps, "0.weight", (3, 1))
    auto = [f for f in formulas_for_frame(replay, frame, node=w) if f.kind == "step"]
    (u,) = [u for u in frame.event.updates if u.node == w]
    moved = np.abs(u.after - u.before)
    idx = np.unravel_index(int(np.argmax(moved)), moved.shape)
    assert "the largest update" in auto[-1].title and f"[{idx[0]},{idx[1]}]" in auto[-1].title
    accumulate = next(f for f in formulas_for_frame(replay, frame, node=w) if f.kind == "accumulate")
    assert f"[{idx[0]},{idx[1]}]" in accumulate.title          # one element for every formula of the node


# -- GradScaler, clipping, scheduler -------------------------------------------------------------
def test_grad_scaler_backs_off_and_the_step_is_skipped():
    stem = "09_fp16_underflow"
    variant = next(i for i, v in enumerate(load(bundled_path(stem)).variants()) if v.loop.loss_scaling)
    replay = replay_of(stem, variant, 0)
    (scaler_frame,) = frames_of(replay, "scaler")
    (f,) = formulas_for_frame(replay, scaler_frame)
    e = scaler_frame.event
    assert e.found_inf and f.plain == f"s ← s · backoff = {num(e.scale_before)} · 0.5 = {num(e.scale_after)}"
    assert f.value == e.scale_after == f.computed
    check(f)
    (skipped,) = formulas_for_frame(replay, step_frame(replay))
    assert "skipped" in skipped.title and "inf" in skipped.plain


def test_grad_scaler_unscales_before_the_step_and_counts_clean_steps():
    stem = "09_fp16_underflow"
    variant = next(i for i, v in enumerate(load(bundled_path(stem)).variants()) if v.loop.loss_scaling)
    replay = replay_of(stem, variant, 3)
    frame = step_frame(replay)
    assert frame.event.unscale is not None and frame.event.updates[0].hyper["lr"] == 0.05
    formulas = formulas_for_frame(replay, frame)
    unscale = formulas[0]
    u = frame.event.updates[0]
    assert "/3.277e+04" in unscale.plain and unscale.value == float(np.ravel(u.grad)[0])
    assert math.isclose(unscale.computed, unscale.value, rel_tol=1e-6)
    check_step(replay, formulas, "0.weight", (0, 0))
    (f,) = formulas_for_frame(replay, frames_of(replay, "scaler")[0])
    assert "clean steps" in f.title and f.plain == "s ← s = 3.277e+04"


def test_clip_grad_norm_shows_the_coefficient():
    replay = replay_of("12_clipping_scaled_gradients", 0, 1)
    (frame,) = frames_of(replay, "clip")
    coef, clipped = formulas_for_frame(replay, frame)
    e = frame.event
    assert coef.plain.startswith("c = min(1, max_norm/(‖g‖ + 10⁻⁶)) = min(1, ")
    assert coef.value == e.clip_coef and math.isclose(coef.computed, coef.value, rel_tol=1e-6)
    assert clipped.value == float(np.ravel(e.grads[0].after)[0])
    check(coef)
    check(clipped)


def test_scheduler_shows_the_learning_rate_change():
    replay = replay_of("13_scheduler_before_step", 0, 1)
    (frame,) = frames_of(replay, "scheduler")
    (f,) = formulas_for_frame(replay, frame)
    assert f.plain == f"lr ← lr · factor = {num(frame.event.lr_before[0])} · 0.5 = {num(frame.event.lr_after[0])}"


# -- every event of every bundled scenario -----------------------------------------------------------
@pytest.mark.parametrize("stem", STEMS)
def test_every_event_of_every_bundled_scenario(stem):
    """Each event of iteration 1 of each run gets formulas that are well formed and end with the
    recorded number; every step's rule reproduces the recorded result."""
    for variant in range(len(load(bundled_path(stem)).variants())):
        replay = replay_of(stem, variant, 1)
        seen = set()
        for frame in replay:
            formulas = formulas_for_frame(replay, frame)
            if frame.event_kind in ("forward", "backward", "accumulate", "step", "scaler", "clip", "scheduler"):
                assert formulas, (stem, variant, frame.index, frame.description)
                seen.add(frame.event_kind)
            for f in formulas:
                check(f)
                if f.value is not None and np.isfinite(f.value):
                    assert f.plain.endswith(num(f.value)), f.plain
                if f.kind == "step" and f.computed is not None and np.isfinite(f.value):
                    assert math.isclose(f.computed, f.value, rel_tol=1e-5, abs_tol=1e-7), (stem, variant, f.plain)
        assert {"forward", "backward", "step"} <= seen
        for src, dst in replay.edges:
            f = edge_formula(replay, replay.frame(len(replay) - 1), src, dst)
            if f is not None:
                check(f)


def test_formulas_read_only_recorded_numbers():
    """The accumulation formula's terms are the recorded before and added, and its result the recorded
    after, even where float32 rounding makes the sum differ in the last digit."""
    replay = replay_of("03_gradient_accumulation", 0, 1)
    for frame in frames_of(replay, "accumulate"):
        e = frame.event
        (f,) = formulas_for_frame(replay, frame)
        assert f.value == float(e.after)
        if e.before is not None:
            assert re.search(re.escape(num(e.before)) + r" \+ \(?" + re.escape(num(e.added)), f.plain), f.plain


def test_trace_records_what_the_rules_need():
    """StepEvent carries each group's hyperparameters; ScalerEvent the update's factors and tracker."""
    replay = replay_of("10_adam_vs_adamw", variant_where("10_adam_vs_adamw", "adamw"), 0)
    (u, *_) = step_frame(replay).event.updates
    assert u.hyper["betas"] == (0.9, 0.999) and u.hyper["weight_decay"] == 0.1 and u.hyper["decoupled_weight_decay"]
    assert "params" not in u.hyper
    with T.record() as rec:
        import gradviz
        w = gradviz.tensor([1.0], requires_grad=True)
        opt = gradviz.optim.SGD([w], lr=0.5, momentum=0.9)
        (w * 2).sum().backward()
        opt.step()
    (step,) = [e for e in rec.events if isinstance(e, T.StepEvent)]
    assert step.updates[0].hyper["lr"] == 0.5 and step.updates[0].hyper["momentum"] == 0.9


# -- a script's trace ---------------------------------------------------------------------------------
@functools.cache
def script_replay(stem: str, iteration: int = 1) -> Replay:
    from gradviz.scenario.bundled import find_bundled_script
    from gradviz.training.script import run_script
    path = find_bundled_script(stem)
    result = run_script(path.read_text(encoding="utf-8"), str(path))
    assert result.error is None, str(result.error)
    return Replay(result.traces[iteration])


def test_a_scripts_manual_update_and_a_broadcast_sum():
    replay = script_replay("06_manual_update")
    w = replay.param_nodes["w"]
    (frame,) = [f for f in frames_of(replay, "manual_update") if f.event_node == w]
    (f,) = formulas_for_frame(replay, frame)
    e = frame.event
    assert f.plain == f"w ← w + Δ = {num(e.before)} + {factor(e.after - e.before)} = {num(e.after)}"
    mul = next(n for n, i in replay.nodes.items() if i.op == "mul")
    (back,) = frames_of(replay, "backward", mul)
    (edge,) = [f for f in formulas_for_frame(replay, back) if "∂L/∂w" in f.plain]
    # w is a scalar times a batch of 4: its gradient is the sum of the 4 products
    assert edge.plain.startswith("∂L/∂w = Σ ∂L/∂out · ∂out/∂w = Σ ∂L/∂out · x = ") and edge.plain.count(" + ") == 3


def test_a_scripts_cross_entropy_and_momentum_with_weight_decay():
    replay = script_replay("04_cross_entropy_momentum")
    nll = next(n for n, i in replay.nodes.items() if i.op == "nll_loss")
    (frame,) = frames_of(replay, "backward", nll)
    (f,) = formulas_for_frame(replay, frame)
    assert "−1/N at each target class" in f.plain
    formulas = formulas_for_frame(replay, step_frame(replay))
    assert formulas[0].plain.startswith("g ← 0.weight.grad") and "λ" in formulas[0].plain
    for f in formulas:
        assert math.isclose(f.computed, f.value, rel_tol=1e-5, abs_tol=1e-9), f.plain
