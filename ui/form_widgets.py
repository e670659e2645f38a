"""Small form widgets the Controls panels share: number fields wide enough for their value, an
error line, a check box whose text wraps instead of being cut, a combo box that shortens its text
to a shorter form rather than cutting it mid-letter."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

ERROR_COLOUR = "#dc2626"


def field_width(widget: QtWidgets.QWidget, sample: str = "0.000125") -> int:
    """A number field wide enough to show ``sample`` whole (frame and padding included)."""
    return widget.fontMetrics().horizontalAdvance(sample) + 18


class ErrorLabel(QtWidgets.QLabel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet(f"color: {ERROR_COLOUR}; font-size: 9pt;")
        self.hide()


class WrappedCheck(QtWidgets.QWidget):
    """A check box whose text wraps in a narrow dock instead of being cut: ``box`` (the QCheckBox the
    panel reads and connects, without text of its own) and ``label`` (word-wrapped) beside it; a
    click on the label toggles the box, and the label greys out with it."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        h = QtWidgets.QHBoxLayout(self)
        h.setContentsMargins(0, 0, 0, 0)
        h.setSpacing(4)
        self.box = QtWidgets.QCheckBox()
        self.box.setAccessibleName(text)
        self.label = QtWidgets.QLabel(text)
        self.label.setWordWrap(True)
        self.label.setBuddy(self.box)
        self.label.installEventFilter(self)
        self.box.installEventFilter(self)
        h.addWidget(self.box, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        h.addWidget(self.label, 1)

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if obj is self.label and kind == QtCore.QEvent.Type.MouseButtonRelease and self.box.isEnabled() \
                and event.button() == QtCore.Qt.MouseButton.LeftButton:
            self.box.click()
            return True
        if obj is self.box and kind == QtCore.QEvent.Type.EnabledChange:
            self.label.setEnabled(self.box.isEnabled())
        return False


class ElidingComboBox(QtWidgets.QComboBox):
    """A combo box that draws its current item whole when it fits, else the first of the item's
    shorter forms (its ``SHORT_ROLE`` data, a list: ``["SGD(lr=0.1)", "Main run"]`` for "Main run:
    SGD(lr=0.1)") that fits, and only past those ends the last with "…" (a plain combo box cuts
    its text mid-letter). The list shows every item whole, and so does the tooltip."""

    SHORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1

    def _option(self) -> QtWidgets.QStyleOptionComboBox:
        opt = QtWidgets.QStyleOptionComboBox()
        self.initStyleOption(opt)
        return opt

    def _icon_room(self, opt) -> int:
        return opt.iconSize.width() + 4 if not opt.currentIcon.isNull() else 0

    def forms(self) -> list[str]:
        """The current item's text, then its shorter forms."""
        return [self.currentText(), *(self.currentData(self.SHORT_ROLE) or [])]

    def shown_text(self) -> str:
        """The text the closed box draws at its present width."""
        opt = self._option()
        field = self.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_ComboBox, opt,
                                            QtWidgets.QStyle.SubControl.SC_ComboBoxEditField, self)
        room = max(field.width() - self._icon_room(opt), 0)
        fm = self.fontMetrics()
        forms = self.forms()
        for text in forms:
            if fm.horizontalAdvance(text) <= room:
                return text
        return fm.elidedText(forms[-1], QtCore.Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, _event) -> None:
        painter = QtWidgets.QStylePainter(self)
        opt = self._option()
        painter.drawComplexControl(QtWidgets.QStyle.ComplexControl.CC_ComboBox, opt)
        opt.currentText = self.shown_text()
        painter.drawControl(QtWidgets.QStyle.ControlElement.CE_ComboBoxLabel, opt)

    def width_for_text(self, text: str | None = None) -> int:
        """The width that shows ``text`` (default: the current item's shortest form) and the icon whole."""
        if text is None:
            text = self.forms()[-1]
        opt = self._option()
        size = QtCore.QSize(self.fontMetrics().horizontalAdvance(text) + self._icon_room(opt) + 4,
                            self.fontMetrics().height())
        return self.style().sizeFromContents(QtWidgets.QStyle.ContentsType.CT_ComboBox, opt, size, self).width()
