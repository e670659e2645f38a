"""The code panel shows the exporter's tagged lines: the definitions the loop calls, then the loop,
without the asides on the CSV bookkeeping; a phase lights its line."""
import pytest
from PySide6 import QtCore, QtGui

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


# -------------------------------------------------------------------------- the editor itself

def _editor(qtbot):
    from ui.code_view import CodeView
    from ui.document import Document
    from ui.player import Player
    from ui.view_state import ViewState
    document, player = Document(), Player()
    view = CodeView(document, ViewState(document), player)
    qtbot.addWidget(view)
    document.set_scenario(load(bundled_path(DEFAULT_SCENARIO)))
    document.finish_now()
    view.resize(420, 500)
    view.show()
    qtbot.waitExposed(view)
    return document, view


def _colour_at(view, line: int, text: str):
    """The foreground colour, boldness and italics Pygments gave ``text`` on ``line``."""
    block = view.document().findBlockByNumber(line - 1)
    column = block.text().index(text)
    for rng in block.layout().formats():
        if rng.start <= column < rng.start + rng.length:
            f = rng.format
            return f.foreground().color().name(), f.fontWeight() > 500, f.fontItalic()
    return None


def test_python_is_coloured_by_pygments(qtbot):
    from ui import code_view as C
    document, view = _editor(qtbot)
    lines = view.toPlainText().splitlines()
    loop = next(i for i, t in enumerate(lines, 1) if t.startswith("for "))
    assert _colour_at(view, loop, "for") == (C.CODE_KEYWORD, True, False)
    assert _colour_at(view, loop, "range") == (C.CODE_BUILTIN, False, False)
    assert _colour_at(view, 1, "#")[0] == C.CODE_COMMENT and _colour_at(view, 1, "#")[2]
    number = next(i for i, t in enumerate(lines, 1) if t.startswith("optimizer =") and "lr=0.1" in t)
    assert _colour_at(view, number, "0.1") == (C.CODE_NUMBER, False, False)
    # a triple-quoted string opened above recolours the lines below it, and closing it restores them
    cursor = QtGui.QTextCursor(view.document().findBlockByNumber(loop - 2))
    cursor.insertText('"""')
    assert _colour_at(view, loop, "for")[0] == C.CODE_STRING
    cursor.deletePreviousChar()
    cursor.deletePreviousChar()
    cursor.deletePreviousChar()
    assert _colour_at(view, loop, "for") == (C.CODE_KEYWORD, True, False)


def test_line_numbers_undo_redo_and_auto_indent(qtbot):
    document, view = _editor(qtbot)
    assert view.viewportMargins().left() == view.gutter_width() > 10
    original = view.toPlainText()
    view.setFocus()
    qtbot.keyClick(view, QtCore.Qt.Key.Key_End, QtCore.Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Return)
    qtbot.keyClicks(view, "for i in range(3):")
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Return)
    qtbot.keyClicks(view, "print(i)")
    assert view.toPlainText() == original + "\nfor i in range(3):\n    print(i)"
    assert document.source == view.toPlainText() and document.source_edited and document.modified
    for _ in range(40):
        qtbot.keyClick(view, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert view.toPlainText() == original
    qtbot.keyClick(view, QtCore.Qt.Key.Key_Z,
                   QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert view.toPlainText() != original                          # redo
    # a gutter wide enough for 3-digit line numbers once the text has 100 lines
    narrow = view.gutter_width()
    view.textCursor().insertText("\n" * 100)
    assert view.gutter_width() > narrow and view.viewportMargins().left() == view.gutter_width()


def test_typing_a_space_in_the_editor_does_not_play(qtbot, make_window):
    window = make_window()
    code = window.code
    qtbot.mouseClick(code.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(60, 8))
    assert code.hasFocus()
    before = code.toPlainText()
    qtbot.keyClick(code, QtCore.Qt.Key.Key_Space)
    qtbot.keyClick(code, QtCore.Qt.Key.Key_Right)
    assert not window.player.playing and window.player.position == 0
    assert len(code.toPlainText()) == len(before) + 1
    window.graph.setFocus()                                     # elsewhere, Space plays again
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Space)
    assert window.player.playing


def test_highlighting_lexes_once_per_change_not_once_per_line(qtbot, monkeypatch):
    """Each highlighted block used to read the whole text again: quadratic, minutes for a program
    holding 100,000 data rows. Now one change is lexed once, however many lines it recolours."""
    from ui import code_view as C
    document, view = _editor(qtbot)
    reads = []
    real = QtGui.QTextDocument.toPlainText
    monkeypatch.setattr(QtGui.QTextDocument, "toPlainText", lambda self: reads.append(1) or real(self))
    rows = "\n".join(f"    [{i}.0, {i + 1}.0]," for i in range(3000))
    view.setPlainText(f"import torch\nx = torch.tensor([\n{rows}\n])\nfor i in range(3):\n    pass\n")
    assert len(reads) <= 2                      # not ~3000
    lines = view.toPlainText().splitlines()
    assert _colour_at(view, len(lines) - 1, "for") == (C.CODE_KEYWORD, True, False)
    reads.clear()
    cursor = QtGui.QTextCursor(view.document().findBlockByNumber(3))
    cursor.insertText('"""')                    # recolours every line below: still one lex
    assert len(reads) <= 2
    assert _colour_at(view, len(lines) - 1, "for")[0] == C.CODE_STRING
