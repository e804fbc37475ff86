"""The Qt-free state model: edits, undo/redo with gestures, history, directions, favourites."""

from __future__ import annotations

import json

import pytest

from explorer.runs import find_runs, read_run
from explorer.state import DEFAULT_DETAIL_TEMPERATURE, DEFAULT_FAVOURITES, DirectionInfo, ExplorerState, FaceRef, Snapshot


def make_state() -> ExplorerState:
    s = ExplorerState()
    s.set_directions([DirectionInfo(n) for n in ("Smiling", "Young", "Male", "Bald")])
    s.set_face(FaceRef.from_seed(1))
    return s


def test_changes_emit_events_and_snapshots_are_values():
    s = make_state()
    seen = []
    s.changed.connect(lambda what: seen.append(set(what)))
    s.set_amount("Smiling", 0.5)
    s.set_amount("Smiling", 0.5)  # no change, no event
    s.set_temperature(0.9)
    assert seen == [{"amounts"}, {"temperature"}]
    snap = s.snapshot()
    assert snap.amounts == (("Smiling", 0.5),)
    assert hash(snap) == hash(Snapshot(FaceRef.from_seed(1), 0.9, (("Smiling", 0.5),), (), False, DEFAULT_DETAIL_TEMPERATURE))
    s.set_amount("Smiling", 0.0)
    assert s.snapshot().amounts == ()


def test_detail_temperature_is_part_of_the_picture_and_of_undo():
    s = make_state()
    seen = []
    s.changed.connect(lambda what: seen.append(set(what)))
    before = s.snapshot()
    s.set_detail_temperature(0.3)
    assert seen == [{"detail_temperature"}]
    after = s.snapshot()
    assert after.detail_temperature == 0.3 and after.base_key() != before.base_key()
    s.set_detail_temperature(5.0)  # clamped to the temperature range
    assert s.detail_temperature == 1.2
    assert s.undo() and s.undo()
    assert s.snapshot() == before and s.detail_temperature == DEFAULT_DETAIL_TEMPERATURE
    # a latent face (a photo) has no sampling temperatures: they do not change its base
    photo = Snapshot(FaceRef.from_latent(3, "photo"), 0.7, detail_temperature=0.2)
    assert photo.base_key() == Snapshot(FaceRef.from_latent(3, "photo"), 0.9, detail_temperature=0.6).base_key()


def test_a_drag_is_one_undo_step_and_redo_restores_it():
    s = make_state()
    gesture = object()
    for v in (0.1, 0.2, 0.3, 0.4):
        s.set_amount("Young", v, gesture=gesture)
    s.end_gesture()
    s.set_amount("Male", -1.0)
    assert s.undo()
    assert s.amounts == {"Young": 0.4}
    assert s.undo()
    assert s.amounts == {}
    assert s.redo()
    assert s.amounts == {"Young": 0.4}
    s.set_amount("Bald", 1.0)  # a new change clears redo
    assert not s.can_redo


def test_reset_one_and_all_and_temperature_is_clamped():
    s = make_state()
    s.set_amount("Smiling", 1.0)
    s.set_amount("Young", -1.0)
    s.reset("Smiling")
    assert s.amounts == {"Young": -1.0}
    s.reset()
    assert s.amounts == {}
    s.set_temperature(5.0)
    assert s.temperature == 1.2
    s.set_temperature(-1)
    assert s.temperature == 0.0
    with pytest.raises(ValueError):
        s.set_amount("Smiling", float("nan"))


def test_history_keeps_each_face_with_its_edits():
    s = make_state()
    first = s.current_history_id
    s.set_amount("Smiling", 0.7)
    s.set_face(FaceRef.from_seed(2))
    assert s.amounts == {}  # a new face starts unedited
    assert [e.snapshot.face.seed for e in s.history] == [1, 2]
    s.go_to_history(first)
    assert s.face == FaceRef.from_seed(1)
    assert s.amounts == {"Smiling": 0.7}
    assert s.undo()  # going back is undoable
    assert s.face == FaceRef.from_seed(2)


def test_directions_and_favourites():
    s = make_state()
    s.set_amount("Bald", 1.0)
    s.set_fixed("Male", True)
    s.set_directions([DirectionInfo("Smiling"), DirectionInfo("Male")])
    assert s.amounts == {}  # Bald is gone
    assert s.fixed == {"Male"}
    assert list(DEFAULT_FAVOURITES) == s.favourites
    s.set_favourite("Male", False)
    s.set_favourite("pc1", True)
    assert "Male" not in s.favourites and s.favourites[-1] == "pc1"


def test_face_refs_validate():
    with pytest.raises(ValueError):
        FaceRef("seed")
    with pytest.raises(ValueError):
        FaceRef("photo", latent_id=1)
    assert not FaceRef.from_latent(3, "me.jpg").uses_temperature
    snap = Snapshot(FaceRef.from_latent(3, "me.jpg"), temperature=0.5)
    assert snap.effective_temperature is None  # temperature does not change a photo


def test_run_reader_tolerates_partial_lines(tmp_path):
    run = tmp_path / "run1"
    run.mkdir()
    lines = [json.dumps({"step": i, "train_bpd": 5 - i * 0.1, "val_bpd": 5.2 - i * 0.1, "lr": 1e-3}) for i in range(5)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 5, "train_b')
    (run / "samples").mkdir()
    (run / "samples" / "step_4.png").write_bytes(b"not really a png")
    data = read_run(run)
    assert data.problem == ""
    assert data.x_key == "step"
    assert set(data.series) == {"train_bpd", "val_bpd"}
    assert data.series["train_bpd"][0] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert data.sample == run / "samples" / "step_4.png"
    assert find_runs(tmp_path) == [run]
    assert "no metrics" in read_run(tmp_path).problem


def test_the_windows_default_temperatures_are_the_commands():
    """explorer.state cannot import glowcore.model (no torch in the GUI), so the two keep their own
    copies of the measured defaults: a seed looks the same in the window and in `glow sample`."""
    from glowcore.model import DEFAULT_DETAIL_TEMPERATURE as core_detail, DEFAULT_TEMPERATURE as core_t
    from explorer.state import DEFAULT_TEMPERATURE

    assert (DEFAULT_TEMPERATURE, DEFAULT_DETAIL_TEMPERATURE) == (core_t, core_detail)
