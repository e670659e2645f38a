"""The optimizer and loop controls: every hyperparameter and toggle, edited on a copy of the Scenario.

Each edit builds a new Scenario (``document.editable_copy()``, sharing the data, + the change),
checks what the change can affect with the same rules a scenario file must pass (the loader's:
PyTorch's optimizer rules, batch sizes that split into equal micro-batches, graph-size limits; the
data is not checked again, nothing is serialised) and only then hands it to ``document.edit``,
which re-runs every variant in chunks and marks the document modified. A refused value stays in
its widget, outlined in red, with the reason right under it; nothing is applied.

The controls edit the ViewState's variant, the current run (the one the graph and the code show and
the plots draw thicker): the "Edit" row names it; the toolbar's Run box chooses it.
"""
from __future__ import annotations

import html
import math

from PySide6 import QtCore, QtWidgets

from gradviz.scenario import (
    LIMITS,
    OPTIMIZER_CLASSES,
    OPTIMIZER_DEFAULTS,
    OPTIMIZERS,
    PRECISIONS,
    ZERO_GRAD_PLACEMENTS,
    LoopSpec,
    OptimizerSpec,
)
from gradviz.scenario.edits import (
    add_comparison,
    check_scenario,
    rename_if_automatic,
    set_loop_value,
    set_optimizer_kind,
    variant_name,
)

from . import theme as T
from .form_widgets import ERROR_COLOUR, ErrorLabel, WrappedCheck, field_width
from .schedule_controls import ScheduleControls
from .theme import variant_colour, variant_swatch

LR_MIN, LR_MAX = 1e-6, 10.0       # the slider's range (the exact field accepts any lr > 0)
# The slider's positions: 1, 2 and 5 in every decade from LR_MIN to LR_MAX (1e-06, 2e-06, 5e-06, …, 5.0,
# 10.0), each written exactly as typed; a drag moves one of these steps per few pixels, never more.
LR_STEPS = tuple(float(f"{m}e{e}") for e in range(round(math.log10(LR_MIN)), round(math.log10(LR_MAX)))
                 for m in (1, 2, 5)) + (LR_MAX,)
LR_TICKS = len(LR_STEPS) - 1       # the slider's last position
LR_KEY_DELAY_MS = 300              # keys and the wheel apply once they pause (no flood of re-runs)

HELP = {
    "lr": "learning rate γ: how far each step moves along the (processed) gradient",
    "momentum": "μ: the fraction of the previous update kept (SGD: buffer b = μ·b + (1−τ)·g)",
    "dampening": "τ: scales the new gradient added to the momentum buffer",
    "weight_decay": "λ: adds λ·θ to the gradient (AdamW: decoupled, θ ← θ − γλθ)",
    "nesterov": "look-ahead momentum: g + μ·b instead of b (needs momentum > 0, dampening = 0)",
    "maximize": "ascend instead of descend",
    "betas": "β1, β2: decay rates of the running averages of g and g² (each in [0, 1))",
    "eps": "ε: added to the denominator for numerical stability",
    "amsgrad": "use the maximum of all v so far (AMSGrad)",
    "alpha": "smoothing constant of the running average of g²",
    "centered": "normalise by the estimated variance of the gradient",
    "lr_decay": "learning-rate decay: γ / (1 + (t−1)·decay)",
    "initial_accumulator_value": "starting value of the sum of squared gradients",
}
ZERO_GRAD_TEXT = {"before_backward": "before backward (usual)", "after_step": "after step",
                  "never": "never (grads accumulate!)"}


def fmt_number(value: float) -> str:
    """Shortest text that reads back as the same float (``0.01``, ``1e-05``)."""
    value = float(value)
    return repr(int(value)) + ".0" if value.is_integer() and abs(value) < 1e15 else repr(value)


def parse_number(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"“{text.strip()}” is not a number") from None
    if not math.isfinite(value):
        raise ValueError("a finite number, please")
    return value


def lr_to_tick(lr: float) -> int:
    """The slider position nearest to ``lr`` on a log scale (clamped to the slider's range)."""
    lr = min(max(float(lr), LR_MIN), LR_MAX) if math.isfinite(lr) and lr > 0 else LR_MIN
    x = math.log10(lr)
    return min(range(len(LR_STEPS)), key=lambda i: abs(math.log10(LR_STEPS[i]) - x))


def tick_to_lr(tick: int) -> float:
    """The learning rate at slider position ``tick``: 1, 2 or 5 times a power of ten."""
    return LR_STEPS[min(max(int(tick), 0), LR_TICKS)]


class ControlsPanel(QtWidgets.QWidget):
    """Optimizer kind and hyperparameters, loop toggles, steps, and the comparison list."""

    def __init__(self, document, view_state, parent=None):
        super().__init__(parent)
        self.document = document
        self.view_state = view_state
        self.fields: dict[str, object] = {}
        self.errors: dict[str, ErrorLabel] = {}
        self._form_kind: str | None = None
        self._lr_released = False
        self._lr_timer = QtCore.QTimer(self)      # applies a key or wheel change of the lr slider
        self._lr_timer.setSingleShot(True)
        self._lr_timer.setInterval(LR_KEY_DELAY_MS)
        self._lr_timer.timeout.connect(self._apply_lr_slider)

        # Everything scrolls (vertically, and sideways only below the narrowest width it can wrap to):
        # a narrow or short dock never cuts a label or a value.
        root = QtWidgets.QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.content = QtWidgets.QWidget()
        self.scroll.setWidget(self.content)
        root.addWidget(self.scroll)
        outer = QtWidgets.QVBoxLayout(self.content)
        outer.setContentsMargins(6, 6, 6, 6)
        # a script's values are its code: the panel says so and its controls are greyed out
        self.script_note = QtWidgets.QLabel(
            "This run is a Python script: its optimizer, loop and data are its code. Edit it in the "
            "Code panel and press Ctrl+R to run it again.")
        self.script_note.setWordWrap(True)
        self.script_note.setMinimumWidth(120)
        self.script_note.setStyleSheet("color: #1d4ed8; padding: 4px;")
        self.script_note.hide()
        outer.addWidget(self.script_note)

        top = QtWidgets.QFormLayout()
        top.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
        # the run these controls edit: named here, chosen in one place only (the toolbar)
        self.run_label = QtWidgets.QLabel()
        self.run_label.setWordWrap(True)
        self.run_label.setMinimumWidth(120)
        self.run_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.NoTextInteraction)
        self.run_label.setToolTip("The run these controls edit: the current run. Choose it in the toolbar's "
                                  "Run box (the graph, the code and the plots follow it too).")
        top.addRow("Edit", self.run_label)
        self.kind_box = QtWidgets.QComboBox()
        for kind in OPTIMIZERS:
            self.kind_box.addItem(f"{OPTIMIZER_CLASSES[kind]}", kind)
        self.kind_box.setToolTip("The optimizer (torch.optim class); its hyperparameters start at "
                                 "PyTorch's defaults, the learning rate is kept")
        self.kind_box.activated.connect(self._on_kind_chosen)
        top.addRow("Optimizer", self.kind_box)
        outer.addLayout(top)
        self.errors["kind"] = ErrorLabel()
        outer.addWidget(self.errors["kind"])

        self.hyper_group = QtWidgets.QGroupBox("Hyperparameters")
        self.hyper_form = QtWidgets.QFormLayout(self.hyper_group)
        self.hyper_form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.hyper_form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
        outer.addWidget(self.hyper_group)

        self.loop_group = QtWidgets.QGroupBox("Training loop")
        self.loop_form = QtWidgets.QFormLayout(self.loop_group)
        self.loop_form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.loop_form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
        self._build_loop()
        outer.addWidget(self.loop_group)

        self.schedule = ScheduleControls(self)
        outer.addWidget(self.schedule.group)

        self.compare_group = QtWidgets.QGroupBox("Comparisons")
        cl = QtWidgets.QVBoxLayout(self.compare_group)
        self.add_button = QtWidgets.QPushButton("Add as comparison")
        self.add_button.setToolTip("Keep the current main run overlaid on the plots while you try other values")
        self.add_button.clicked.connect(self.add_comparison)
        cl.addWidget(self.add_button)
        self.comparison_list = QtWidgets.QListWidget()
        self.comparison_list.setMaximumHeight(120)
        self.comparison_list.setWordWrap(True)            # a long variant name wraps, never "Adam(lr=0.0…"
        self.comparison_list.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        self.comparison_list.setToolTip("Overlaid runs, in the plots' colours")
        cl.addWidget(self.comparison_list)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected comparison")
        self.remove_button.clicked.connect(self.remove_comparison)
        cl.addWidget(self.remove_button)
        self.comparison_list.currentRowChanged.connect(
            lambda row: self.remove_button.setEnabled(row >= 0))
        self.errors["comparison"] = ErrorLabel()
        cl.addWidget(self.errors["comparison"])
        outer.addWidget(self.compare_group)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("running… %v / %m steps")
        self.progress.hide()
        outer.addWidget(self.progress)
        outer.addStretch(1)

        document.scenarioChanged.connect(self.sync)
        view_state.variantChanged.connect(lambda _i: self.sync())
        T.notifier.changed.connect(self._on_theme_changed)
        document.runStarted.connect(self._on_run_started)
        document.runProgress.connect(self._on_run_progress)
        document.runFinished.connect(self.progress.hide)
        document.failed.connect(lambda _m: self.progress.hide())
        self._set_editable(document.scenario)
        if document.scenario is not None:
            self.sync()

    # -- building ---------------------------------------------------------------------------------
    def _row(self, form: QtWidgets.QFormLayout, label: str | QtWidgets.QWidget, key: str, widget: QtWidgets.QWidget,
             tip: str = "", below: QtWidgets.QWidget | None = None) -> None:
        """A row ``label: widget`` (``below`` under it, across the whole width), then its error row."""
        if tip:
            widget.setToolTip(tip)
        if isinstance(widget, QtWidgets.QLineEdit):
            widget.setMinimumWidth(field_width(widget))
        form.addRow(label, widget)
        if below is not None:
            form.addRow(below)
        error = ErrorLabel()
        form.addRow("", error)
        self.errors[key] = error
        # keep the empty error rows from taking space
        form.setRowVisible(form.rowCount() - 1, False)
        error.form_row = (form, form.rowCount() - 1)

    def _build_loop(self) -> None:
        f = self.loop_form
        self.zero_grad_box = QtWidgets.QComboBox()
        for placement in ZERO_GRAD_PLACEMENTS:
            self.zero_grad_box.addItem(ZERO_GRAD_TEXT[placement], placement)
        self.zero_grad_box.activated.connect(
            lambda _i: self._apply_loop("zero_grad", self.zero_grad_box.currentData()))
        self._row(f, "zero_grad()", "zero_grad", self.zero_grad_box,
                  "Where optimizer.zero_grad() is called; 'never' lets .grad keep growing")
        self.set_to_none_box = QtWidgets.QCheckBox("set_to_none")
        self.set_to_none_box.toggled.connect(lambda on: self._apply_loop("set_to_none", on))
        self._row(f, "", "set_to_none", self.set_to_none_box,
                  "zero_grad(set_to_none=True) makes .grad None (PyTorch's default) instead of zeros")
        self.batch_box = QtWidgets.QSpinBox()
        self.batch_box.setRange(0, LIMITS["max_points"])
        self.batch_box.setSpecialValueText("full")
        self.batch_box.setKeyboardTracking(False)
        self.batch_box.valueChanged.connect(lambda v: self._apply_loop("batch_size", v or None))
        self._row(f, "batch size", "batch_size", self.batch_box,
                  "Examples per optimizer step (0 = full batch)")
        shuffle = WrappedCheck("shuffle each epoch")
        self.shuffle_box = shuffle.box
        self.shuffle_box.toggled.connect(lambda on: self._apply_loop("shuffle", on))
        self._row(f, "", "shuffle", shuffle)
        self.accumulation_box = QtWidgets.QSpinBox()
        self.accumulation_box.setRange(1, LIMITS["max_accumulation_steps"])
        self.accumulation_box.setKeyboardTracking(False)
        self.accumulation_box.valueChanged.connect(lambda v: self._apply_loop("accumulation_steps", v))
        self._row(f, "accumulation", "accumulation_steps", self.accumulation_box,
                  "Split each batch into this many micro-batches; their grads add up before one step()")
        divide = WrappedCheck("divide loss by accumulation steps")
        self.divide_box = divide.box
        self.divide_box.toggled.connect(lambda on: self._apply_loop("divide_loss", on))
        self._row(f, "", "divide_loss", divide,
                  "Without it the accumulated gradient is accumulation_steps times too large")
        self.precision_box = QtWidgets.QComboBox()
        for p in PRECISIONS:
            self.precision_box.addItem(p, p)
        self.precision_box.activated.connect(self._on_precision_chosen)
        self._row(f, "precision", "precision", self.precision_box,
                  "float16 / bfloat16: float32 master weights, forward under autocast(float16 / bfloat16)")
        scaling = WrappedCheck("loss scaling (GradScaler)")
        self.scaling_box = scaling.box
        self.scaling_box.toggled.connect(lambda on: self._apply_loop("loss_scaling", on))
        self._row(f, "", "loss_scaling", scaling,
                  "float16 only: scale the loss so small gradients do not underflow")
        self.steps_box = QtWidgets.QSpinBox()
        self.steps_box.setRange(1, LIMITS["max_steps"])
        self.steps_box.setKeyboardTracking(False)
        self.steps_box.setStepType(QtWidgets.QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        self.steps_box.valueChanged.connect(lambda v: self._apply_loop("steps", v))
        self._row(f, "steps", "steps", self.steps_box, "Optimizer steps to run")

    def _build_lr_slider(self) -> QtWidgets.QSlider:
        """The log-scale slider under the lr field: one position per 1/2/5 value (``LR_STEPS``), the
        whole width of the panel; a drag previews the value in the field and applies it on release,
        keys and the wheel apply once they pause."""
        slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        slider.setRange(0, LR_TICKS)
        slider.setSingleStep(1)
        slider.setPageStep(3)                       # a decade
        slider.setTickPosition(QtWidgets.QSlider.TickPosition.TicksBelow)
        slider.setTickInterval(3)                   # a tick at each power of ten
        slider.setMinimumWidth(6 * LR_TICKS)
        slider.setTracking(False)                   # a drag moves sliderPosition; value on release
        slider.setToolTip(f"learning rate, log scale: 1, 2, 5 × each power of ten from {LR_MIN:g} to "
                          f"{LR_MAX:g} (a tick at each power of ten); type any other value in the field")
        slider.sliderMoved.connect(lambda t: self.lr_edit.setText(fmt_number(tick_to_lr(t))))
        slider.sliderReleased.connect(self._on_lr_released)
        slider.valueChanged.connect(self._on_lr_slider)
        return slider

    def _clear_hyper_form(self) -> None:
        while self.hyper_form.rowCount():
            self.hyper_form.removeRow(0)
        for key in list(self.fields):
            self.fields.pop(key)
            self.errors.pop(key, None)

    def _build_hyper_form(self, kind: str) -> None:
        self._clear_hyper_form()
        self._form_kind = kind
        for key, default in OPTIMIZER_DEFAULTS[kind].items():
            tip = HELP.get(key, "")
            if key == "lr":
                self.lr_edit = QtWidgets.QLineEdit()
                self.lr_edit.setToolTip("exact learning rate (> 0); Enter applies")
                self.lr_edit.editingFinished.connect(lambda: self._apply_number("lr", self.lr_edit))
                self.lr_slider = self._build_lr_slider()
                self.fields["lr"] = self.lr_edit
                self._row(self.hyper_form, "lr", "lr", self.lr_edit, tip, below=self.lr_slider)
            elif isinstance(default, bool):
                box = QtWidgets.QCheckBox()
                box.toggled.connect(lambda on, key=key, box=box: self._apply_bool(key, box, on))
                self.fields[key] = box
                self._row(self.hyper_form, key, key, box, tip)
            elif key == "betas":
                row = QtWidgets.QWidget()
                h = QtWidgets.QHBoxLayout(row)
                h.setContentsMargins(0, 0, 0, 0)
                edits = (QtWidgets.QLineEdit(), QtWidgets.QLineEdit())
                for i, e in enumerate(edits):
                    e.setToolTip(f"β{i + 1}")
                    e.editingFinished.connect(self._apply_betas)
                    h.addWidget(e)
                self.fields["betas"] = edits
                self._row(self.hyper_form, "betas", "betas", row, tip)
            else:
                edit = QtWidgets.QLineEdit()
                edit.editingFinished.connect(lambda key=key, edit=edit: self._apply_number(key, edit))
                self.fields[key] = edit
                self._row(self.hyper_form, key, key, edit, tip)

    # -- reading the document -------------------------------------------------------------------
    def _spec(self, scenario, index: int | None = None) -> tuple[OptimizerSpec, LoopSpec]:
        """The optimizer and loop of variant ``index`` (default: the edited one, the ViewState's)."""
        i = self.view_state.variant if index is None else index
        if i == 0:
            return scenario.optimizer, scenario.loop
        v = scenario.comparisons[i - 1]
        return v.optimizer, v.loop

    def _set_editable(self, scenario) -> None:
        """Nothing to edit without a scenario; a script is edited as code, not here."""
        script = scenario is not None and scenario.script is not None
        self.script_note.setVisible(script)
        for widget in (self.kind_box, self.hyper_group, self.loop_group,
                       self.schedule.group, self.compare_group):
            widget.setEnabled(scenario is not None and not script)

    def sync(self) -> None:
        """Show the scenario's values (after any edit, a new file, or a comparison change)."""
        sc = self.document.scenario
        self._set_editable(sc)
        self._lr_timer.stop()                    # a pending slider value belonged to the old values
        if sc is None:
            return
        self._show_run(sc)
        opt, loop = self._spec(sc)
        if opt.kind != self._form_kind:
            self._build_hyper_form(opt.kind)
        widgets = [self.kind_box, self.zero_grad_box, self.set_to_none_box, self.batch_box, self.shuffle_box,
                   self.accumulation_box, self.divide_box, self.precision_box, self.scaling_box, self.steps_box]
        for w in self.fields.values():
            widgets.extend(w if isinstance(w, tuple) else [w])
        widgets.append(self.lr_slider)
        widgets.extend(self.schedule.all_widgets())
        for w in widgets:
            w.blockSignals(True)
        try:
            self.kind_box.setCurrentIndex(self.kind_box.findData(opt.kind))
            for key, w in self.fields.items():
                value = opt.hyper.get(key, OPTIMIZER_DEFAULTS[opt.kind][key])
                if isinstance(w, tuple):
                    for e, v in zip(w, value):
                        e.setText(fmt_number(v))
                elif isinstance(w, QtWidgets.QCheckBox):
                    w.setChecked(bool(value))
                else:
                    w.setText(fmt_number(value))
            if not self.lr_slider.isSliderDown():
                self.lr_slider.setValue(lr_to_tick(float(opt.hyper["lr"])))
            self.zero_grad_box.setCurrentIndex(self.zero_grad_box.findData(loop.zero_grad))
            self.set_to_none_box.setChecked(loop.set_to_none)
            self.batch_box.setValue(loop.batch_size or 0)
            self.shuffle_box.setChecked(loop.shuffle)
            self.accumulation_box.setValue(loop.accumulation_steps)
            self.divide_box.setChecked(loop.divide_loss)
            self.precision_box.setCurrentIndex(self.precision_box.findData(loop.precision))
            self.scaling_box.setChecked(loop.loss_scaling)
            self.steps_box.setValue(loop.steps)
            self.schedule.sync(opt, loop)
        finally:
            for w in widgets:
                w.blockSignals(False)
        objective = sc.model.kind == "objective"
        for w in (self.batch_box, self.shuffle_box):
            w.setEnabled(not objective)
            if objective:
                w.setToolTip("An objective has no data to batch")
        self.set_to_none_box.setEnabled(loop.zero_grad != "never")
        self.scaling_box.setEnabled(loop.precision == "float16")
        if "dampening" in self.fields:
            self.fields["dampening"].setEnabled(float(opt.hyper.get("momentum", 0)) != 0)
        self.comparison_list.clear()
        for i, v in enumerate(sc.comparisons, start=1):
            self.comparison_list.addItem(QtWidgets.QListWidgetItem(variant_swatch(i), v.name))
        full = len(sc.comparisons) >= LIMITS["max_comparisons"]
        self.add_button.setEnabled(not full)
        self.add_button.setToolTip(f"At most {LIMITS['max_comparisons']} comparisons" if full else
                                   "Keep the current main run overlaid on the plots while you try other values")
        self.remove_button.setEnabled(self.comparison_list.currentRow() >= 0)
        self.clear_errors()

    def _on_theme_changed(self) -> None:
        if self.document.scenario is not None:
            self._show_run(self.document.scenario)         # its hint's colour is the palette's

    def _show_run(self, scenario) -> None:
        """The current run's swatch and name ("Main run: …" or "Comparison i: …"), then where to
        choose another."""
        i = self.view_state.variant
        variants = scenario.variants()
        if not 0 <= i < len(variants):
            self.run_label.clear()
            return
        role = "Main run" if i == 0 else f"Comparison {i}"
        self.run_label.setText(
            f'<span style="color:{variant_colour(i)}">■</span> <b>{role}:</b> {html.escape(variants[i].name)}'
            f'<br><span style="color:{T.TEXT_MUTED}; font-size:8pt">choose the run in the toolbar</span>')

    # -- errors -----------------------------------------------------------------------------------
    def _widgets_of(self, key: str) -> list[QtWidgets.QWidget]:
        if key in self.schedule.widgets:
            return list(self.schedule.widgets[key])
        w = self.fields.get(key) or {
            "zero_grad": self.zero_grad_box, "set_to_none": self.set_to_none_box, "batch_size": self.batch_box,
            "shuffle": self.shuffle_box, "accumulation_steps": self.accumulation_box, "divide_loss": self.divide_box,
            "precision": self.precision_box, "loss_scaling": self.scaling_box, "steps": self.steps_box,
            "kind": self.kind_box}.get(key)
        if w is None:
            return []
        return list(w) if isinstance(w, tuple) else [w]

    def show_error(self, key: str, message: str) -> None:
        label = self.errors.get(key)
        if label is None:
            return
        label.setText(f"Not applied: {message}")
        label.show()
        if hasattr(label, "form_row"):
            form, row = label.form_row
            form.setRowVisible(row, True)
        for w in self._widgets_of(key):
            w.setStyleSheet(f"border: 1px solid {ERROR_COLOUR};" if isinstance(w, QtWidgets.QLineEdit)
                            else f"color: {ERROR_COLOUR};")
            w.setProperty("invalid", True)

    def clear_error(self, key: str) -> None:
        label = self.errors.get(key)
        if label is None:
            return
        label.clear()
        label.hide()
        if hasattr(label, "form_row"):
            form, row = label.form_row
            form.setRowVisible(row, False)
        for w in self._widgets_of(key):
            w.setStyleSheet("")
            w.setProperty("invalid", False)

    def clear_errors(self) -> None:
        for key in list(self.errors):
            self.clear_error(key)

    def error_text(self, key: str) -> str:
        label = self.errors.get(key)
        return label.text() if label is not None else ""

    # -- applying ---------------------------------------------------------------------------------
    def _apply(self, key: str, change, index: int | None = None) -> bool:
        """Copy, change, check, and only then edit the document; False (and a reason) if refused.
        ``change(new, opt, loop)`` gets the optimizer and loop of variant ``index`` (the edited one)."""
        if self.document.scenario is None:
            return False
        index = self.view_state.variant if index is None else index
        new = self.document.editable_copy()
        opt, loop = self._spec(new, index)
        before = variant_name(opt, loop)
        try:
            change(new, opt, loop)
        except ValueError as exc:
            self.show_error(key, str(exc))
            return False
        if index > 0:
            rename_if_automatic(new, new.comparisons[index - 1], before)
        problem = check_scenario(new, before=self.document.scenario)   # what the edit changed
        if problem:
            self.show_error(key, problem)
            return False
        self.clear_error(key)
        self.document.edit(new)
        return True

    def _apply_number(self, key: str, edit: QtWidgets.QLineEdit) -> bool:
        text = edit.text()
        try:
            value = parse_number(text)
        except ValueError as exc:
            self.show_error(key, str(exc))
            return False
        opt, _loop = self._spec(self.document.scenario)
        if value == opt.hyper.get(key) and not edit.property("invalid"):
            return True                     # focus left an unchanged field: nothing to do
        if key == "lr" and value <= 0:
            self.show_error(key, f"lr must be > 0 (found {fmt_number(value)}): with lr = 0 nothing moves, "
                                 "and torch.optim refuses lr < 0")
            return False

        def change(new, opt, loop):
            opt.hyper[key] = value
        return self._apply(key, change)

    def _on_lr_slider(self, tick: int) -> None:
        """The slider's value changed: at the release of a drag (apply now), or by a key, a click on
        the groove or the wheel (show it now, apply when they pause: holding a key is one re-run)."""
        self.lr_edit.setText(fmt_number(tick_to_lr(tick)))
        if self.lr_slider.isSliderDown():
            return
        if self._lr_released:
            self._lr_released = False
            self._apply_lr_slider()
        else:
            self._lr_timer.start()

    def _on_lr_released(self) -> None:
        """A drag ended: its value (if it moved) is applied now; if it came back to where it started
        the field shows the exact lr again (which may lie between two slider positions)."""
        if self.lr_slider.sliderPosition() == self.lr_slider.value():
            opt, _loop = self._spec(self.document.scenario)
            self.lr_edit.setText(fmt_number(opt.hyper["lr"]))
        else:
            self._lr_released = True            # valueChanged follows at once, with the new value

    def _apply_lr_slider(self) -> None:
        self._lr_timer.stop()
        if self.document.scenario is not None:
            self.lr_edit.setText(fmt_number(tick_to_lr(self.lr_slider.value())))
            self._apply_number("lr", self.lr_edit)

    def _apply_betas(self) -> bool:
        try:
            betas = tuple(parse_number(e.text()) for e in self.fields["betas"])
        except ValueError as exc:
            self.show_error("betas", str(exc))
            return False
        opt, _loop = self._spec(self.document.scenario)
        if tuple(opt.hyper.get("betas", ())) == betas and not self.fields["betas"][0].property("invalid"):
            return True

        def change(new, opt, loop):
            opt.hyper["betas"] = betas
        return self._apply("betas", change)

    def _apply_bool(self, key: str, box: QtWidgets.QCheckBox, on: bool) -> bool:
        def change(new, opt, loop):
            opt.hyper[key] = bool(on)
        if self._apply(key, change):
            return True
        box.blockSignals(True)              # a refused toggle goes back; the reason stays below it
        box.setChecked(not on)
        box.blockSignals(False)
        return False

    def _apply_loop(self, key: str, value) -> bool:
        sc = self.document.scenario
        if sc is None:
            return False
        _opt, current = self._spec(sc)
        if getattr(current, key) == value and not self._widgets_of(key)[0].property("invalid"):
            return True

        def change(new, opt, loop):
            set_loop_value(loop, key, value)
        ok = self._apply(key, change)
        if not ok and isinstance(self._widgets_of(key)[0], QtWidgets.QCheckBox):
            box = self._widgets_of(key)[0]
            box.blockSignals(True)
            box.setChecked(not value)
            box.blockSignals(False)
        return ok

    def _on_precision_chosen(self, _index: int) -> None:
        self._apply_loop("precision", self.precision_box.currentData())

    def _on_kind_chosen(self, _index: int) -> None:
        kind = self.kind_box.currentData()
        opt, _loop = self._spec(self.document.scenario)
        if kind == opt.kind:
            return

        def change(new, spec, loop):
            set_optimizer_kind(spec, kind)
        if not self._apply("kind", change):
            self.kind_box.blockSignals(True)
            self.kind_box.setCurrentIndex(self.kind_box.findData(opt.kind))
            self.kind_box.blockSignals(False)

    # -- comparisons ------------------------------------------------------------------------------
    def add_comparison(self) -> bool:
        """Keep the main run (as it is now) as a comparison; the controls (and every view) go on with
        the main run."""
        sc = self.document.scenario
        if sc is None:
            return False

        def change(new, opt, loop):
            add_comparison(new)
        ok = self._apply("comparison", change, index=0)
        self.view_state.set_variant(0)
        return ok

    def remove_comparison(self, row: int | None = None) -> bool:
        sc = self.document.scenario
        row = self.comparison_list.currentRow() if row is None else row
        if sc is None or not 0 <= row < len(sc.comparisons):
            return False

        def change(new, opt, loop):
            del new.comparisons[row]
        old = self.view_state.variant
        keep = old - 1 if old > row + 1 else 0 if old == row + 1 else old
        ok = self._apply("comparison", change, index=0)
        if ok:                              # the same run as before, wherever it now is in the list
            self.view_state.set_variant(keep)
        return ok

    # -- run progress -----------------------------------------------------------------------------
    def _on_run_started(self) -> None:
        self.progress.setRange(0, max(self.document.total_steps, 1))
        self.progress.setValue(0)

    def _on_run_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if total >= 2000 and not self.progress.isVisible():
            self.progress.show()
