"""The ViewState on a real Document, without widgets: one variant, iteration and selected node, each
signal sent once per real change and only once every value it affects is in place, clamped to the
scenario and to the finished run, and fitted to every new scenario before the views look."""
from __future__ import annotations

import pytest

from gradviz.scenario import DEFAULT_SCENARIO, bundled_path, load
from gradviz.scenario.edits import add_comparison
from ui.document import Document
from ui.view_state import ViewState

MAIN_STEPS, SHORT_STEPS = 12, 3


def tutorial(comparisons: int = 1):
    """The tutorial, shortened, with ``comparisons`` copies of its main run of SHORT_STEPS steps."""
    scenario = load(bundled_path(DEFAULT_SCENARIO))
    scenario.loop.steps = MAIN_STEPS
    for _ in range(comparisons):
        add_comparison(scenario).loop.steps = SHORT_STEPS
    return scenario


@pytest.fixture
def state(qapp):
    """A ViewState on a Document whose runs of ``tutorial()`` have finished; ``state.seen`` lists
    the signals sent since, with the iteration as it was when the variant signal arrived."""
    document = Document()
    state = ViewState(document)
    document.set_scenario(tutorial())
    document.finish_now()
    state.seen = []
    state.variantChanged.connect(lambda i: state.seen.append(("variant", i, state.iteration)))
    state.iterationChanged.connect(lambda k: state.seen.append(("iteration", k)))
    state.selectedNodeChanged.connect(lambda n: state.seen.append(("node", n)))
    return state


def test_each_signal_fires_once_per_real_change(state):
    for _ in range(2):
        state.set_iteration(5)
        state.set_variant(1)
        state.select_node(2)
    state.select_node(None)
    assert state.seen == [("iteration", 5), ("variant", 1, 2), ("iteration", 2), ("node", 2), ("node", None)]
    assert (state.variant, state.iteration, state.selected_node) == (1, 2, None)


def test_choices_are_clamped_to_the_scenario_and_to_the_run(state):
    state.set_variant(99)
    assert state.variant == 1
    state.set_variant(-4)
    assert state.variant == 0
    state.set_iteration(10 ** 6)
    assert state.iteration == MAIN_STEPS - 1 == state.steps - 1
    state.set_iteration(-3)
    assert state.iteration == 0
    assert state.variant_count == 2


def test_a_shorter_run_has_the_iteration_clamped_before_the_variant_signal(state):
    """A view reading the iteration when the variant changes already finds it within that run."""
    state.set_iteration(MAIN_STEPS - 1)
    state.seen.clear()
    state.set_variant(1)
    assert state.seen == [("variant", 1, SHORT_STEPS - 1), ("iteration", SHORT_STEPS - 1)]
    state.set_variant(0)                                     # the longer run: the iteration stays
    assert state.iteration == SHORT_STEPS - 1


def test_an_iteration_asked_for_during_a_run_is_kept_then_fitted_to_it(state):
    document = state.document
    document.rerun()
    assert document.running
    state.set_iteration(50)                                   # beyond the run: not known yet
    assert state.iteration == 50
    document.finish_now()
    assert state.iteration == MAIN_STEPS - 1
    assert state.seen == [("iteration", 50), ("iteration", MAIN_STEPS - 1)]


def test_an_edit_keeps_the_variant_and_forgets_the_node(state):
    state.set_variant(1)
    state.set_iteration(2)
    state.select_node(3)
    state.seen.clear()
    edited = state.document.editable_copy()
    edited.optimizer.hyper["lr"] = 0.05
    state.document.edit(edited)
    assert (state.variant, state.iteration, state.selected_node) == (1, 2, None)
    assert state.seen == [("node", None)]


def test_an_edit_that_removes_the_shown_variant_moves_to_the_last_one(qapp):
    document = Document()
    state = ViewState(document)
    document.set_scenario(tutorial(comparisons=3))
    document.finish_now()
    state.set_variant(3)
    edited = document.editable_copy()
    del edited.comparisons[1:]
    document.edit(edited)
    assert state.variant == 1 == state.variant_count - 1


def test_another_scenario_starts_over_before_the_views_see_it(state):
    state.set_variant(1)
    state.set_iteration(2)
    state.select_node(3)
    state.seen.clear()
    seen_by_a_view = []
    state.document.scenarioChanged.connect(
        lambda: seen_by_a_view.append((state.variant, state.iteration, state.selected_node)))
    state.document.set_scenario(load(bundled_path("08_tanh_neuron")))
    state.document.finish_now()
    assert seen_by_a_view == [(0, 0, None)]
    assert state.seen == [("variant", 0, 0), ("iteration", 0), ("node", None)]


def test_with_nothing_run_there_is_nothing_to_choose(qapp):
    state = ViewState(Document())
    state.set_variant(2)
    state.set_iteration(4)
    assert (state.variant, state.iteration, state.variant_count, state.steps) == (0, 0, 0, 0)
