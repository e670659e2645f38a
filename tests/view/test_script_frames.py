"""Frames of a script's trace say what the script's line did: backward() on the loss, or on the
loss the GradScaler multiplied."""
from gradviz.scenario.bundled import find_bundled_script
from gradviz.training.script import run_script
from gradviz.view.replay import Replay


def _backward_calls(stem: str) -> list[str]:
    path = find_bundled_script(stem)
    result = run_script(path.read_text(encoding="utf-8"), str(path))
    assert result.error is None, str(result.error)
    return [f.description for f in Replay(result.traces[0]) if f.event_kind == "backward_call"]


def test_backward_on_the_loss_is_named_loss():
    assert _backward_calls("01_tutorial_loop") == ["loss.backward() called on loss = 4.0."]


def test_backward_on_a_scaled_loss_says_so():
    (said,) = _backward_calls("05_autocast_gradscaler")
    assert said.startswith("scaler.scale(loss).backward(): backward() starts from loss × scale = ")
