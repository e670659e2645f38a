"""The code panel with a program that embeds a large data set (issue 12: the window never blocks):
the program is written in a thread and an lr edit reuses its data section, a long text goes into
the editor by slices, an edit changes only the lines that differ, and highlighting lexes one line at
a time with the colours whole-text lexing gives."""
import random

import pytest
from pygments.lexers import PythonLexer
from PySide6 import QtGui

from gradviz import codegen_program as CP
from gradviz.codegen import export_torch
from gradviz.codegen_text import py_number
from gradviz.scenario import DEFAULT_SCENARIO, bundled, bundled_path, load, loads
from gradviz.scenario.edits import editable_copy

MOONS = """
[scenario]
title = "many moons"
seed = 3

[model]
layers = [2, 4, 1]

[data]
kind = "moons"
n = {n}

[loss]
kind = "bce_with_logits"

[optimizer]
kind = "sgd"
lr = 0.1

[loop]
steps = 2
"""


def _panel(qtbot):
    from ui.code_view import CodeView
    from ui.document import Document
    from ui.player import Player
    from ui.view_state import ViewState
    document, player = Document(), Player()
    view = CodeView(document, ViewState(document), player)
    qtbot.addWidget(view)
    view.resize(420, 500)
    view.show()
    qtbot.waitExposed(view)
    return document, view


def _formats(view, line: int) -> list[tuple[int, int, str, bool, bool]]:
    """The formats of a line, adjacent equal ones merged: (start, end, colour, bold, italic)."""
    block = view.document().findBlockByNumber(line)
    out: list = []
    for rng in sorted(block.layout().formats(), key=lambda r: r.start):
        f = rng.format
        style = (f.foreground().color().name(), f.fontWeight() > 500, f.fontItalic())
        if out and out[-1][1] == rng.start and out[-1][2:] == style:
            out[-1] = (out[-1][0], rng.start + rng.length) + style
        else:
            out.append((rng.start, rng.start + rng.length) + style)
    return out


def _whole_text_formats(text: str) -> list[list]:
    """What lexing the whole text at once colours (the panel's former highlighter), per line."""
    from ui import code_view as C
    highlighter = C.PythonHighlighter(QtGui.QTextDocument())
    lines: list[list] = [[] for _ in range(text.count("\n") + 1)]
    line = col = 0
    for ttype, value in PythonLexer(stripnl=False, ensurenl=False).get_tokens(text):
        fmt = highlighter._format(ttype)
        for i, part in enumerate(value.split("\n")):
            if i:
                line, col = line + 1, 0
            if part and fmt is not None and line < len(lines):
                style = (fmt.foreground().color().name(), fmt.fontWeight() > 500, fmt.fontItalic())
                if lines[line] and lines[line][-1][1] == col and lines[line][-1][2:] == style:
                    lines[line][-1] = (lines[line][-1][0], col + len(part)) + style
                else:
                    lines[line].append((col, col + len(part)) + style)
            col += len(part)
    return lines


PROGRAM_WITH_STRINGS = "\n".join([
    "#!/usr/bin/env python",
    '"""A docstring',
    "over three lines, with 1.5 and def in it",
    '"""',
    "import torch",
    "from math import pi as PI",
    "",
    "",
    "@decorator(1e-05)",
    "def f(x, *, y=-2.5e+20):",
    '    s = f"""value {x + 1:>{y}}',
    "    still {'in'} the f-string" + '"""',
    "    t = rb'\\x00' + b\"\\n\" + r" + "'" * 3 + "raw",
    "text" + "'" * 3,
    "    return [0x1F, 0o17, 0b101, 1_000, .5, 5., 3j] if x is not None and not y else lambda: s",
    "",
    "",
    "class Model(torch.nn.Module):",
    "    pass",
    "",
])


@pytest.mark.parametrize("source", ["tutorial", "exporter", "strings"])
def test_colours_are_those_of_lexing_the_whole_text(qtbot, source):
    document, view = _panel(qtbot)
    scenario = load(bundled_path(DEFAULT_SCENARIO))
    text = {"tutorial": lambda: CP.program(scenario).source, "exporter": lambda: export_torch(scenario).source,
            "strings": lambda: PROGRAM_WITH_STRINGS}[source]()
    view.setPlainText(text)
    qtbot.waitUntil(lambda: not view._highlighter.recolouring)
    expected = _whole_text_formats(view.toPlainText())
    assert [_formats(view, i) for i in range(view.blockCount())] == expected
    assert any(expected)


def test_a_line_of_numbers_is_coloured_as_the_lexer_colours_it():
    """``data_spans`` (no lexer) gives exactly the lexer's number tokens, or None."""
    from pygments.token import Number

    from ui.code_view import data_spans
    rng = random.Random(5)
    values = [0.0, -0.0, 1e-05, -2.5e+20, 3, -7, 0.1, 1 / 3, 123456789.0, 1e300, 5e-324]
    lines = ["    " + ", ".join(py_number(rng.choice(values) * rng.choice([1, -1, 0.37])) for _ in range(8)) + ","
             for _ in range(200)]
    lines += ["    [0.5, -1.25e-07], [2, 3],", "])", "x = torch.tensor([1.0, 2.0])", "1e", ".", "1.5.2", "- 3 +4",
              "(1)[2]", "1e5j, 2", "1_000", "0x1F", "  ", ""]
    alphabet = "0123456789.eE+-, []()j_x"
    lines += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))) for _ in range(3000)]
    lexer = PythonLexer(stripnl=False, ensurenl=False)
    fast = 0
    for line in lines:
        spans = data_spans(line)
        if spans is None:
            continue
        fast += 1
        expected = [(pos, pos + len(v)) for pos, t, v in lexer.get_tokens_unprocessed(line + "\n") if t in Number]
        assert spans == expected, line
    assert fast > 400


def test_highlighting_lexes_one_line_per_call(qtbot, monkeypatch):
    """A program with 20,000 data rows: no call lexes more than one line, the data rows are coloured
    without the lexer, and the lines after the data are coloured as usual."""
    from ui import code_view as C
    document, view = _panel(qtbot)
    lexed: list[int] = []
    real = C._LineLexer.lex_line
    monkeypatch.setattr(C._LineLexer, "lex_line",
                        lambda self, text, stack: lexed.append(len(text)) or real(self, text, stack))
    rows = "\n".join(f"    [{i}.0, {-i * 0.25}]," for i in range(20_000))
    text = f"import torch\nx = torch.tensor([\n{rows}\n])\nfor i in range(3):\n    pass"
    view.setPlainText(text)
    qtbot.waitUntil(lambda: view.document().findBlockByNumber(view.blockCount() - 2).layout().formats() != [])
    assert 0 < max(lexed) <= max(len(line) for line in text.split("\n")) + 1
    assert len(lexed) < 20                                # the 20,000 data rows: no lexer
    assert _formats(view, 2)[0][2] == C.CODE_NUMBER
    assert _formats(view, view.blockCount() - 2)[0][:3] == (0, 3, C.CODE_KEYWORD)


def test_a_very_long_line_is_left_uncoloured(qtbot):
    from ui import code_view as C
    document, view = _panel(qtbot)
    view.setPlainText("x = [" + "1, " * C.LINE_LIMIT + "]\nfor i in range(3):\n    pass")
    qtbot.waitUntil(lambda: _formats(view, 1) != [])
    assert _formats(view, 0) == [] and _formats(view, 1)[0][2] == C.CODE_KEYWORD


# ---------------------------------------------------------------- regenerating after an edit

def test_an_lr_edit_does_not_write_the_data_again(monkeypatch):
    scenario = loads(MOONS.format(n=5000))
    before = CP.program(scenario)
    written = []
    real = CP.tensor_literal
    monkeypatch.setattr(CP, "tensor_literal",
                        lambda head, array, tail: written.append(array.size) or real(head, array, tail))
    checks = []
    real_check = CP.check
    monkeypatch.setattr(CP, "check", lambda *args: checks.append(1) or real_check(*args))
    edited = editable_copy(scenario)
    edited.optimizer.hyper["lr"] = 0.05
    after = CP.program(edited)
    assert not [size for size in written if size >= CP.CACHE_MIN_VALUES] and not checks
    changed = set(after.source.split("\n")) - set(before.source.split("\n"))
    assert changed and all(line.startswith("#") or "lr=0.05" in line for line in changed)
    assert len(after.source.split("\n")) - len(before.source.split("\n")) in (-1, 0, 1)
    monkeypatch.setattr(CP, "CACHE_MIN_VALUES", 10 ** 12)      # written from scratch: the same text
    assert CP.program(edited).source == after.source


def test_line_hunks_turn_the_old_lines_into_the_new(qtbot):
    from ui.code_view import line_hunks
    document, view = _panel(qtbot)
    rng = random.Random(1)
    for trial in range(300):
        old = [f"line {rng.randint(0, 30 if trial % 2 else 10 ** 6)}" for _ in range(rng.randint(1, 60))]
        new = list(old)
        for _ in range(rng.randint(0, 4)):
            i = rng.randint(0, len(new))
            kind = rng.choice("adr")
            if kind == "a" or not new:
                new[i:i] = [f"new {rng.random()}" for _ in range(rng.randint(1, 3))]
            elif kind == "d" and len(new) > 1:
                del new[min(i, len(new) - 1):min(i, len(new) - 1) + rng.randint(1, 3)]
            else:
                new[min(i, len(new) - 1)] = f"changed {rng.random()}"
        new = new or [""]
        hunks = line_hunks(old, new)
        rebuilt, at = [], 0
        for i0, i1, j0, j1 in hunks:
            rebuilt += old[at:i0] + new[j0:j1]
            at = i1
        assert rebuilt + old[at:] == new
        if trial % 10 == 0:                        # the editor, changed by the hunks, holds the new text
            view._put("\n".join(old), {})
            view._patch(hunks, new, "\n".join(new), {})
            assert view.toPlainText() == "\n".join(new)


def test_a_large_program_is_written_aside_and_an_lr_edit_changes_two_lines(qtbot, monkeypatch):
    from ui import code_view as C
    from ui.code_view import scenario_program
    document, view = _panel(qtbot)
    scenario = loads(MOONS.format(n=12_000))
    assert C.embedded_values(scenario) > C.ASYNC_VALUES
    shown_before = view.toPlainText()
    document.set_scenario(scenario)
    assert view.busy                                    # written in a thread, put in by slices
    waiting = view.toPlainText()                        # another scenario: not the last one's program
    assert waiting != shown_before and waiting.startswith("# Writing the PyTorch program of 'many moons'")
    assert f"{C.embedded_values(scenario):,} numbers" in waiting
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    program, lines = scenario_program(scenario, 0)
    assert len(program) > C.SYNC_CHARS
    assert view.toPlainText() == program and view.lines == lines and not view.isReadOnly()
    assert not document.source_edited and not view.document().isUndoAvailable()
    assert view.line_text(lines["backward"]).strip() == "loss.backward()"

    written, puts = [], []
    real = CP.tensor_literal
    monkeypatch.setattr(CP, "tensor_literal",
                        lambda head, array, tail: written.append(array.size) or real(head, array, tail))
    monkeypatch.setattr(view, "setPlainText", lambda text: puts.append(text))
    changes = []
    view.document().contentsChange.connect(lambda pos, removed, added: changes.append(max(removed, added)))
    edited = editable_copy(document.scenario)
    edited.optimizer.hyper["lr"] = 0.05
    document.edit(edited)
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == scenario_program(edited, 0)[0]
    assert not [size for size in written if size >= CP.CACHE_MIN_VALUES]     # the data section was kept
    assert not puts and changes and max(changes) < 500                       # two lines changed, not the text
    assert not document.source_edited and not view.document().isUndoAvailable()


def test_a_long_text_goes_in_by_slices(qtbot):
    from ui import code_view as C
    document, view = _panel(qtbot)
    document.set_scenario(load(bundled_path(DEFAULT_SCENARIO)))
    rows = "\n".join(f"    [{i}.0, {i + 1}.0]," for i in range(C.SYNC_CHARS // 5))
    text = f"x = torch.tensor([\n{rows}\n])\nfor i in range(3):\n    pass"
    view._put(text, {"forward": text.count("\n") + 1})
    assert view.busy and view.isReadOnly() and len(view.toPlainText()) < len(text) and view.lines == {}
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == text and not view.isReadOnly() and view.lines == {"forward": text.count("\n") + 1}
    assert not document.source_edited and not view.document().isUndoAvailable()
    assert _formats(view, view.blockCount() - 2)[0][:3] == (0, 3, C.CODE_KEYWORD)
    view._put(text + "\n# again", {})               # a new text while one goes in: the new one, whole
    view._put(text, {})
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == text


def test_a_long_line_is_highlighted_once_as_the_text_goes_in(qtbot, monkeypatch):
    """A slice's piece ends after a newline: a piece that began with the newline changed the last line
    put in, which Qt highlighted and laid out again (10 ms a time for limit_expression's line of 2,182
    characters: the 40 ms stall of its open)."""
    from ui import code_view as C
    lexed = []
    highlight = C.PythonHighlighter.highlightBlock
    monkeypatch.setattr(C.PythonHighlighter, "highlightBlock",       # before the editor exists: PySide
                        lambda self, line: (lexed.append(len(line)), highlight(self, line))[1])   # binds it then
    document, view = _panel(qtbot)
    document.set_scenario(load(bundled_path(DEFAULT_SCENARIO)))
    long_line = "pred = " + " + ".join(f"a{i} * torch.tanh(b{i} * x + c{i})" for i in range(90))
    assert 2_000 < len(long_line) < C.LINE_LIMIT
    text = "\n".join(f"{long_line}\ny{i} = {i}" for i in range(12))
    assert len(text) > C.PUT_SYNC_CHARS
    view._put(text, {})
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == text
    assert lexed.count(len(long_line)) == 12, sorted(set(lexed))[-5:]


def test_the_panel_thread_leaves_the_global_generator_alone():
    """The runs' thread builds a layers model from the global generator (torch.manual_seed): the
    panel's thread writes the same program without drawing from it."""
    import numpy as np

    import gradviz
    scenario = loads(MOONS.format(n=300).replace("seed = 3", "seed = 4"))
    gradviz.manual_seed(123)
    state = gradviz.get_rng_state().copy()
    text = CP.program(scenario, draw_weights=False).source
    assert np.array_equal(gradviz.get_rng_state(), state)
    assert text == CP.program(scenario).source


@pytest.mark.parametrize("rows", [10, 20_000])
def test_recolouring_is_not_an_edit(qtbot, rows):
    """Qt reports a re-highlight (a theme switch) as a text change: it must not mark the program
    edited. A long text is recoloured in slices."""
    from ui import code_view as C
    document, view = _panel(qtbot)
    document.set_scenario(load(bundled_path(DEFAULT_SCENARIO)))
    if rows > 10:
        text = "x = [\n" + "\n".join(f"    {i}.5," for i in range(rows)) + "\n]\nfor i in range(3):\n    pass"
        view._put(text, {})
        qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert not document.source_edited and not document.modified
    view._on_theme_changed()
    assert view._highlighter.recolouring == (rows > 10)
    qtbot.waitUntil(lambda: not view._highlighter.recolouring, timeout=60_000)
    assert not document.source_edited and not document.modified
    last = view.blockCount() - 2 if rows > 10 else view.toPlainText().split("\n").index("for step in range(100):")
    assert _formats(view, last)[0][:3] == (0, 3, C.CODE_KEYWORD)


def test_a_mid_size_program_goes_in_by_slices_and_an_edit_patches_its_lines(qtbot, monkeypatch):
    """A program over PUT_SYNC_CHARS (written at once, not in a thread) goes into the editor by
    slices (its highlighting in one go blocked the window 130 ms); an lr edit of it changes its
    two lines in place, the rest untouched (no setPlainText, no re-highlighting of the data)."""
    from ui import code_view as C
    from ui.code_view import scenario_program
    document, view = _panel(qtbot)
    scenario = loads(MOONS.format(n=800))
    program, lines = scenario_program(scenario, 0)
    assert C.embedded_values(scenario) <= C.ASYNC_VALUES and C.PUT_SYNC_CHARS < len(program) <= C.SYNC_CHARS
    document.set_scenario(scenario)
    assert view.busy and view.toPlainText() != program           # going in by slices
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == program and view.lines == lines and not view.isReadOnly()

    puts, changes = [], []
    monkeypatch.setattr(view, "setPlainText", lambda text: puts.append(text))
    view.document().contentsChange.connect(lambda pos, removed, added: changes.append(max(removed, added)))
    edited = editable_copy(document.scenario)
    edited.optimizer.hyper["lr"] = 0.05
    document.edit(edited)
    assert not view.busy                                         # patched at once
    assert view.toPlainText() == scenario_program(edited, 0)[0]
    assert not puts and changes and max(changes) < 500
    assert not document.source_edited and not view.document().isUndoAvailable()


def test_a_wide_deep_models_program_is_written_aside(qtbot):
    """Writing a layers model's program checks a forward pass of it (tens of ms for a wide deep
    net, on the UI thread): over ASYNC_PARAMS parameter elements it is written in a thread, with a
    line saying so meanwhile; the text is the same."""
    from ui import code_view as C
    from ui.code_view import scenario_program
    document, view = _panel(qtbot)
    wide = MOONS.format(n=200).replace("layers = [2, 4, 1]", "layers = [2, 128, 128, 128, 1]")
    scenario = loads(wide)
    assert C.embedded_values(scenario) <= C.ASYNC_VALUES < C.model_elements(scenario)
    assert C.model_elements(loads(MOONS.format(n=200))) == 2 * 4 + 4 + 4 * 1 + 1
    document.set_scenario(scenario)
    assert view.busy and view.toPlainText() == "# Writing the PyTorch program of 'many moons'\u2026\n"
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == scenario_program(scenario, 0)[0]


def test_a_long_expressions_program_is_written_aside_and_an_lr_edit_patches_it(qtbot):
    """An expression written out term by term (the parser's largest: 1,287 characters, 27 ms to write
    its program on the UI thread): over ASYNC_EXPRESSION characters its program is written in a
    thread; an lr edit then changes its lines in place, and the text is the one written at once."""
    from ui import code_view as C
    from ui.code_view import scenario_program
    document, view = _panel(qtbot)
    terms = " + ".join(f"a{i}*tanh(b{i}*x + c{i})" for i in range(30))
    values = "\n".join(f"a{i} = 0.{i + 1}\nb{i} = 1.{i}\nc{i} = -0.{i}" for i in range(30))
    text = (f'[scenario]\ntitle = "thirty units"\nseed = 0\n\n[model]\nexpression = "{terms}"\n\n'
            f'[model.parameters]\n{values}\n\n[data]\nkind = "linear"\nn = 50\nnoise = 0.1\n\n'
            '[loss]\nkind = "mse"\n\n[optimizer]\nkind = "sgd"\nlr = 0.01\n\n[loop]\nsteps = 5\n')
    scenario = loads(text)
    assert C.embedded_values(scenario) <= C.ASYNC_VALUES and C.model_elements(scenario) == 0
    assert C.expression_chars(scenario) > C.ASYNC_EXPRESSION > max(
        C.expression_chars(load(path)) for path in bundled())
    document.set_scenario(scenario)
    assert view.busy and view.toPlainText().startswith("# Writing the PyTorch program of 'thirty units'")
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == scenario_program(scenario, 0)[0]
    edited = loads(text.replace("lr = 0.01", "lr = 0.005"))
    document.set_scenario(edited)
    assert "lr=0.01" in view.toPlainText()              # the shown text stays while the new one is written
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == scenario_program(edited, 0)[0]


def test_another_files_program_written_aside_goes_in_by_slices(qtbot, monkeypatch):
    """A program written in the thread for another file replaces the waiting line: it is not a patch
    of the lines shown (limit_expression's 31,514 characters were patched over the waiting line in
    one go, highlighting 534 lines: 100-400 ms), so a program over PUT_SYNC_CHARS goes in by slices
    (here PUT_SYNC_CHARS is lowered so that a small expression's program is over it)."""
    from ui import code_view as C
    from ui.code_view import scenario_program
    monkeypatch.setattr(C, "PUT_SYNC_CHARS", 4_000)
    document, view = _panel(qtbot)
    terms = " + ".join(f"a{i}*tanh(b{i}*x + c{i})" for i in range(30))
    values = "\n".join(f"a{i} = 0.{i + 1}\nb{i} = 1.{i}\nc{i} = -0.{i}" for i in range(30))
    scenario = loads(f'[scenario]\ntitle = "thirty units"\nseed = 0\n\n[model]\nexpression = "{terms}"\n\n'
                     f'[model.parameters]\n{values}\n\n[data]\nkind = "linear"\nn = 50\nnoise = 0.1\n\n'
                     '[loss]\nkind = "mse"\n\n[optimizer]\nkind = "sgd"\nlr = 0.01\n\n[loop]\nsteps = 5\n')
    program = scenario_program(scenario, 0)[0]
    assert len(program) > 2 * C.PUT_SYNC_CHARS and C.PATCH_CHARS < C.PUT_SYNC_CHARS
    patches, changes = [], []
    real_patch = view._patch
    monkeypatch.setattr(view, "_patch", lambda *args: patches.append(1) or real_patch(*args))
    document.set_scenario(scenario)
    assert view.busy and view.toPlainText().startswith("# Writing the PyTorch program of 'thirty units'")
    view.document().contentsChange.connect(lambda pos, removed, added: changes.append(added))
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert view.toPlainText() == program and not view.isReadOnly()
    assert not patches                                   # not patched over the waiting line ...
    inserted = [n for n in changes if n > 0]
    assert len(inserted) >= 2 and max(inserted) < len(program)      # ... but put in by slices
