"""The clipping and scheduler keys: reading them, refusing bad ones in one line, writing them back
(keeping comments), and editing them as the Controls do."""
import copy

import pytest

from gradviz.scenario import ScenarioError, dumps, loads, validate
from gradviz.scenario.edits import check_scenario, scheduler_defaults, set_scheduler_kind, variant_name
from gradviz.scenario.saver import render
from gradviz.scenario.schema import SCHEDULER_DEFAULTS, SCHEDULERS, SchedulerSpec

BASE = """# a lesson
[scenario]
title = "line"
seed = 0

[model]
expression = "w * x + b"

[model.parameters]
w = 1.0
b = 0.0

[data]
x = [1.0, 2.0, 3.0, 4.0]
y = [2.0, 4.0, 6.0, 8.0]

[optimizer]
kind = "sgd"
lr = 0.01
momentum = 0.9

[loop]
steps = 40
"""

FULL = BASE.replace("steps = 40\n", """steps = 40
clip_grad_norm = 1.0         # keep steps small
""") + """
# the schedule
[scheduler]
kind = "step"                # StepLR
step_size = 10

[[comparison]]
name = "no clipping, no schedule"
loop = { clip_grad_norm = false }
scheduler = { kind = "none" }

[[comparison]]
name = "scheduler first"
scheduler = { gamma = 0.5, placement = "before_step" }

[[comparison]]
name = "cosine"
scheduler = { kind = "cosine", T_max = 40 }
"""


def test_the_keys_are_read_main_and_per_comparison():
    s = loads(FULL, "lesson.toml")
    main, off, first, cosine = s.variants()
    assert main.loop.clip_grad_norm == 1.0 and main.loop.unscale_before_clip
    assert main.loop.scheduler == SchedulerSpec("step", dict(step_size=10, gamma=0.1), "after_step")
    assert off.loop.clip_grad_norm is None and off.loop.scheduler is None
    # same kind: the main scheduler's arguments are inherited, the given ones override
    assert first.loop.scheduler == SchedulerSpec("step", dict(step_size=10, gamma=0.5), "before_step")
    assert first.loop.clip_grad_norm == 1.0
    # another kind: its own defaults
    assert cosine.loop.scheduler == SchedulerSpec("cosine", dict(T_max=40, eta_min=0.0), "after_step")
    # the comparisons' specs are their own (editing one leaves the main run alone)
    first.loop.scheduler.hyper["gamma"] = 0.9
    assert main.loop.scheduler.hyper["gamma"] == 0.1


def test_no_keys_means_no_clipping_and_no_scheduler():
    s = loads(BASE, "lesson.toml")
    assert s.loop.clip_grad_norm is None and s.loop.scheduler is None and s.loop.unscale_before_clip


@pytest.mark.parametrize("edit, needle, key, expected, found", [
    (("steps = 40\n", "steps = 40\nclip_grad_norm = -1.0\n"), "clip_grad_norm", "loop.clip_grad_norm",
     "a finite number > 0", "-1.0 (a float)"),
    (("steps = 40\n", "steps = 40\nclip_grad_norm = true\n"), "clip_grad_norm", "loop.clip_grad_norm",
     "a finite number > 0", "true (a boolean)"),
    (("steps = 40\n", "steps = 40\nunscale_before_clip = 1\n"), "unscale_before_clip", "loop.unscale_before_clip",
     "true or false", "1 (an integer)"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "steplr"\n'), "kind", "scheduler.kind",
     "one of 'step', 'multistep', 'exponential', 'cosine', 'linear', 'onecycle', 'none'",
     "'steplr' (a string); did you mean 'step'?"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "step"\n'), "[scheduler]", "scheduler.step_size",
     "a value for 'step_size' (StepLR has no default for it)", "none (it is required)"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "step"\nstep_size = 0\n'), "step_size", "scheduler.step_size",
     "an integer from 1 to 100000", "0 (an integer)"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "step"\nstep_size = 5\nT_max = 3\n'), "T_max",
     "scheduler.T_max", "one of kind, step_size, gamma, placement",
     "unknown key 'T_max' (T_max belongs to CosineAnnealingLR, not to StepLR)"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "multistep"\nmilestones = 10\n'), "milestones",
     "scheduler.milestones", "a list of 1 to 64 step numbers, e.g. [30, 80]", "10 (an integer)"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "linear"\nstart_factor = 0\n'), "start_factor",
     "scheduler.start_factor", "a finite number > 0 and <= 1", "0 (an integer)"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "cosine"\nT_max = 9\nplacement = "before"\n'), "placement",
     "scheduler.placement", "one of 'after_step', 'before_step'", "'before' (a string); did you mean 'before_step'?"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "onecycle"\nmax_lr = 0.1\ntotal_steps = 30\n'), "total_steps",
     "scheduler.total_steps", "total_steps of at least the loop's steps (40): OneCycleLR refuses to step "
     "past total_steps", "30"),
    (('kind = "sgd"\nlr = 0.01\nmomentum = 0.9\n', 'kind = "adagrad"\nlr = 0.01\n'),
     'kind = "onecycle"', "scheduler.kind", "an optimizer with momentum or betas for 'onecycle'",
     "optimizer 'adagrad'"),
    (("steps = 40\n", 'steps = 40\n[scheduler]\nkind = "none"\ngamma = 0.1\n'), "gamma", "scheduler.gamma",
     "one of kind", "unknown key 'gamma'"),
    (("steps = 40\n", 'steps = 40\n[[comparison]]\nscheduler = { gamma = 0.5 }\n'), "scheduler =",
     "comparison[0].scheduler.kind", "one of 'step'", "no 'kind'"),
])
def test_bad_keys_give_one_line_naming_file_key_line_and_expected(edit, needle, key, expected, found):
    text = BASE.replace(*edit)
    if "adagrad" in text:
        text += '[scheduler]\nkind = "onecycle"\nmax_lr = 0.1\n'
    line = 1 + next(i for i, t in enumerate(text.splitlines()) if t.startswith(needle)
                    and (needle != "kind" or i > text.splitlines().index("[scheduler]")))
    with pytest.raises(ScenarioError) as info:
        loads(text, "lesson.toml")
    error = info.value
    assert (error.file, error.key, error.line) == ("lesson.toml", key, line)
    assert error.expected.startswith(expected) and error.found.startswith(found)
    message = str(error)
    assert "\n" not in message and message.startswith(f"lesson.toml:{line}: [{key}] expected ")


def test_canonical_text_loads_back_equal():
    s = loads(FULL, "lesson.toml")
    text = dumps(s)
    assert loads(text) == s
    assert "[scheduler]" in text and "clip_grad_norm = 1.0" in text and "clip_grad_norm = false" in text


@pytest.mark.parametrize("change", [
    lambda s: setattr(s.loop, "clip_grad_norm", 2.5),
    lambda s: setattr(s.loop, "clip_grad_norm", None),
    lambda s: s.loop.scheduler.hyper.update(step_size=7),
    lambda s: setattr(s.loop, "scheduler", None),
    lambda s: set_scheduler_kind(s.loop, "onecycle", 0.01),
    lambda s: setattr(s.comparisons[1].loop.scheduler, "placement", "after_step"),
    lambda s: set_scheduler_kind(s.comparisons[2].loop, "multistep", 0.01),
    lambda s: setattr(s.comparisons[0].loop, "clip_grad_norm", 3.0),
])
def test_saving_an_edit_keeps_the_comments_and_loads_back_equal(change):
    s = loads(FULL, "lesson.toml")
    edited = copy.deepcopy(s)
    change(edited)
    validate(edited)
    text = render(edited)
    assert loads(text) == edited
    assert "# a lesson" in text
    assert ("# keep steps small" in text) == (edited.loop.clip_grad_norm is not None)
    if edited.loop.scheduler is not None:
        assert "kind = \"step\"                # StepLR" in text or edited.loop.scheduler.kind != "step"
        assert "# the schedule" in text


def test_a_comparison_keeps_its_schedule_when_the_main_one_goes():
    s = loads(FULL, "lesson.toml")
    edited = copy.deepcopy(s)
    edited.loop.scheduler = None          # "scheduler first" inherited step_size = 10 from it
    text = render(edited)
    assert loads(text) == edited
    assert loads(text).comparisons[1].loop.scheduler.hyper["step_size"] == 10


@pytest.mark.parametrize("kind", SCHEDULERS)
def test_a_new_scheduler_of_any_kind_is_valid_and_fits_the_run(kind):
    s = loads(BASE, "lesson.toml")
    set_scheduler_kind(s.loop, kind, s.optimizer.hyper["lr"])
    assert check_scenario(s) is None
    assert set(s.loop.scheduler.hyper) == set(SCHEDULER_DEFAULTS[kind])
    assert loads(dumps(s)) == s
    hyper = scheduler_defaults(kind, s.loop, 0.01)
    if kind == "cosine":
        assert hyper["T_max"] == 40
    if kind == "onecycle":
        assert hyper["max_lr"] == 0.01 and hyper["total_steps"] is None


def test_names_show_clipping_and_the_scheduler():
    s = loads(FULL, "lesson.toml")
    assert variant_name(s.optimizer, s.loop) == "SGD(lr=0.01, momentum=0.9) · clip=1, StepLR"
    first = s.comparisons[1]
    assert variant_name(first.optimizer, first.loop).endswith("StepLR before step")
    s.loop.loss_scaling, s.loop.precision, s.loop.unscale_before_clip = True, "float16", False
    assert "clip=1 (scaled)" in variant_name(s.optimizer, s.loop)


def test_check_scenario_names_the_scheduler_argument():
    s = loads(FULL, "lesson.toml")
    s.loop.scheduler.hyper["step_size"] = 0
    assert check_scenario(s) == "step_size: expected an integer from 1 to 100000, found 0 (an integer)"
    s = loads(FULL, "lesson.toml")
    s.loop.clip_grad_norm = 0.0
    assert check_scenario(s) == "clip_grad_norm: expected a finite number > 0, found 0.0 (a float)"
