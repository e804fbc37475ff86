"""benchmarks/render_stages.py, benchmarks/decode_backends.py and benchmarks/render_ab.py run on
the tiny model (a few moves and rounds) so that they cannot rot. No timing is checked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_render_stages_profiles_every_scenario(tiny_model, tmp_path, qtbot):
    out = tmp_path / "stages.json"
    assert _load("render_stages").main([str(tiny_model), "--moves", "4", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    for sc in ("slider", "stacked", "morph"):
        assert r[sc]["total"][0] > 0 and r[sc]["paint"][0] >= 0, sc
    assert "decode+uint8" in r["slider"] and "exact levels" in r["slider"]
    assert "preview" in r["morph"]


def test_decode_backends_compares_eager_and_graphs(tiny_model, tmp_path):
    out = tmp_path / "backends.json"
    assert _load("decode_backends").main([str(tiny_model), "--rounds", "3", "--backends", "eager,jit", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert set(r["backends"]) == {"eager", "jit"} and not r["failed"]
    for b in r["backends"].values():
        assert b["p50_ms"] > 0 and b["max_abs_diff_vs_eager_pass"] < 1e-4


def test_render_ab_compares_two_trees_move_by_move(tiny_model, tmp_path, qtbot):
    """This tree against itself (loaded a second time as the base): both sides render every
    move, with the same pictures."""
    out = tmp_path / "ab.json"
    tree = str(BENCH.parent)
    assert _load("render_ab").main([str(tiny_model), "--base", tree, "--moves", "4", "--sweeps", "1", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    for sc in ("slider", "stacked", "temperature"):
        assert r[sc]["renders"] == 4 and r[sc]["pictures_differ"] == 0, sc
        assert r[sc]["base"]["p50"] > 0 and r[sc]["new"]["p50"] > 0, sc


def test_render_ab_paced_drags_through_the_worker(tiny_model, tmp_path, qtbot):
    """``--paced``: each side's engine behind a ModelWorker thread, moves posted at a rate; every
    move gets a latency (its picture or a newer one arrived)."""
    out = tmp_path / "paced.json"
    tree = str(BENCH.parent)
    args = [str(tiny_model), "--base", tree, "--moves", "5", "--sweeps", "2", "--paced", "100", "--scenarios", "slider,stacked", "--json", str(out)]
    assert _load("render_ab").main(args) == 0
    r = json.loads(out.read_text())
    for sc in ("slider", "stacked"):
        for side in ("base", "new"):
            assert r[sc][side]["latency_p50"] > 0 and r[sc][side]["renders"] >= 1, (sc, side)


def test_render_pair_drags_through_one_worker_and_through_two(tiny_model, tmp_path, qtbot):
    """benchmarks/render_pair.py: the same paced drags through one worker, through two, and through
    one with its second render lane (the app's); every move gets a latency, and with two workers
    or two lanes every move is rendered at a slow pace."""
    out = tmp_path / "pair.json"
    args = [str(tiny_model), "--moves", "5", "--sweeps", "2", "--rate", "20", "--scenarios", "slider,stacked", "--json", str(out)]
    assert _load("render_pair").main(args) == 0
    r = json.loads(out.read_text())
    for sc in ("slider", "stacked"):
        for label in ("one", "two", "lanes"):
            assert r[sc][label]["moves"] == 10 and r[sc][label]["latency_p95"] > 0, (sc, label)
        assert r[sc]["two"]["renders"] == 10 and r[sc]["lanes"]["renders"] == 10, sc
