"""What the code panel shows, without Qt: the program of a TOML scenario's variant and its phase
lines, the text shown while a large one is written in a thread, how many numbers a program embeds
(whether to write it in a thread), and the line hunks by which a new program differs from the
shown one (an lr edit changes two lines, not the data)."""
from __future__ import annotations

from gradviz import codegen


def panel_lines(script) -> tuple[list[str], dict[str, int]]:
    """An exporter listing shown as a training loop only (the fallback while codegen has no clean
    ``program()``): the setup lines, a blank line, then the loop; and each phase's 1-based line."""
    setup = [line for line in script.listing if line.kind == "setup"]
    loop = [line for line in script.listing if line.kind in ("loop", "bookkeeping")]
    shown = setup + [None] + loop if setup else loop
    lines: dict[str, int] = {}
    for number, line in enumerate(shown, 1):
        for phase in line.phases if line is not None else ():
            lines.setdefault(phase, number)
    return ["" if line is None else line.code for line in shown], lines


def scenario_program(scenario, variant: int, **options) -> tuple[str, dict[str, int]]:
    """The clean PyTorch program of a TOML scenario's variant and its phase lines (1-based);
    ``options`` go to ``codegen.program``."""
    program = getattr(codegen, "program", None)
    if program is not None:
        script = program(scenario, variant, **options)
        return script.source.rstrip("\n"), dict(script.lines)
    shown, lines = panel_lines(codegen.export_torch(scenario, variant))
    return "\n".join(shown).rstrip("\n"), lines


def waiting_text(title: str, values: int) -> str:
    """What the panel shows while another file's program is written in a thread (``values``: the
    numbers it embeds, said when there are many)."""
    title = " ".join(str(title).split())
    text = f"# Writing the PyTorch program of {title!r}\u2026\n"
    if values > 1_000:
        text += f"# ({values:,} numbers of data and initial values go into it inline)\n"
    return text


def model_elements(scenario) -> int:
    """The parameter elements of a layers model (0 for other models): writing its program checks a
    forward pass of it, tens of ms for a wide deep net."""
    try:
        layers = [int(n) for n in scenario.model.layers] if scenario.model.kind == "layers" else []
    except (TypeError, ValueError, AttributeError):
        return 0
    return sum(a * b + b for a, b in zip(layers, layers[1:]))


def expression_chars(scenario) -> int:
    """The length of an expression model's expression (0 for other models): its program parses it and
    writes a term per node."""
    expression = getattr(getattr(scenario, "model", None), "expression", None)
    return len(expression) if isinstance(expression, str) else 0


def embedded_values(scenario) -> int:
    """About how many numbers the program of ``scenario`` embeds (its data and initial values): a
    cheap look at the scenario, to decide whether to write the program in a thread."""
    try:
        data, count = scenario.data, 0
        if data.kind == "inline":
            for values in (data.x, data.y):
                if values is not None and len(values):
                    first = values[0]
                    count += len(values) * (len(first) if isinstance(first, (list, tuple)) else 1)
        elif data.kind != "none" and scenario.model.kind != "objective":
            count += int(data.n) * 3
        for init in scenario.model.parameters.values():
            size = 1
            for n in init.shape or ():
                size *= int(n)
            count += size
        return count
    except (TypeError, ValueError, AttributeError):
        return 0


def line_hunks(old: list[str], new: list[str]) -> list[tuple[int, int, int, int]]:
    """Replacements ``(i0, i1, j0, j1)``: ``old[i0:i1]`` becomes ``new[j0:j1]``, in order, that turn
    ``old`` into ``new``. Linear: the common start and end are kept, and the middle is split at its
    longest run of equal lines found through lines that occur once (the data between the edited
    title and the edited optimizer line is one such run)."""
    hunks: list[tuple[int, int, int, int]] = []
    _hunks(old, new, 0, len(old), 0, len(new), hunks)
    return hunks


def _hunks(a, b, alo, ahi, blo, bhi, out) -> None:
    while alo < ahi and blo < bhi and a[alo] == b[blo]:
        alo, blo = alo + 1, blo + 1
    while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
        ahi, bhi = ahi - 1, bhi - 1
    if alo == ahi and blo == bhi:
        return
    if alo == ahi or blo == bhi or (ahi - alo) * (bhi - blo) < 64:
        out.append((alo, ahi, blo, bhi))
        return
    where: dict[str, int] = {}
    for j in range(blo, bhi):
        where[b[j]] = -1 if b[j] in where else j
    best = (0, 0, 0)                  # length, i, j of the longest run of equal lines
    i = alo
    while i < ahi:
        j = where.get(a[i], -1)
        if j < 0:
            i += 1
            continue
        k = 0
        while i + k < ahi and j + k < bhi and a[i + k] == b[j + k]:
            k += 1
        if k > best[0]:
            best = (k, i, j)
        i += k
    length, i, j = best
    if not length:
        out.append((alo, ahi, blo, bhi))
        return
    _hunks(a, b, alo, i, blo, j, out)
    _hunks(a, b, i + length, ahi, j + length, bhi, out)


def _generate(scenario, variant: int, base: list[str] | None) -> tuple:
    """The worker thread's job: the program, its lines and phase lines, and the hunks from ``base``
    (the lines the editor shows) when there is one."""
    try:       # draw_weights=False: the runs' thread draws its initial weights from the global generator
        text, lines = scenario_program(scenario, variant, draw_weights=False)
    except Exception as exc:        # the panel must never take the window down
        text, lines = f"# could not generate the PyTorch program: {exc}", {}
    rows = text.split("\n")
    return text, lines, rows, (line_hunks(base, rows) if base is not None else None)
