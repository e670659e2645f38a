"""What a History derives for the plots (gradient norms, step sizes, state buffers), against plain
numpy on the History's own arrays."""
import copy

import numpy as np
import pytest

from gradviz.scenario import bundled_path, load
from gradviz.training.session import Session


def run(stem: str, steps: int, variant: int = 0):
    scenario = load(bundled_path(stem))
    scenario.loop.steps = steps
    for v in scenario.comparisons:
        v.loop.steps = steps
    return Session(copy.deepcopy(scenario), variant).run()


@pytest.fixture(scope="module", params=[("07_mlp_two_moons", 0), ("04_rosenbrock_race", 3)],
                ids=["mlp_sgd", "rosenbrock_adam"])
def history(request):
    stem, variant = request.param
    return run(stem, 8, variant)


def test_grad_norm_is_the_norm_of_every_gradient_element(history):
    every = np.concatenate([history.grads[n].astype(np.float64).reshape(history.steps, -1)
                            for n in history.param_names], axis=1)
    expected = np.linalg.norm(every, axis=1)
    np.testing.assert_allclose(history.grad_norm(), expected, rtol=1e-12)
    np.testing.assert_allclose(history.grad_norm(2, 5), expected[2:5], rtol=1e-12)
    assert history.grad_norm(4, 4).shape == (0,)


def test_step_sizes_are_the_change_of_each_element(history):
    for name in history.param_names:
        p = history.params[name].astype(np.float64)
        expected = np.abs(np.diff(p, axis=0))
        np.testing.assert_array_equal(history.step_sizes(name), expected)
        np.testing.assert_array_equal(history.step_sizes(name, 3, 6), expected[3:6])


def test_state_keys_are_the_buffers_without_the_step_counter(history):
    seen = [k for n in history.param_names for k in history.state.get(n, {})]
    expected = list(dict.fromkeys(k for k in seen if k != "step"))
    assert history.state_keys() == expected
    assert "step" not in history.state_keys()


def test_adam_keeps_two_moment_buffers():
    adam = run("04_rosenbrock_race", 4, 3)
    assert set(adam.state_keys()) == {"exp_avg", "exp_avg_sq"}
