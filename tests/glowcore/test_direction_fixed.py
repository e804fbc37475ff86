"""A direction's default conditioning (its info's ``fixed`` list): the directions an edit of it
holds fixed unless the caller says otherwise (issue #15 item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glowcore import Glow, GlowConfig, load_model, save_model
from glowcore.cli.main import main
from glowcore.ops.directions import add_directions, edit, edit_vector, fixed_sets, project, remove_direction


@pytest.fixture
def model() -> Glow:
    """Three correlated directions: "Male" holds "Lipstick" fixed by default, "Smiling" nothing."""
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=8, channels=3, levels=2, steps=1, hidden=8, coupling="affine", lu=True, n_bits=5)).eval()
    g = torch.Generator().manual_seed(1)
    base = torch.randn(m.dim, generator=g)
    vecs = {nm: base + torch.randn(m.dim, generator=g) for nm in ("Male", "Lipstick", "Smiling")}
    add_directions(m, vecs, {"Male": {"scale": 2.0, "fixed": ["Lipstick"]}, "Lipstick": {}, "Smiling": {}})
    return m


def moved(model: Glow, latent, edited) -> dict[str, float]:
    before, after = project(model, latent), project(model, edited)
    return {nm: float(np.abs(after[nm] - before[nm]).max()) for nm in before}


def test_the_stored_list_is_held_by_default(model: Glow) -> None:
    z = model.sample_latent(2, 0.7, seed=0)
    d = moved(model, z, edit(model, z, {"Male": 1.0}))
    assert d["Lipstick"] < 1e-5 and d["Smiling"] > 0.05 and d["Male"] > 0.5
    # the same as asking for it, and edit_vector agrees
    same = edit(model, z, {"Male": 1.0}, fixed=["Lipstick"])
    torch.testing.assert_close(edit(model, z, {"Male": 1.0}).flatten(), same.flatten())
    torch.testing.assert_close(edit_vector(model, "Male"), edit_vector(model, "Male", fixed=["Lipstick"]))
    # a direction without a list is edited alone, exactly as before
    torch.testing.assert_close(edit_vector(model, "Smiling"), model.directions["Smiling"])
    # edited together with a direction it holds: that one is edited, not held (no error)
    both = edit(model, z, {"Male": 1.0, "Lipstick": 0.5})
    torch.testing.assert_close(both.flatten() - z.flatten(), (2.0 * model.directions["Male"] + 0.5 * model.directions["Lipstick"])[None].expand(2, -1),
                               rtol=1e-5, atol=1e-5)
    assert fixed_sets(model, ["Male", "Smiling"]) == {"Male": ["Lipstick"], "Smiling": []}


def test_an_explicit_fixed_replaces_the_stored_list_and_also_fixed_adds_to_it(model: Glow) -> None:
    z = model.sample_latent(2, 0.7, seed=1)
    d = moved(model, z, edit(model, z, {"Male": 1.0}, fixed=["Smiling"]))
    assert d["Smiling"] < 1e-5 and d["Lipstick"] > 0.05  # the caller's set instead of the stored one
    alone = edit(model, z, {"Male": 1.0}, fixed=())
    torch.testing.assert_close(alone.flatten() - z.flatten(), 2.0 * model.directions["Male"][None].expand(2, -1), rtol=1e-5, atol=1e-5)
    d = moved(model, z, edit(model, z, {"Male": 1.0}, also_fixed=["Smiling"]))  # the window's locks: on top
    assert d["Smiling"] < 1e-5 and d["Lipstick"] < 1e-5
    assert fixed_sets(model, ["Male"], fixed=["Smiling"], also_fixed=["Lipstick"]) == {"Male": ["Smiling", "Lipstick"]}
    with pytest.raises(ValueError, match="both edited and kept fixed"):
        edit(model, z, {"Male": 1.0}, also_fixed=["Male"])


def test_unknown_or_malformed_lists_are_refused_naming_the_direction(model: Glow, tmp_path: Path) -> None:
    v = torch.randn(model.dim)
    with pytest.raises(ValueError, match=r"^direction 'Young': 'fixed' names an unknown direction 'Nope' \(the model has 4 directions\)$"):
        add_directions(model, {"Young": v}, {"Young": {"fixed": ["Male", "Nope"]}})
    for bad, what in (("Male", "list of direction names"), (["Young"], "itself"), (["Male", "Male"], "twice"), ([3], "list of direction names")):
        with pytest.raises(ValueError, match=f"direction 'Young': 'fixed'.*{what}"):
            add_directions(model, {"Young": v}, {"Young": {"fixed": bad}})
    assert "Young" not in model.directions
    # in a model file: one line naming the file and the direction
    save_model(model, tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["directions"]["Male"]["fixed"] = ["Lipstick", "Gone"]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError) as err:
        load_model(tmp_path / "m", device="cpu")
    msg = str(err.value)
    assert "\n" not in msg and "config.json" in msg and "direction 'Male'" in msg and "'Gone'" in msg
    # a list gone stale in memory: the edit says which direction's list
    model.direction_info["Smiling"]["fixed"] = ["Gone"]
    z = model.sample_latent(1, 0.7, seed=2)
    with pytest.raises(ValueError, match=r"^direction 'Smiling': its stored 'fixed' list names unknown direction 'Gone'"):
        edit(model, z, {"Smiling": 1.0})
    edit(model, z, {"Smiling": 1.0}, fixed=())  # (an explicit set does not read it)


def test_the_list_travels_with_the_model_and_old_files_edit_as_before(model: Glow, tmp_path: Path) -> None:
    z = model.sample_latent(2, 0.7, seed=3)
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu")
    assert back.direction_info["Male"]["fixed"] == ["Lipstick"] and "fixed" not in back.direction_info["Smiling"]
    torch.testing.assert_close(edit(back, z, {"Male": 1.0}).flatten(), edit(model, z, {"Male": 1.0}).flatten(), rtol=1e-4, atol=1e-4)
    # a file without the key: each direction alone, as before
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["directions"]["Male"]["fixed"]
    cfg_path.write_text(json.dumps(cfg))
    old = load_model(tmp_path / "m", device="cpu")
    torch.testing.assert_close(edit(old, z, {"Male": 1.0}).flatten() - z.flatten(),
                               2.0 * old.directions["Male"][None].expand(2, -1), rtol=1e-4, atol=1e-4)
    # removing a held direction takes it out of the lists
    remove_direction(back, "Lipstick")
    assert "fixed" not in back.direction_info["Male"]
    edit(back, z, {"Male": 1.0})


def test_glow_edit_holds_the_stored_list_unless_told(model: Glow, tmp_path: Path, capsys) -> None:
    save_model(model, tmp_path / "m")
    out = tmp_path / "e.png"

    def run(*argv) -> tuple[int, str]:
        code = main(["edit", "seed:1", "--model", str(tmp_path / "m"), "-o", str(out), *argv])
        said = capsys.readouterr()
        return code, said.out + said.err

    code, said = run("--set", "Male=1")
    assert code == 0 and "Lipstick:" in said and "(fixed)" in said
    before, after = said.split("Lipstick: ")[1].split()[0:3:2]
    assert before == after
    code, said = run("--set", "Male=1", "--alone")
    assert code == 0 and "Lipstick" not in said
    code, said = run("--set", "Male=1", "--fixed", "Smiling")
    assert code == 0 and "Smiling:" in said and "Lipstick" not in said
    code, said = run("--set", "Male=1", "--fixed", "Smiling", "--alone")
    assert code == 2 and "--alone" in said
    code, said = run("--list")
    assert code == 0 and "holds fixed: Lipstick" in said


def test_a_remembered_edit_follows_every_change_of_its_directions(model: Glow) -> None:
    """The edit matrix is remembered between calls (a slider drag repeats it); a direction changed
    in place, replaced, or rescaled, and a held direction changed, all give the fresh result."""
    from glowcore.ops import editing

    z = model.sample_latent(1, 0.7, seed=0)
    am = {"Male": 1.0, "Smiling": 0.5}

    def fresh():
        editing._MATRICES.clear()
        return edit(model, z, am).flatten()

    first = edit(model, z, am).flatten()
    torch.testing.assert_close(edit(model, z, am).flatten(), first)  # remembered: the same
    editing._edit_matrix(model, list(am), fixed_sets(model, list(am)), None).mul_(0)  # scribbling on what it got: not on the memory
    torch.testing.assert_close(edit(model, z, am).flatten(), first)
    changes = [
        lambda: model.directions["Male"].mul_(1.5),  # in place
        lambda: model.directions.__setitem__("Smiling", model.directions["Smiling"] * -1.0),  # replaced
        lambda: model.direction_info["Male"].__setitem__("scale", 3.0),  # rescaled
        lambda: model.directions["Lipstick"].add_(1.0),  # the direction Male holds fixed
    ]
    for change in changes:
        before = edit(model, z, am).flatten()
        change()
        after = edit(model, z, am).flatten()
        assert not torch.equal(after, before)
        torch.testing.assert_close(after, fresh(), rtol=0, atol=0)
