"""The attribute panel: one slider per direction, search, favourites, numeric entry, reset, lock."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..icons import icon
from ..state import DirectionInfo, ExplorerState
from .common import CenteredSlider

__all__ = ["AttributePanel", "AttributeRow"]

SCALE = 100  # slider ticks per unit

GROUP_TITLES = {"favourite": "FAVOURITES", "attribute": "ATTRIBUTES", "principal": "PRINCIPAL DIRECTIONS", "custom": "YOUR DIRECTIONS"}


def pretty(name: str) -> str:
    return name.replace("_", " ")


class AttributeRow(QFrame):
    """[star] name [slider] [value] [lock] [reset] for one direction."""

    def __init__(self, state: ExplorerState, info: DirectionInfo, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("AttributeRow")
        self.state = state
        self.info = info
        self.name = info.name
        self._gesture: Optional[object] = None
        self._shown: dict[str, bool] = {}
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 1, 2, 1)
        lay.setSpacing(4)

        self.star = QToolButton()
        self.star.setObjectName("FlatToggle")
        self.star.setCheckable(True)
        self.star.setAutoRaise(True)
        self.star.setIconSize(QSize(14, 14))
        self.star.setToolTip("Pin to favourites")
        self.star.toggled.connect(self._on_star)

        self.label = QLabel(pretty(info.name))
        self.label.setFixedWidth(112)
        tip = f"{pretty(info.name)}: drag to add or remove this attribute"
        if info.tooltip:
            tip += "\n" + info.tooltip
        self.label.setToolTip(tip)

        lim = int(round(info.limit * SCALE))
        self.slider = CenteredSlider()
        self.slider.setRange(-lim, lim)
        self.slider.setSingleStep(5)
        self.slider.setPageStep(25)
        self.slider.setToolTip(tip)
        self.slider.setMinimumWidth(90)
        self.slider.sliderPressed.connect(self._on_pressed)
        self.slider.sliderReleased.connect(self._on_released)
        self.slider.valueChanged.connect(self._on_slider)

        self.spin = QDoubleSpinBox()
        self.spin.setRange(-info.limit, info.limit)
        self.spin.setDecimals(2)
        self.spin.setSingleStep(0.1)
        self.spin.setKeyboardTracking(False)
        self.spin.setFixedWidth(54)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.spin.setToolTip("Type an exact amount")
        self.spin.valueChanged.connect(self._on_spin)

        self.lock = QToolButton()
        self.lock.setObjectName("FlatToggle")
        self.lock.setCheckable(True)
        self.lock.setAutoRaise(True)
        self.lock.setIconSize(QSize(14, 14))
        self.lock.setToolTip("Keep this attribute fixed while editing others (orthogonalized editing)")
        self.lock.toggled.connect(self._on_lock)

        self.reset = QToolButton()
        self.reset.setAutoRaise(True)
        self.reset.setIcon(icon("reset"))
        self.reset.setIconSize(QSize(13, 13))
        self.reset.setToolTip("Reset to 0")
        self.reset.clicked.connect(lambda: self.state.reset(self.name))

        for w in (self.star, self.label, self.slider, self.spin, self.lock, self.reset):
            lay.addWidget(w)
        lay.setStretch(2, 1)
        self.sync()

    # -- state -> widgets
    def sync(self) -> None:
        """Show the state's value, favourite and lock (cheap when nothing changed: it runs for
        every row on every slider move)."""
        v = self.state.amount(self.name)
        ticks = int(round(v * SCALE))
        if self.slider.value() != ticks and not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(ticks)
            self.slider.blockSignals(False)
        if abs(self.spin.value() - v) > 1e-9:
            self.spin.blockSignals(True)
            self.spin.setValue(v)
            self.spin.blockSignals(False)
        fav = self.state.is_favourite(self.name)
        if self._shown.get("fav") != fav:
            self._shown["fav"] = fav
            self.star.blockSignals(True)
            self.star.setChecked(fav)
            self.star.blockSignals(False)
            self.star.setIcon(icon("star-filled" if fav else "star"))
        locked = self.name in self.state.fixed
        if self._shown.get("locked") != locked:
            self._shown["locked"] = locked
            self.lock.blockSignals(True)
            self.lock.setChecked(locked)
            self.lock.blockSignals(False)
            self.lock.setIcon(icon("lock" if locked else "unlock"))
        edited = v != 0
        if self._shown.get("edited") != edited:
            self._shown["edited"] = edited
            f = self.label.font()
            f.setBold(edited)
            self.label.setFont(f)

    # -- widgets -> state
    def _on_pressed(self) -> None:
        self._gesture = object()

    def _on_released(self) -> None:
        self._gesture = None
        self.state.end_gesture()

    def _on_slider(self, value: int) -> None:
        gesture = self._gesture if self._gesture is not None else ("slider", self.name)
        self.state.set_amount(self.name, value / SCALE, gesture=gesture)

    def _on_spin(self, value: float) -> None:
        self.state.set_amount(self.name, value, gesture=("spin", self.name))

    def _on_star(self, on: bool) -> None:
        self.state.set_favourite(self.name, on)

    def _on_lock(self, on: bool) -> None:
        self.state.set_fixed(self.name, on)


class AttributePanel(QWidget):
    """All the direction sliders, grouped (favourites, attributes, principal, yours) and searchable."""

    slider_released = Signal(str)

    def __init__(self, state: ExplorerState, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.state = state
        self.rows: dict[str, AttributeRow] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 8)
        lay.setSpacing(6)

        top = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search attributes…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter the sliders by name (Ctrl+F)")
        self.search.textChanged.connect(self._filter)
        self.reset_all = QPushButton("Reset all")
        self.reset_all.setIcon(icon("reset"))
        self.reset_all.setToolTip("Set every attribute back to 0 (Ctrl+R)")
        self.reset_all.clicked.connect(lambda: self.state.reset())
        top.addWidget(self.search, 1)
        top.addWidget(self.reset_all)
        lay.addLayout(top)

        opts = QHBoxLayout()
        self.coarse = QCheckBox("Coarse levels only")
        self.coarse.setToolTip(
            "Edit only the coarse latent levels: changes shape and large features,\nkeeps fine details (skin texture, hair strands) as they are"
        )
        self.coarse.toggled.connect(self.state.set_coarse_only)
        self.summary = QLabel("")
        self.summary.setProperty("role", "section")
        opts.addWidget(self.coarse)
        opts.addStretch(1)
        opts.addWidget(self.summary)
        lay.addLayout(opts)

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(0, 0, 4, 0)
        self.body_layout.setSpacing(0)
        self.scroll.setWidget(self.body)
        lay.addWidget(self.scroll, 1)

        self.empty = QLabel("Open a model to see its attribute sliders.")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: #8b93a1; padding: 24px;")
        self.body_layout.addWidget(self.empty)
        self.body_layout.addStretch(1)

        state.directions_changed.connect(self.rebuild)
        state.favourites_changed.connect(self.rebuild)
        state.changed.connect(self._on_changed)

    def rebuild(self) -> None:
        """Lay out the rows again (directions or favourites changed)."""
        while self.body_layout.count():
            item = self.body_layout.takeAt(0)
            w = item.widget()
            if w is not None and w is not self.empty:
                w.deleteLater()
        self.rows.clear()
        self._headers: list[tuple[QLabel, list[str]]] = []
        dirs = self.state.directions
        self.empty.setVisible(not dirs)
        self.body_layout.addWidget(self.empty)
        if dirs:
            names = {d.name: d for d in dirs}
            groups: dict[str, list[DirectionInfo]] = {"favourite": [], "attribute": [], "principal": [], "custom": []}
            for fav in self.state.favourites:
                if fav in names:
                    groups["favourite"].append(names[fav])
            for d in dirs:
                if d.name not in self.state.favourites:
                    groups.setdefault(d.group, []).append(d)
            groups["attribute"].sort(key=lambda d: d.name.lower())
            groups["principal"].sort(key=lambda d: (len(d.name), d.name))
            for g, items in groups.items():
                if not items:
                    continue
                header = QLabel(GROUP_TITLES.get(g, g.upper()))
                header.setProperty("role", "section")
                self.body_layout.addWidget(header)
                for d in items:
                    row = AttributeRow(self.state, d)
                    row.slider.sliderReleased.connect(lambda n=d.name: self.slider_released.emit(n))
                    self.rows[d.name] = row
                    self.body_layout.addWidget(row)
                self._headers.append((header, [d.name for d in items]))
        self.body_layout.addStretch(1)
        self._filter(self.search.text())
        self._update_summary()

    def _filter(self, text: str) -> None:
        t = text.strip().lower().replace(" ", "_")
        for name, row in self.rows.items():
            row.setVisible(not t or t in name.lower())
        for header, names in getattr(self, "_headers", []):
            header.setVisible(any(not t or t in n.lower() for n in names))

    def _on_changed(self, what: frozenset) -> None:
        if what & {"amounts", "fixed", "face"}:
            for row in self.rows.values():
                row.sync()
        if "coarse_only" in what or "face" in what:
            self.coarse.blockSignals(True)
            self.coarse.setChecked(self.state.coarse_only)
            self.coarse.blockSignals(False)
        self._update_summary()

    def _update_summary(self) -> None:
        n = sum(1 for v in self.state.amounts.values() if v)
        self.summary.setText(f"{n} edited" if n else f"{len(self.state.directions)} sliders")

    def row(self, name: str) -> AttributeRow:
        return self.rows[name]
