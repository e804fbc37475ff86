"""Plots (pyqtgraph): projections on directions, bits/dim, render time, and a training-run viewer."""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Optional

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QImage, QPixmap  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..icons import icon  # noqa: E402
from ..runs import RunData, read_run  # noqa: E402
from ..theme import COLORS  # noqa: E402

__all__ = ["PlotsPanel", "RunViewer"]

pg.setConfigOptions(background=COLORS["base"], foreground=COLORS["dim"], antialias=True)

SERIES_COLORS = ["#5b9dff", "#f2c14e", "#5cc18a", "#e0675f"]


def _card(title: str, body: QWidget, extra: Optional[QWidget] = None) -> QFrame:
    card = QFrame()
    card.setObjectName("PlotCard")
    card.setStyleSheet("QFrame#PlotCard { background: %s; border: 1px solid %s; border-radius: 8px; }" % (COLORS["base"], COLORS["border"]))
    lay = QVBoxLayout(card)
    lay.setContentsMargins(8, 6, 8, 6)
    lay.setSpacing(2)
    head = QHBoxLayout()
    label = QLabel(title)
    label.setProperty("role", "section")
    label.setStyleSheet("padding: 0;")
    head.addWidget(label)
    head.addStretch(1)
    if extra is not None:
        head.addSpacing(8)
        head.addWidget(extra)
    lay.addLayout(head)
    lay.addWidget(body, 1)
    return card


def _plot() -> pg.PlotWidget:
    w = pg.PlotWidget()
    w.setMenuEnabled(False)
    w.setMouseEnabled(x=False, y=False)
    w.hideButtons()
    w.showGrid(x=True, y=True, alpha=0.15)
    w.setMinimumHeight(120)
    return w


class RunViewer(QWidget):
    """Loss curves and the newest sample grid of a training run directory; refreshes itself."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.run_dir: Optional[Path] = None
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.plot = _plot()
        self.plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.plot.setLabel("bottom", "step")
        lay.addWidget(self.plot, 3)
        self.sample = QLabel("No run open")
        self.sample.setWordWrap(True)
        self.sample.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample.setMinimumWidth(96)
        self.sample.setStyleSheet("color: #8b93a1;")
        self.sample.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        lay.addWidget(self.sample, 2)
        self.status = ""
        self._sample_path: Optional[Path] = None
        self._timer = QTimer(self)
        self._timer.setInterval(5000)
        self._timer.timeout.connect(self.refresh)

    def set_run(self, path: Optional[str]) -> None:
        self.run_dir = Path(path) if path else None
        self._sample_path = None
        if self.run_dir is not None:
            self._timer.start()
        else:
            self._timer.stop()
        self.refresh()

    def refresh(self) -> RunData | None:
        if self.run_dir is None:
            return None
        data = read_run(self.run_dir)
        self.plot.clear()
        legend = self.plot.plotItem.legend
        if legend is not None:
            legend.clear()
        self.plot.setLabel("bottom", data.x_key)
        values = [y for _, ys in data.series.values() for y in ys]
        log = bool(values) and min(values) > 0 and max(values) / min(values) > 20
        self.plot.setLogMode(y=log)
        for i, (name, (xs, ys)) in enumerate(data.series.items()):
            self.plot.plot(xs, ys, pen=pg.mkPen(SERIES_COLORS[i % len(SERIES_COLORS)], width=2), name=name)
        self.status = data.problem or f"{data.records} records"
        if data.sample is not None and data.sample != self._sample_path:
            img = QImage(str(data.sample))
            if not img.isNull():
                self._sample_path = data.sample
                self._sample_img = img
                self._show_sample()
        elif data.sample is None:
            self.sample.setText("no samples yet")
        self.sample.setToolTip(str(data.sample) if data.sample else data.problem)
        if data.problem and not data.series:
            self.plot.setTitle(f"<span style='color:{COLORS['dim']};font-size:8pt'>{'no metrics yet' if 'metrics' in data.problem or 'records' in data.problem else data.problem}</span>")
        else:
            self.plot.setTitle(None)
        return data

    def _show_sample(self) -> None:
        img = getattr(self, "_sample_img", None)
        if img is None:
            return
        pix = QPixmap.fromImage(img).scaled(
            max(64, self.sample.width() - 4), max(64, self.sample.height() - 4),
            Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation,
        )
        self.sample.setPixmap(pix)
        self.sample.setToolTip(str(self._sample_path))

    def resizeEvent(self, e) -> None:  # noqa: N802
        super().resizeEvent(e)
        self._show_sample()


class PlotsPanel(QWidget):
    """Four small plots side by side."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 8)
        lay.setSpacing(8)

        # projections on directions (strongest first)
        self.proj = _plot()
        self.proj.setMouseEnabled(x=False, y=False)
        self.proj.showGrid(x=True, y=False, alpha=0.15)
        self.proj_bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brushes=[])
        self.proj.addItem(self.proj_bars)
        # names are drawn next to the zero line, on the side opposite to each bar
        self.proj.hideAxis("left")
        self._proj_font = self.font()
        self._proj_font.setPointSizeF(max(7.0, self._proj_font.pointSizeF() * 0.85))
        self._proj_labels: list[pg.TextItem] = []
        self.proj.addLine(x=0, pen=pg.mkPen(COLORS["dim"], width=1))
        self.proj.setToolTip("How far the current face lies along each direction (the strongest ones)")
        self.projections: dict[str, float] = {}

        # bits/dim
        self.bpd_plot = _plot()
        self.bpd_curve = self.bpd_plot.plot([], [], pen=pg.mkPen(SERIES_COLORS[1], width=2), symbol="o", symbolSize=4, symbolBrush=SERIES_COLORS[1])
        self.bpd_plot.setLabel("bottom", "face / edit")
        self.bpd_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.bpd_value = QLabel("–")
        self.bpd_value.setProperty("role", "value")
        self.bpd_value.setStyleSheet("font-size: 15px; font-weight: 600; color: %s;" % SERIES_COLORS[1])
        self.bpd_value.setToolTip("Bits per dimension the model needs for the current face: lower is more typical")
        self.bpds: deque[float] = deque(maxlen=60)

        # render time
        self.rt_plot = _plot()
        self.rt_curve = self.rt_plot.plot([], [], pen=pg.mkPen(SERIES_COLORS[0], width=1.5))
        self.rt_plot.addLine(y=33.3, pen=pg.mkPen(SERIES_COLORS[3], width=1, style=Qt.PenStyle.DashLine))
        self.rt_plot.setLabel("left", "ms")
        self.rt_plot.setLabel("bottom", "frame")
        self.rt_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.rt_value = QLabel("–")
        self.rt_value.setProperty("role", "value")
        self.rt_value.setToolTip("Time the worker took to render each frame; the dashed line is 33 ms (30 frames/s)")
        self.render_times: deque[float] = deque(maxlen=300)
        self._rt_count = 0
        self._rt_dirty = False

        # training run
        self.run = RunViewer()
        open_run = QPushButton("Open run…")
        open_run.setIcon(icon("folder"))
        open_run.setToolTip("Show the loss curves and newest samples of a training run directory")
        open_run.clicked.connect(self._choose_run)
        self.run_title = QLabel("")
        self.run_title.setStyleSheet("color: #8b93a1;")
        run_head = QWidget()
        rh = QHBoxLayout(run_head)
        rh.setContentsMargins(0, 0, 0, 0)
        rh.addWidget(self.run_title)
        rh.addWidget(open_run)

        lay.addWidget(_card("PROJECTIONS", self.proj), 3)
        lay.addWidget(_card("BITS / DIM", self.bpd_plot, self.bpd_value), 2)
        lay.addWidget(_card("RENDER TIME", self.rt_plot, self.rt_value), 2)
        lay.addWidget(_card("TRAINING RUN", self.run, run_head), 4)

        self._rt_timer = QTimer(self)
        self._rt_timer.setInterval(200)
        self._rt_timer.timeout.connect(self._redraw_times)
        self._rt_timer.start()

    # ------------------------------------------------------------------ data in
    def set_projections(self, proj: dict[str, float], top: int = 8) -> None:
        self.projections = dict(proj)
        items = sorted(proj.items(), key=lambda kv: abs(kv[1]), reverse=True)[:top]
        items = sorted(items, key=lambda kv: kv[1])
        ys = np.arange(len(items), dtype=float)
        ws = np.array([v for _, v in items], dtype=float)
        brushes = [pg.mkBrush(SERIES_COLORS[0] if v >= 0 else SERIES_COLORS[3]) for v in ws]
        self.proj_bars.setOpts(x0=np.zeros_like(ws), y=ys, height=0.7, width=ws, brushes=brushes, pens=[pg.mkPen(None)] * len(ws))
        for t in self._proj_labels:
            self.proj.removeItem(t)
        self._proj_labels = []
        m = max(1e-3, float(np.abs(ws).max())) * 1.05 if len(ws) else 1.0
        for i, (k, v) in enumerate(items):
            t = pg.TextItem(k.replace("_", " "), color=COLORS["text"], anchor=(1.0, 0.5) if v >= 0 else (0.0, 0.5))
            t.setFont(self._proj_font)
            t.setPos(-0.02 * m if v >= 0 else 0.02 * m, float(i))
            self.proj.addItem(t)
            self._proj_labels.append(t)
        if len(ws):
            self.proj.setXRange(-m, m, padding=0)
            self.proj.setYRange(-0.6, len(items) - 0.4, padding=0)

    def add_bits_per_dim(self, bpd: Optional[float]) -> None:
        if bpd is None:
            self.bpd_value.setText("–")
            return
        self.bpds.append(float(bpd))
        self.bpd_curve.setData(np.arange(len(self.bpds)), np.array(self.bpds))
        self.bpd_plot.setXRange(-0.5, max(9.5, len(self.bpds) - 0.5), padding=0)
        lo, hi = min(self.bpds), max(self.bpds)
        pad = max(0.05, (hi - lo) * 0.15)
        self.bpd_plot.setYRange(lo - pad, hi + pad, padding=0)
        self.bpd_value.setText(f"{bpd:.3f}")

    #: While pictures stream in (a drag), the render-time plot is redrawn at most this often: a
    #: redraw holds the GUI thread ~10 ms, which a picture arriving meanwhile waits for (issue 18);
    #: once they pause (``RT_QUIET_S``), at once.
    RT_DRAG_EVERY_S = 1.0
    RT_QUIET_S = 0.15

    def add_render_time(self, ms: float) -> None:
        self.render_times.append(float(ms))
        self._rt_count += 1
        self._rt_dirty = True
        self._rt_last = time.monotonic()

    def _redraw_times(self) -> None:
        if not self._rt_dirty or not self.isVisible():
            return
        now = time.monotonic()
        if now - getattr(self, "_rt_last", 0.0) < self.RT_QUIET_S and now - getattr(self, "_rt_drawn", 0.0) < self.RT_DRAG_EVERY_S:
            return  # a drag: later
        self._rt_dirty = False
        self._rt_drawn = now
        ys = np.array(self.render_times)
        xs = np.arange(self._rt_count - len(ys), self._rt_count)
        self.rt_curve.setData(xs, ys)
        # the frames kept, in a window of at least 30 (one frame alone would give a degenerate axis)
        self.rt_plot.setXRange(max(0, self._rt_count - max(len(ys), 30)), max(self._rt_count, 30), padding=0.02)
        self.rt_value.setText(f"median {np.median(ys):.0f} ms")

    def _choose_run(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a training run directory")
        if path:
            self.open_run(path)

    def open_run(self, path: str) -> None:
        self.run.set_run(path)
        self.run_title.setText(Path(path).name)
        self.run_title.setToolTip(path)
