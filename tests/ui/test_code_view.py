"""The code panel shows the exporter's tagged lines: the definitions the loop calls, then the loop,
without the asides on the CSV bookkeeping; a phase lights its line."""
import pytest

from gradviz.codegen import export_torch
from gradviz.scenario import DEFAULT_SCENARIO, bundled_path, load


def test_panel_lines_of_the_tutorial():
    from ui.code_view import panel_lines
    script = export_torch(load(bundled_path(DEFAULT_SCENARIO)))
    shown, lines = panel_lines(script)
    assert shown[0].startswith("loss_fn = torch.nn.MSELoss(") and shown[1].startswith("optimizer = torch.optim.")
    assert shown[2] == "" and shown[3] == "for step in range(STEPS):"
    assert shown[3:] == [line.code for line in script.listing[script.loop_start - 1:script.loop_end]]
    assert "    row = record(step, [loss.item()])" in shown and "    if not log(row):" in shown
    assert not any("  # " in text for text in shown if "record(" in text or "log(" in text)
    assert set(lines) == set(script.lines)
    for phase, number in lines.items():
        assert shown[number - 1] == script.listing[script.lines[phase] - 1].code


@pytest.mark.parametrize("phase, text", [("zero_grad", "optimizer.zero_grad()"), ("forward", "pred = "),
                                         ("backward", "loss.backward()"), ("step", "optimizer.step()")])
def test_a_phase_lights_its_line(qtbot, phase, text):
    """The panel follows the Document's scenario and the Player's phase by itself."""
    from gradviz.view.replay import Replay
    from ui.code_view import CodeView
    from ui.document import Document
    from ui.player import Player
    from ui.view_state import ViewState
    document, player = Document(), Player()
    view = CodeView(document, ViewState(document), player)
    qtbot.addWidget(view)
    document.set_scenario(load(bundled_path(DEFAULT_SCENARIO)))
    document.finish_now()
    replay = Replay(document.sessions[0].trace_iteration(0))
    player.set_replay(replay)
    player.seek(replay.phase_range(phase)[0])
    assert player.frame.phase == phase and view.current_phase == phase
    assert text in view.line_text(view.current_line)
    assert view.toPlainText().splitlines()[view.current_line - 1] == view.line_text(view.current_line)
