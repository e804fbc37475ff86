"""The explorer's application state, free of Qt and torch.

Everything the user can change lives here: which face is shown (a seed or a latent the worker
holds), the sampling temperature, one amount per attribute direction, the attributes kept fixed,
coarse-levels-only editing, favourites, the history of faces and undo/redo. Widgets observe the
state through :class:`Event` callbacks and call its methods; the window turns each change into a
stamped render request for the model worker.

A :class:`Snapshot` is an immutable, hashable copy of everything that decides the picture; it is
also the render specification sent to the worker, the unit of undo/redo and of the history strip.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Optional, Sequence

__all__ = [
    "Event",
    "FaceRef",
    "Snapshot",
    "DirectionInfo",
    "HistoryEntry",
    "ExplorerState",
    "DEFAULT_FAVOURITES",
    "TEMPERATURE_RANGE",
    "DEFAULT_DETAIL_TEMPERATURE",
]

DEFAULT_FAVOURITES: tuple[str, ...] = ("Smiling", "Young", "Male", "Blond_Hair", "Eyeglasses")
TEMPERATURE_RANGE: tuple[float, float] = (0.0, 1.2)
DEFAULT_TEMPERATURE = 0.7
# the temperature of the finest half of the levels (texture), which the Detail slider sets apart:
# 0.85 by default, as measured (docs/sampling.md: against 0.7 everywhere, a Frechet distance 7.7%
# lower in our classifier's features and more variety at the same precision, out of sample). The
# same two numbers as glowcore.model's DEFAULT_TEMPERATURE and DEFAULT_DETAIL_TEMPERATURE, which
# `glow sample` uses (this module imports no torch; a test keeps them equal)
DEFAULT_DETAIL_TEMPERATURE = 0.85
MAX_UNDO = 200
MAX_HISTORY = 60


class Event:
    """A list of callbacks: ``event.connect(fn)``, ``event.emit(*args)``.

    A callback that raises does not stop the others; the exception is re-raised after all ran.
    """

    def __init__(self) -> None:
        self._handlers: list[Callable[..., Any]] = []

    def connect(self, fn: Callable[..., Any]) -> None:
        if fn not in self._handlers:
            self._handlers.append(fn)

    def disconnect(self, fn: Callable[..., Any]) -> None:
        if fn in self._handlers:
            self._handlers.remove(fn)

    def emit(self, *args: Any) -> None:
        error: Optional[BaseException] = None
        for fn in list(self._handlers):
            try:
                fn(*args)
            except Exception as e:  # keep notifying the others
                error = error or e
        if error is not None:
            raise error


@dataclass(frozen=True)
class FaceRef:
    """Which face is the starting point of the edits.

    ``kind`` is ``"seed"`` (noise drawn from ``seed``, scaled by the temperature) or ``"latent"``
    (a latent the worker stores under ``latent_id``: an encoded photo, an inpainting result, ...).
    """

    kind: str
    seed: Optional[int] = None
    latent_id: Optional[int] = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind == "seed" and self.seed is None:
            raise ValueError("a seed face needs a seed")
        if self.kind == "latent" and self.latent_id is None:
            raise ValueError("a latent face needs a latent id")
        if self.kind not in ("seed", "latent"):
            raise ValueError(f"unknown face kind {self.kind!r}")

    @staticmethod
    def from_seed(seed: int) -> "FaceRef":
        return FaceRef("seed", seed=int(seed), label=f"seed {int(seed)}")

    @staticmethod
    def from_latent(latent_id: int, label: str) -> "FaceRef":
        return FaceRef("latent", latent_id=int(latent_id), label=label)

    @property
    def uses_temperature(self) -> bool:
        return self.kind == "seed"


@dataclass(frozen=True)
class Snapshot:
    """Everything that decides the picture. Hashable; also the render spec sent to the worker."""

    face: Optional[FaceRef]
    temperature: float = DEFAULT_TEMPERATURE
    amounts: tuple[tuple[str, float], ...] = ()
    fixed: tuple[str, ...] = ()
    coarse_only: bool = False
    # temperature of the finest half of the levels (None: ``temperature`` on every level)
    detail_temperature: Optional[float] = None

    @property
    def amounts_dict(self) -> dict[str, float]:
        return dict(self.amounts)

    @property
    def effective_temperature(self) -> Optional[float]:
        """The temperature if it affects the picture (seed faces), else None."""
        return self.temperature if self.face is not None and self.face.uses_temperature else None

    @property
    def effective_detail_temperature(self) -> Optional[float]:
        """The detail temperature if it affects the picture (seed faces), else None."""
        return self.detail_temperature if self.face is not None and self.face.uses_temperature else None

    def base_key(self) -> Hashable:
        """The unedited face this snapshot starts from (face and, for seeds, temperatures)."""
        return (self.face, self.effective_temperature, self.effective_detail_temperature)


@dataclass(frozen=True)
class DirectionInfo:
    """One slider: a named direction of the model, its group and the slider's range."""

    name: str
    group: str = "attribute"  # "attribute", "principal" or "custom"
    limit: float = 3.0
    tooltip: str = ""


@dataclass
class HistoryEntry:
    """One face in the history strip: its latest snapshot and a thumbnail (any image object)."""

    id: int
    snapshot: Snapshot
    thumb: Any = None


def _clean_amount(value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"amount must be a finite number, got {value!r}")
    return round(v, 4)


class ExplorerState:
    """The explorer's state with undo/redo and a history of faces. Qt-free; observe its events.

    Events:

    * ``changed(what: frozenset[str])`` after any change that affects the picture or the controls;
      ``what`` names the parts that changed (``face``, ``temperature``, ``detail_temperature``, ``amounts``, ``fixed``,
      ``coarse_only``).
    * ``directions_changed()`` when the model's list of directions changes.
    * ``favourites_changed()``, ``history_changed()``, ``undo_changed()``.

    Changes made during one gesture (a slider drag: pass the same ``gesture`` key) collapse into
    one undo step.
    """

    def __init__(self, favourites: Sequence[str] = DEFAULT_FAVOURITES) -> None:
        self.changed = Event()
        self.directions_changed = Event()
        self.favourites_changed = Event()
        self.history_changed = Event()
        self.undo_changed = Event()

        self.face: Optional[FaceRef] = None
        self.temperature: float = DEFAULT_TEMPERATURE
        self.detail_temperature: float = DEFAULT_DETAIL_TEMPERATURE
        self.amounts: dict[str, float] = {}
        self.fixed: set[str] = set()
        self.coarse_only: bool = False
        self.directions: list[DirectionInfo] = []
        self.favourites: list[str] = list(dict.fromkeys(favourites))
        self.history: list[HistoryEntry] = []
        self.current_history_id: Optional[int] = None

        self._undo: list[Snapshot] = []
        self._redo: list[Snapshot] = []
        self._last_gesture: Optional[Hashable] = None
        self._stamps = itertools.count(1)
        self._history_ids = itertools.count(1)

    # ------------------------------------------------------------------ stamps
    def next_stamp(self) -> int:
        """A new, increasing request stamp."""
        return next(self._stamps)

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> Snapshot:
        amounts = tuple(sorted((k, v) for k, v in self.amounts.items() if v != 0.0))
        fixed = tuple(sorted(self.fixed))
        return Snapshot(self.face, float(self.temperature), amounts, fixed, bool(self.coarse_only), float(self.detail_temperature))

    def _apply(self, snap: Snapshot) -> frozenset[str]:
        what = set()
        if snap.face != self.face:
            what.add("face")
        if snap.temperature != self.temperature:
            what.add("temperature")
        if snap.detail_temperature is not None and snap.detail_temperature != self.detail_temperature:
            what.add("detail_temperature")
        if dict(snap.amounts) != {k: v for k, v in self.amounts.items() if v != 0.0}:
            what.add("amounts")
        if set(snap.fixed) != self.fixed:
            what.add("fixed")
        if snap.coarse_only != self.coarse_only:
            what.add("coarse_only")
        self.face = snap.face
        self.temperature = snap.temperature
        if snap.detail_temperature is not None:
            self.detail_temperature = snap.detail_temperature
        known = {d.name for d in self.directions}
        self.amounts = {k: v for k, v in snap.amounts if not known or k in known}
        self.fixed = set(snap.fixed)
        self.coarse_only = snap.coarse_only
        return frozenset(what)

    # ------------------------------------------------------------------ undo / redo
    def _record(self, gesture: Optional[Hashable]) -> None:
        if gesture is not None and gesture == self._last_gesture:
            return
        self._undo.append(self.snapshot())
        del self._undo[:-MAX_UNDO]
        self._redo.clear()
        self._last_gesture = gesture
        self.undo_changed.emit()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.snapshot())
        snap = self._undo.pop()
        self._last_gesture = None
        self._set_snapshot(snap)
        self.undo_changed.emit()
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.snapshot())
        snap = self._redo.pop()
        self._last_gesture = None
        self._set_snapshot(snap)
        self.undo_changed.emit()
        return True

    def end_gesture(self) -> None:
        """The current gesture is over: the next change starts a new undo step."""
        self._last_gesture = None

    def _set_snapshot(self, snap: Snapshot) -> None:
        what = self._apply(snap)
        if "face" in what:
            self._sync_history_pointer()
        if what:
            self.changed.emit(what)

    # ------------------------------------------------------------------ changes
    def set_amount(self, name: str, value: float, gesture: Optional[Hashable] = None) -> None:
        value = _clean_amount(value)
        if self.amounts.get(name, 0.0) == value:
            return
        self._record(gesture)
        if value == 0.0:
            self.amounts.pop(name, None)
        else:
            self.amounts[name] = value
        self.changed.emit(frozenset({"amounts"}))

    def amount(self, name: str) -> float:
        return self.amounts.get(name, 0.0)

    def reset(self, name: Optional[str] = None) -> None:
        """Set one attribute (or, with no name, every attribute) back to zero."""
        if name is None:
            if not self.amounts:
                return
            self._record(None)
            self.amounts.clear()
        else:
            if name not in self.amounts:
                return
            self._record(None)
            self.amounts.pop(name)
        self.changed.emit(frozenset({"amounts"}))

    def set_temperature(self, value: float, gesture: Optional[Hashable] = None) -> None:
        self._set_sampling("temperature", value, gesture)

    def set_detail_temperature(self, value: float, gesture: Optional[Hashable] = None) -> None:
        """The temperature of the finest half of the levels (texture), same range as the temperature."""
        self._set_sampling("detail_temperature", value, gesture)

    def _set_sampling(self, attr: str, value: float, gesture: Optional[Hashable]) -> None:
        lo, hi = TEMPERATURE_RANGE
        value = round(min(hi, max(lo, float(value))), 4)
        if value == getattr(self, attr):
            return
        self._record(gesture)
        setattr(self, attr, value)
        self.changed.emit(frozenset({attr}))

    def set_fixed(self, name: str, fixed: bool) -> None:
        if (name in self.fixed) == bool(fixed):
            return
        self._record(None)
        (self.fixed.add if fixed else self.fixed.discard)(name)
        self.changed.emit(frozenset({"fixed"}))

    def set_coarse_only(self, on: bool) -> None:
        if self.coarse_only == bool(on):
            return
        self._record(None)
        self.coarse_only = bool(on)
        self.changed.emit(frozenset({"coarse_only"}))

    def set_face(self, face: FaceRef, keep_edits: bool = False) -> None:
        """Make ``face`` current (a new history entry); edits are cleared unless ``keep_edits``."""
        self.update_current_history()
        self._record(None)
        self._last_gesture = None
        what = {"face"}
        self.face = face
        if not keep_edits and self.amounts:
            self.amounts = {}
            what.add("amounts")
        entry = HistoryEntry(next(self._history_ids), self.snapshot())
        self.history.append(entry)
        del self.history[:-MAX_HISTORY]
        self.current_history_id = entry.id
        self.history_changed.emit()
        self.changed.emit(frozenset(what))

    def restore(self, snap: Snapshot) -> None:
        """Go back to a snapshot (a history entry), as one undoable step."""
        if snap == self.snapshot():
            return
        self._record(None)
        self._last_gesture = None
        self._set_snapshot(snap)

    def reset_session(self) -> None:
        """Forget the face, edits, history and undo (a new model was opened); keep the temperature."""
        self.face = None
        self.amounts = {}
        self.fixed = set()
        self.history = []
        self.current_history_id = None
        self._undo.clear()
        self._redo.clear()
        self._last_gesture = None
        self.history_changed.emit()
        self.undo_changed.emit()
        self.changed.emit(frozenset({"face", "amounts", "fixed"}))

    # ------------------------------------------------------------------ directions and favourites
    def set_directions(self, directions: Iterable[DirectionInfo]) -> None:
        self.directions = list(directions)
        known = {d.name for d in self.directions}
        dropped = [k for k in self.amounts if k not in known]
        for k in dropped:
            self.amounts.pop(k)
        self.fixed &= known
        self.directions_changed.emit()
        if dropped:
            self.changed.emit(frozenset({"amounts"}))

    def add_directions(self, directions: Iterable[DirectionInfo]) -> None:
        new = {d.name: d for d in directions}
        self.directions = [d for d in self.directions if d.name not in new] + list(new.values())
        self.directions_changed.emit()

    def direction(self, name: str) -> Optional[DirectionInfo]:
        for d in self.directions:
            if d.name == name:
                return d
        return None

    def is_favourite(self, name: str) -> bool:
        return name in self.favourites

    def set_favourite(self, name: str, on: bool) -> None:
        if (name in self.favourites) == bool(on):
            return
        if on:
            self.favourites.append(name)
        else:
            self.favourites.remove(name)
        self.favourites_changed.emit()

    # ------------------------------------------------------------------ history
    def history_entry(self, entry_id: int) -> Optional[HistoryEntry]:
        for e in self.history:
            if e.id == entry_id:
                return e
        return None

    def set_history_thumb(self, entry_id: int, thumb: Any) -> None:
        entry = self.history_entry(entry_id)
        if entry is not None:
            entry.thumb = thumb
            self.history_changed.emit()

    def _sync_history_pointer(self) -> None:
        for e in reversed(self.history):
            if e.snapshot.face == self.face:
                self.current_history_id = e.id
                break
        self.history_changed.emit()

    def go_to_history(self, entry_id: int) -> None:
        entry = self.history_entry(entry_id)
        if entry is None:
            return
        self.update_current_history()
        self.current_history_id = entry.id
        self.restore(entry.snapshot)
        self.history_changed.emit()

    def update_current_history(self) -> None:
        """Store the current edits in the current history entry."""
        entry = self.history_entry(self.current_history_id) if self.current_history_id else None
        if entry is not None and entry.snapshot.face == self.face:
            entry.snapshot = self.snapshot()
