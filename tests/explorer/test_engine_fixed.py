"""The window's locks and a direction's default conditioning (its info's ``fixed`` list): a lock
is held on top of what the model holds, never instead of it. Engine only, no window."""

from __future__ import annotations

import numpy as np

import glowcore
from explorer import engine as engine_mod
from explorer.state import FaceRef, Snapshot
from glowcore.ops.directions import project


def test_locks_add_to_the_directions_the_model_holds(tiny_model, tmp_path):
    m = glowcore.load_model(tiny_model, device="cpu")
    m.direction_info["Male"]["fixed"] = ["Young"]
    glowcore.save_model(m, tmp_path / "m")
    eng = engine_mod.Engine("cpu", threads=1)
    eng.open_model(str(tmp_path / "m"))
    spec = Snapshot(face=FaceRef.from_seed(1), amounts=(("Male", 1.0),))
    base = eng.base_latent(spec)

    def moved(spec) -> dict[str, float]:
        before, after = project(eng.model, base), project(eng.model, eng.edited_latent(spec))
        return {nm: float(np.abs(after[nm] - before[nm]).max()) for nm in before}

    d = moved(spec)  # no lock: the model's default
    assert d["Young"] < 1e-5 and d["Smiling"] > 1e-3 and d["Male"] > 0.5
    d = moved(Snapshot(face=spec.face, amounts=spec.amounts, fixed=("Smiling",)))  # a lock: both held
    assert d["Young"] < 1e-5 and d["Smiling"] < 1e-5 and d["Male"] > 0.5
    d = moved(Snapshot(face=spec.face, amounts=(("Male", 1.0), ("Young", 0.5)), fixed=("Young",)))  # moved and locked: moved
    assert d["Young"] > 0.1
    assert "holds fixed: Young" in next(i for i in eng.direction_infos() if i.name == "Male").tooltip


def test_a_bounded_direction_stops_the_face_at_its_bound(tiny_model, tmp_path):
    """A direction with ``bounds``: the slider's far end takes the face to the bound, not past it
    (the engine edits through ``glowcore.ops.editing.edit``), and its tooltip says so."""
    m = glowcore.load_model(tiny_model, device="cpu")
    m.direction_info["Male"]["bounds"] = [None, 0.3]
    glowcore.save_model(m, tmp_path / "m")
    eng = engine_mod.Engine("cpu", threads=1)
    eng.open_model(str(tmp_path / "m"))
    face = FaceRef.from_seed(1)
    base = project(eng.model, eng.base_latent(Snapshot(face=face)))["Male"]
    assert base[0] < 0.2
    far = project(eng.model, eng.edited_latent(Snapshot(face=face, amounts=(("Male", 2.0),))))["Male"]
    assert base[0] < far[0] <= 0.3 + 1e-6
    assert "bounded: moves a face at most to +0.30" in next(i for i in eng.direction_infos() if i.name == "Male").tooltip
