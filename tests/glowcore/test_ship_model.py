"""scripts/ship_model.py: the recipe is the bundled model's, the steps resume where a run stopped,
and the new model is never written into assets/."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import ship_model  # noqa: E402

from glowcore import Glow, GlowConfig, load_model, save_model  # noqa: E402
from glowcore.ops.directions import add_directions  # noqa: E402


def test_the_recipe_gives_the_conditioning_sets_the_bundled_model_ships() -> None:
    import attr_classifier as ac
    from edit_calibration import EDITED, fixed_set

    info = load_model("celeba64", device="cpu").direction_info
    names = list(info)
    key = [a for a in ac.KEY_ATTRIBUTES if a in names]
    for attr, spec in {**ship_model.RECIPE, "Young": "key"}.items():
        want = fixed_set(attr, spec, EDITED, key, names)
        assert sorted(info[attr].get("fixed", [])) == sorted(want), attr


def _tiny(path: Path) -> None:
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=8, channels=3, levels=2, steps=1, hidden=8, coupling="affine", lu=True, n_bits=5))
    add_directions(m, {"Smiling": torch.randn(m.dim)}, {"Smiling": {"scale": 1.7}})
    save_model(m, path)


def _fake_plan(counter: Path, fail: Path):
    """Cheap stand-ins for the real steps: each appends its name to ``counter`` and writes its
    output; the third fails while ``fail`` exists."""
    def plan(args):
        w, out = Path(args.work), Path(args.out)
        steps = []
        for i, done in enumerate([w / "m0" / "card.json", w / "m0" / "samples.png", w / "x.json", out / "config.json"]):
            code = (f"import pathlib,sys; p=pathlib.Path({str(done)!r}); open({str(counter)!r},'a').write('{i}\\n');"
                    f"sys.exit(3) if pathlib.Path({str(fail)!r}).exists() and {i} == 2 else (p.parent.mkdir(parents=True, exist_ok=True), p.write_text('x'))")
            steps.append((f"step{i}", done, [sys.executable, "-c", code]))
        return steps
    return plan


def test_a_failed_step_stops_the_run_and_the_next_run_resumes_after_the_steps_that_finished(tmp_path: Path, monkeypatch, capsys) -> None:
    _tiny(tmp_path / "ckpt")
    (tmp_path / "data").mkdir()
    counter, fail = tmp_path / "ran.txt", tmp_path / "fail"
    fail.write_text("")
    monkeypatch.setattr(ship_model, "plan", _fake_plan(counter, fail))
    argv = [str(tmp_path / "ckpt"), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "out"),
            "--data", str(tmp_path / "data"), "--reference", str(tmp_path / "ckpt")]
    assert ship_model.main(argv) == 1
    assert "step 'step2' failed" in capsys.readouterr().err
    assert counter.read_text().split() == ["0", "1", "2"]
    assert (tmp_path / "w" / "scales.json").read_text().count("1.7") == 1  # the reference model's scales
    fail.unlink()
    assert ship_model.main(argv) == 0
    assert counter.read_text().split() == ["0", "1", "2", "2", "3"]  # 0 and 1 were done: not run again
    assert (tmp_path / "out" / "samples.png").exists() and (tmp_path / "out" / "card.json").exists()


def test_it_never_writes_into_assets_or_over_the_checkpoint(tmp_path: Path, capsys) -> None:
    for out in [str(ROOT / "assets" / "models" / "new"), str(tmp_path / "ckpt")]:
        with pytest.raises(SystemExit) as e:
            ship_model.main([str(tmp_path / "ckpt"), "--work", str(tmp_path / "w"), "--out", out, "--dry-run"])
        assert e.value.code == 2
        assert "outside assets/" in capsys.readouterr().err
    assert not (ROOT / "assets" / "models" / "new").exists()


def test_the_dry_run_lists_every_step_in_order_and_marks_those_done(tmp_path: Path, capsys) -> None:
    (tmp_path / "w" / "m0").mkdir(parents=True)
    (tmp_path / "w" / "m0" / "card.json").write_text("{}")
    assert ship_model.main(["ckpt", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == [
        "[done] bundle", "[todo] calibrate", "[todo] calibrate Young", "[todo] apply", "[todo] apply Young",
        "[todo] bounds", "[todo] apply bounds", "[todo] edits grid", "[todo] report edits", "[todo] report samples"]
    assert "--target-on 0.90" in lines[2] and "--report-skip 2300" in lines[8]
    assert "m2" in lines[5].split("edit_bounds.py")[1].split()[0]  # the bounds are measured on the calibrated model
    # with --sampling-prior, the prior is fitted first and the bounds are measured on the model that carries it
    assert ship_model.main(["ckpt", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "out"), "--dry-run", "--sampling-prior"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[5].startswith("[todo] sampling prior") and "fit_sampling_prior.py" in lines[5]
    assert "m3" in lines[6].split("edit_bounds.py")[1].split()[0] and "m3" in lines[7].split("apply_calibration.py")[1].split()[0]
