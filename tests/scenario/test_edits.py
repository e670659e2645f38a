"""The rules of editing a scenario's runs (the Controls' rules), without a window."""
import pytest

from gradviz.scenario import LIMITS, OPTIMIZER_DEFAULTS, bundled_path, load
from gradviz.scenario.edits import (
    MAX_NAME,
    add_comparison,
    check_scenario,
    rename_if_automatic,
    set_loop_value,
    set_optimizer_kind,
    unique_name,
    variant_name,
)


@pytest.fixture
def tutorial():
    return load(bundled_path("01_tutorial_wx_b"))


def test_a_run_is_named_by_its_optimizer_and_the_loop_settings_that_differ(tutorial):
    opt, loop = tutorial.optimizer, tutorial.loop
    assert variant_name(opt, loop) == opt.label()
    loop.accumulation_steps, loop.precision = 4, "float64"
    assert variant_name(opt, loop) == opt.label() + " · accum=4, float64"
    opt.hyper["lr"] = 1 / 3
    loop.zero_grad, loop.set_to_none, loop.divide_loss, loop.shuffle = "never", False, False, True
    name = variant_name(opt, loop)
    assert len(name) == MAX_NAME and name.endswith("…")


def test_unique_names_count_up():
    assert unique_name("a", []) == "a"
    assert unique_name("a", ["a"]) == "a (2)"
    assert unique_name("a", ["a", "a (2)"]) == "a (3)"


def test_another_optimizer_starts_at_pytorchs_defaults_with_the_same_lr(tutorial):
    lr = tutorial.optimizer.hyper["lr"]
    set_optimizer_kind(tutorial.optimizer, "adam")
    assert tutorial.optimizer.kind == "adam"
    assert tutorial.optimizer.hyper == dict(OPTIMIZER_DEFAULTS["adam"], lr=lr)


def test_leaving_float16_turns_loss_scaling_off(tutorial):
    loop = tutorial.loop
    set_loop_value(loop, "precision", "float16")
    set_loop_value(loop, "loss_scaling", True)
    assert loop.loss_scaling
    set_loop_value(loop, "precision", "float32")
    assert loop.precision == "float32" and not loop.loss_scaling


def test_added_comparisons_copy_the_main_run_under_unique_names(tutorial):
    first = add_comparison(tutorial)
    second = add_comparison(tutorial)
    assert [c.name for c in tutorial.comparisons] == [first.name, first.name + " (2)"]
    assert first.optimizer == tutorial.optimizer and first.optimizer is not tutorial.optimizer
    assert second.loop == tutorial.loop and second.loop is not tutorial.loop
    while len(tutorial.comparisons) < LIMITS["max_comparisons"]:
        add_comparison(tutorial)
    with pytest.raises(ValueError, match="at most"):
        add_comparison(tutorial)


def test_an_automatic_name_follows_the_settings_a_chosen_name_stays(tutorial):
    automatic, chosen = add_comparison(tutorial), add_comparison(tutorial)
    chosen.name = "mine"
    for variant in (automatic, chosen):
        before = variant_name(variant.optimizer, variant.loop)
        variant.optimizer.hyper["momentum"] = 0.9
        rename_if_automatic(tutorial, variant, before)
    assert automatic.name == variant_name(automatic.optimizer, automatic.loop) != chosen.name == "mine"


def test_check_scenario_says_why_in_terms_of_the_edited_key(tutorial):
    assert check_scenario(tutorial) is None
    tutorial.optimizer.hyper["momentum"] = -0.5
    assert check_scenario(tutorial) == "momentum: expected a finite number >= 0, found -0.5 (a float)"
