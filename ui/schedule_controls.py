"""The clipping and learning-rate scheduler controls, a group of the ControlsPanel.

- ``clip_grad_norm_`` on/off and its ``max_norm``; with loss scaling, whether
  ``scaler.unscale_(optimizer)`` comes first (off: the scaled gradients are clipped, the mistake);
- the scheduler (none, StepLR, ...), its main argument (``step_size``, ``milestones``, ``gamma``,
  ``T_max``, ``start_factor``, ``max_lr``) and where ``scheduler.step()`` is called.

Every change goes through the panel's ``_apply`` (copy, change, check, edit): a refused value stays
in its widget with the reason under it, exactly as for the other controls.
"""
from __future__ import annotations

from PySide6 import QtWidgets

from gradviz.scenario.edits import set_scheduler_kind
from gradviz.scenario.schema import SCHEDULER_CLASSES, SCHEDULER_PLACEMENTS, SCHEDULERS, LoopSpec, OptimizerSpec

from .form_widgets import WrappedCheck

DEFAULT_MAX_NORM = 1.0
# The argument shown for each scheduler (the others keep PyTorch's defaults, or the file's values).
MAIN_ARGUMENT = {"step": "step_size", "multistep": "milestones", "exponential": "gamma", "cosine": "T_max",
                 "linear": "start_factor", "onecycle": "max_lr"}
INTEGER_ARGUMENTS = ("step_size", "T_max", "total_iters", "total_steps")
PLACEMENT_TEXT = {"after_step": "after step() (usual)",        # the row says scheduler.step(); the
                  "before_step": "before step() (mistake!)"}     # tooltip, optimizer.step()
HELP = {
    "clip_grad_norm": "torch.nn.utils.clip_grad_norm_(params, max_norm) before step(): if the total "
                      "gradient norm exceeds max_norm, every grad is scaled by max_norm / norm",
    "unscale_before_clip": "scaler.unscale_(optimizer) before clipping; without it the *scaled* "
                           "gradients are clipped (their norm is scale times too large)",
    "scheduler": "torch.optim.lr_scheduler class, stepped once per optimizer step",
    "scheduler_argument": "the scheduler's main argument, counted in optimizer steps where it is a "
                          "number of steps (milestones: comma-separated)",
    "placement": "where scheduler.step() is called: after optimizer.step() (usual), or before it, "
                 "which skips the schedule's first value (PyTorch warns about it)",
}


def parse_argument(key: str, text: str):
    """A scheduler argument typed in a field: an integer, a list of integers, or a number."""
    text = text.strip()
    try:
        if key == "milestones":
            values = [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
            if not values:
                raise ValueError
            return values
        if key in INTEGER_ARGUMENTS:
            return int(text)
        return float(text)
    except ValueError:
        expected = ("step numbers separated by commas, e.g. 30, 80" if key == "milestones"
                    else "a whole number of steps" if key in INTEGER_ARGUMENTS else "a number")
        raise ValueError(f"{key}: expected {expected}, found “{text}”") from None


def show_argument(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


class ScheduleControls:
    """The "Clipping and schedule" group of ``panel`` (a ControlsPanel): builds its rows and
    registers their error labels and widgets with the panel."""

    def __init__(self, panel):
        self.panel = panel
        self.group = QtWidgets.QGroupBox("Clipping and schedule")
        self.form = form = QtWidgets.QFormLayout(self.group)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)

        # the check box is the row's label, max_norm its field: each keeps its width in a narrow dock
        self.clip_box = QtWidgets.QCheckBox("clip_grad_norm_")
        self.clip_box.setToolTip(HELP["clip_grad_norm"])
        self.clip_box.toggled.connect(self._on_clip_toggled)
        self.max_norm_edit = QtWidgets.QLineEdit()
        self.max_norm_edit.editingFinished.connect(self._on_max_norm)
        panel._row(form, self.clip_box, "clip_grad_norm", self.max_norm_edit,
                   "max_norm (> 0) of clip_grad_norm_; Enter applies")
        unscale = WrappedCheck("scaler.unscale_ before clipping")
        self.unscale_box = unscale.box
        self.unscale_box.toggled.connect(lambda on: panel._apply_loop("unscale_before_clip", on))
        panel._row(form, "", "unscale_before_clip", unscale, HELP["unscale_before_clip"])

        self.kind_box = QtWidgets.QComboBox()
        self.kind_box.addItem("none", None)
        for kind in SCHEDULERS:
            self.kind_box.addItem(SCHEDULER_CLASSES[kind], kind)
        self.kind_box.activated.connect(self._on_kind_chosen)
        panel._row(form, "scheduler", "scheduler", self.kind_box, HELP["scheduler"])
        self.argument_label = QtWidgets.QLabel("")
        self.argument_edit = QtWidgets.QLineEdit()
        self.argument_edit.editingFinished.connect(self._on_argument)
        panel._row(form, self.argument_label, "scheduler_argument", self.argument_edit,
                   HELP["scheduler_argument"])
        self.placement_box = QtWidgets.QComboBox()
        for placement in SCHEDULER_PLACEMENTS:
            self.placement_box.addItem(PLACEMENT_TEXT[placement], placement)
        self.placement_box.activated.connect(self._on_placement_chosen)
        panel._row(form, "scheduler.step()", "placement", self.placement_box, HELP["placement"])
        self.widgets = {"clip_grad_norm": [self.clip_box, self.max_norm_edit],
                        "unscale_before_clip": [self.unscale_box], "scheduler": [self.kind_box],
                        "scheduler_argument": [self.argument_edit], "placement": [self.placement_box]}
        self._max_norm = DEFAULT_MAX_NORM          # the value clipping gets when switched on

    def all_widgets(self) -> list[QtWidgets.QWidget]:
        return [w for ws in self.widgets.values() for w in ws]

    # -- showing --------------------------------------------------------------------------------
    def sync(self, opt: OptimizerSpec, loop: LoopSpec) -> None:
        """Show ``loop``'s clipping and scheduler (signals blocked by the caller)."""
        clipping = loop.clip_grad_norm is not None
        if clipping:
            self._max_norm = loop.clip_grad_norm
        self.clip_box.setChecked(clipping)
        self.max_norm_edit.setText(show_argument(float(self._max_norm)))
        self.max_norm_edit.setEnabled(clipping)
        self.unscale_box.setChecked(loop.unscale_before_clip)
        self.unscale_box.setEnabled(clipping and loop.loss_scaling)
        self.unscale_box.setToolTip(HELP["unscale_before_clip"] if loop.loss_scaling else
                                    "only with loss scaling (float16 + GradScaler)")
        scheduler = loop.scheduler
        self.kind_box.setCurrentIndex(self.kind_box.findData(scheduler.kind if scheduler else None))
        if scheduler is None:
            self.argument_label.setText("")
            self.argument_edit.setText("")
        else:
            key = MAIN_ARGUMENT[scheduler.kind]
            self.argument_label.setText(key)
            self.argument_edit.setText(show_argument(scheduler.hyper.get(key)))
        self.argument_edit.setEnabled(scheduler is not None)
        self.form.setRowVisible(self.argument_edit, scheduler is not None)    # no empty row without one
        self.placement_box.setCurrentIndex(self.placement_box.findData(
            scheduler.placement if scheduler else "after_step"))
        self.placement_box.setEnabled(scheduler is not None)

    # -- applying -------------------------------------------------------------------------------
    def _loop(self) -> LoopSpec:
        return self.panel._spec(self.panel.document.scenario)[1]

    def _on_clip_toggled(self, on: bool) -> None:
        if self.panel.document.scenario is None:
            return
        value = None
        if on:
            try:
                value = float(self.max_norm_edit.text())
            except ValueError:
                value = self._max_norm
        if not self.panel._apply_loop("clip_grad_norm", value):
            return
        self.max_norm_edit.setEnabled(on)

    def _on_max_norm(self) -> bool:
        if self.panel.document.scenario is None or not self.clip_box.isChecked():
            return False
        text = self.max_norm_edit.text()
        try:
            value = float(text)
        except ValueError:
            self.panel.show_error("clip_grad_norm", f"max_norm: expected a number, found “{text.strip()}”")
            return False
        if value == self._loop().clip_grad_norm and not self.max_norm_edit.property("invalid"):
            return True

        def change(new, opt, loop):
            loop.clip_grad_norm = value
        return self.panel._apply("clip_grad_norm", change)

    def _on_kind_chosen(self, _index: int) -> None:
        kind = self.kind_box.currentData()
        loop = self._loop()
        if kind == (loop.scheduler.kind if loop.scheduler else None):
            return

        def change(new, opt, loop):
            set_scheduler_kind(loop, kind, float(opt.hyper["lr"]))
        if not self.panel._apply("scheduler", change):
            self.kind_box.blockSignals(True)
            self.kind_box.setCurrentIndex(self.kind_box.findData(loop.scheduler.kind if loop.scheduler else None))
            self.kind_box.blockSignals(False)

    def _on_argument(self) -> bool:
        loop = self._loop()
        if loop.scheduler is None:
            return False
        key = MAIN_ARGUMENT[loop.scheduler.kind]
        try:
            value = parse_argument(key, self.argument_edit.text())
        except ValueError as exc:
            self.panel.show_error("scheduler_argument", str(exc))
            return False
        if value == loop.scheduler.hyper.get(key) and not self.argument_edit.property("invalid"):
            return True

        def change(new, opt, loop):
            loop.scheduler.hyper[key] = value
        return self.panel._apply("scheduler_argument", change)

    def _on_placement_chosen(self, _index: int) -> None:
        placement = self.placement_box.currentData()
        loop = self._loop()
        if loop.scheduler is None or placement == loop.scheduler.placement:
            return

        def change(new, opt, loop):
            loop.scheduler.placement = placement
        self.panel._apply("placement", change)
