"""A calm dark theme: Fusion style, a dark palette and a small style sheet."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from .icons import icons_dir

__all__ = ["apply_theme", "COLORS"]

COLORS = {
    "window": "#1d2026",
    "panel": "#23272e",
    "base": "#171a1f",
    "alt": "#20242b",
    "border": "#323843",
    "text": "#d6dae0",
    "dim": "#8b93a1",
    "accent": "#5b9dff",
    "accent2": "#f2c14e",
    "good": "#5cc18a",
    "bad": "#e0675f",
    "canvas": "#121419",
}

_STYLE = """
QMainWindow, QDialog { background: %(window)s; }
QToolTip { background: %(panel)s; color: %(text)s; border: 1px solid %(border)s; padding: 4px; }
QDockWidget { color: %(dim)s; font-weight: 600; }
QDockWidget::title { background: %(window)s; padding: 6px 8px; text-align: left; }
QToolBar { background: %(window)s; border: none; border-bottom: 1px solid %(border)s; spacing: 4px; padding: 4px 6px; }
QToolBar QLabel { color: %(dim)s; padding: 0 2px 0 8px; }
QToolButton { border: 1px solid transparent; border-radius: 6px; padding: 4px; color: %(text)s; }
QToolButton:hover { background: %(alt)s; border-color: %(border)s; }
QToolButton:checked { background: #2b3a55; border-color: %(accent)s; }
QPushButton { background: %(panel)s; border: 1px solid %(border)s; border-radius: 6px; padding: 5px 12px; color: %(text)s; }
QPushButton:hover { border-color: %(accent)s; }
QPushButton:pressed { background: %(base)s; }
QPushButton:disabled { color: #5d6470; border-color: #2a2f37; }
QPushButton[primary="true"] { background: #2f5fb3; border-color: %(accent)s; color: white; font-weight: 600; }
QPushButton[primary="true"]:hover { background: #3a6cc4; }
QPushButton[primary="true"]:disabled { background: #252c38; border-color: #2d3542; color: #5d6470; }
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox { background: %(base)s; border: 1px solid %(border)s; border-radius: 5px; padding: 3px 6px; color: %(text)s; selection-background-color: %(accent)s; }
QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus, QComboBox:focus { border-color: %(accent)s; }
QSpinBox::up-button, QSpinBox::down-button, QDoubleSpinBox::up-button, QDoubleSpinBox::down-button { width: 0; border: none; }
QTabWidget::pane { border: 1px solid %(border)s; border-radius: 6px; top: -1px; background: %(panel)s; }
QTabBar::tab { background: transparent; color: %(dim)s; padding: 6px 12px; border: none; border-bottom: 2px solid transparent; }
QTabBar::tab:selected { color: %(text)s; border-bottom: 2px solid %(accent)s; }
QTabBar::tab:hover { color: %(text)s; }
QGroupBox { border: 1px solid %(border)s; border-radius: 6px; margin-top: 14px; padding: 8px 6px 6px 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: %(dim)s; }
QScrollArea { border: none; background: transparent; }
QScrollBar:vertical { background: transparent; width: 10px; margin: 2px; }
QScrollBar::handle:vertical { background: #3a414d; border-radius: 4px; min-height: 24px; }
QScrollBar:horizontal { background: transparent; height: 10px; margin: 2px; }
QScrollBar::handle:horizontal { background: #3a414d; border-radius: 4px; min-width: 24px; }
QScrollBar::add-line, QScrollBar::sub-line { width: 0; height: 0; }
QSlider::groove:horizontal { height: 4px; background: #343a45; border-radius: 2px; }
QSlider::sub-page:horizontal { background: #3f6fbf; border-radius: 2px; }
QSlider::handle:horizontal { width: 14px; height: 14px; margin: -6px 0; border-radius: 7px; background: %(text)s; border: 2px solid %(accent)s; }
QSlider::handle:horizontal:hover { background: white; }
QProgressBar { background: %(base)s; border: 1px solid %(border)s; border-radius: 5px; height: 12px; text-align: center; color: %(text)s; }
QProgressBar::chunk { background: %(accent)s; border-radius: 4px; }
QListWidget { background: %(base)s; border: 1px solid %(border)s; border-radius: 6px; }
QListWidget::item { border-radius: 5px; padding: 2px; }
QListWidget::item:selected { background: #2b3a55; border: 1px solid %(accent)s; }
QStatusBar { background: %(window)s; color: %(dim)s; border-top: 1px solid %(border)s; }
QStatusBar QLabel { color: %(dim)s; padding: 0 6px; }
QMenuBar { background: %(window)s; color: %(text)s; }
QMenuBar::item:selected { background: %(alt)s; }
QMenu { background: %(panel)s; color: %(text)s; border: 1px solid %(border)s; }
QMenu::item:selected { background: #2b3a55; }
QLabel[role="section"] { color: %(dim)s; font-weight: 600; letter-spacing: 0.5px; padding: 8px 2px 2px 2px; }
QLabel[role="value"] { color: %(text)s; font-family: monospace; }
QFrame#MessageBar[kind="error"] { background: #3a2224; border: 1px solid #7a3a3a; border-radius: 6px; }
QFrame#MessageBar[kind="info"] { background: #1f2c40; border: 1px solid #35507a; border-radius: 6px; }
QFrame#AttributeRow:hover { background: %(alt)s; border-radius: 5px; }
QToolButton#FlatToggle, QToolButton#FlatToggle:checked { background: transparent; border-color: transparent; padding: 2px; }
QToolButton#FlatToggle:hover { background: %(alt)s; }
QCheckBox { spacing: 6px; }
QCheckBox::indicator { width: 14px; height: 14px; border: 1px solid #4a5260; border-radius: 4px; background: %(base)s; }
QCheckBox::indicator:hover { border-color: %(accent)s; }
QCheckBox::indicator:checked { background: %(accent)s; border-color: %(accent)s; image: url(%(check)s); }
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style with the explorer's dark palette and style sheet."""
    app.setStyle("Fusion")
    c = {k: QColor(v) for k, v in COLORS.items()}
    pal = QPalette()
    pal.setColor(QPalette.ColorRole.Window, c["window"])
    pal.setColor(QPalette.ColorRole.WindowText, c["text"])
    pal.setColor(QPalette.ColorRole.Base, c["base"])
    pal.setColor(QPalette.ColorRole.AlternateBase, c["alt"])
    pal.setColor(QPalette.ColorRole.ToolTipBase, c["panel"])
    pal.setColor(QPalette.ColorRole.ToolTipText, c["text"])
    pal.setColor(QPalette.ColorRole.Text, c["text"])
    pal.setColor(QPalette.ColorRole.Button, c["panel"])
    pal.setColor(QPalette.ColorRole.ButtonText, c["text"])
    pal.setColor(QPalette.ColorRole.BrightText, QColor("white"))
    pal.setColor(QPalette.ColorRole.Highlight, c["accent"])
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("white"))
    pal.setColor(QPalette.ColorRole.PlaceholderText, c["dim"])
    pal.setColor(QPalette.ColorRole.Link, c["accent"])
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5d6470"))
    app.setPalette(pal)
    check = (icons_dir() / "check.svg").as_posix()
    app.setStyleSheet(_STYLE % dict(COLORS, check=check))
