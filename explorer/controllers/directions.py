"""The Directions tab: tag faces, fit a new slider from them, principal directions, save the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from ..protocol import Directions, Done, FitDirection, Principal, SaveModel

__all__ = ["DirectionsController"]


class DirectionsController(QObject):
    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.panel = win.directions
        p = self.panel
        p.tag_requested.connect(self.tag_current)
        p.create_requested.connect(self.create_direction)
        p.principal_requested.connect(self.compute_principal)
        p.save_model_requested.connect(self.save_model_as)

    def tag_current(self, positive: bool) -> None:
        win = self.win
        if win.model_info is None or win.state.face is None:
            return
        win.materialize(win.state.snapshot(), lambda r: self.panel.add_tag(positive, r.latent_id, r.image))

    def create_direction(self, name: str, positives: list, negatives: list) -> None:
        def done(r: Directions) -> None:
            self.win.state.set_directions(r.directions)
            self.win.state.set_favourite(name, True)
            self.panel.clear_tags()
            self.win.show_info(f"Added the slider “{name}”.")

        self.win.jobs.run(FitDirection(name, tuple(positives), tuple(negatives)), done)

    def compute_principal(self, k: int, samples: int) -> None:
        def done(r: Directions) -> None:
            self.win.state.set_directions(r.directions)
            self.win.show_info(f"Added {k} principal directions (pc1…pc{k}).")

        self.win.jobs.run(Principal(k, samples, self.win.state.temperature, 0), done)

    def save_model_as(self) -> None:
        info = self.win.model_info
        if info is None:
            return
        path, _ = QFileDialog.getSaveFileName(self.win, "Save the model with its directions", f"{Path(info.name).name}-edited.safetensors", "Glow model (*.safetensors)")
        if path:
            if not path.endswith(".safetensors"):
                path += ".safetensors"
            self.save_model_to(path)

    def save_model_to(self, path: str) -> int:
        def done(r: Done) -> None:
            self.win.show_info(r.message)

        return self.win.jobs.run(SaveModel(path), done)

    def clear(self) -> None:
        self.panel.clear_tags()
