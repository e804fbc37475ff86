"""Checkpoints: safetensors + JSON, exact round trips, float16 storage, clear errors, no pickle."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from glowcore import CheckpointError, Glow, GlowConfig, load_model, save_model
from glowcore.io.checkpoint import architecture_size, read_config, resolve_model_path

from .test_model import perturbed


@pytest.fixture()
def model() -> Glow:
    torch.manual_seed(0)
    m = Glow(GlowConfig(image_size=8, channels=3, levels=2, steps=2, hidden=8))
    m.initialize(torch.rand(16, 3, 8, 8))
    perturbed(m)
    m.directions = {"Smiling": torch.randn(m.dim), "Young": torch.randn(m.dim)}
    m.direction_info = {"Smiling": {"scale": 1.5, "method": "mean-diff"}, "Young": {}}
    m.metadata = {"metrics": {"val_bpd": 1.23}}
    return m.eval()


def _lp(m: Glow, x: torch.Tensor) -> torch.Tensor:
    return m.log_prob(x, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("form", ["dir", "file"])
def test_round_trip_gives_identical_log_probs_and_keeps_directions(model: Glow, tmp_path: Path, form: str) -> None:
    path = tmp_path / ("m" if form == "dir" else "m.safetensors")
    save_model(model, path)
    loaded = load_model(path, device="cpu")
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(_lp(model, x), _lp(loaded, x))
    assert loaded.config == model.config
    assert set(loaded.directions) == {"Smiling", "Young"}
    assert torch.equal(loaded.directions["Smiling"], model.directions["Smiling"])
    assert loaded.direction_info["Smiling"] == {"scale": 1.5, "method": "mean-diff"}
    assert loaded.metadata["metrics"]["val_bpd"] == 1.23
    assert not loaded.training


@pytest.mark.parametrize("part", ["prior_hidden", "dequant_hidden"])
def test_a_grown_model_round_trips_and_the_plain_one_is_written_as_before(model: Glow, tmp_path: Path, part: str) -> None:
    grown = model.with_prior_networks(4) if part == "prior_hidden" else model.with_prior_networks(3).with_dequantizer(5)
    grown = perturbed(grown).eval()
    width = getattr(grown.config, part)
    assert architecture_size(grown.config) == sum(v.numel() for v in grown.state_dict().values())
    save_model(grown, tmp_path / "g")
    assert read_config(tmp_path / "g")["architecture"][part] == width
    loaded = load_model(tmp_path / "g", device="cpu")
    x = torch.rand(4, 3, 8, 8)
    assert getattr(loaded.config, part) == width and torch.equal(_lp(grown, x), _lp(loaded, x))
    # the paper's priors and uniform noise are written as before: no key (older readers load it)
    save_model(model, tmp_path / "m")
    assert part not in read_config(tmp_path / "m")["architecture"]


def test_a_learned_dequantizer_is_loaded_and_an_absurd_width_refused(model: Glow, tmp_path: Path) -> None:
    grown = perturbed(model.with_dequantizer(5)).eval()
    save_model(grown, tmp_path / "g")
    loaded = load_model(tmp_path / "g", device="cpu")
    x = torch.rand(4, 3, 8, 8)
    assert not torch.equal(_lp(loaded, x), loaded.log_prob(x, generator=torch.Generator().manual_seed(0), variational=False))
    # a config asking for an absurd width is refused before anything is built, naming the width
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    cfg["architecture"]["dequant_hidden"] = 10**6
    (tmp_path / "g" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"more than the .* allowed .*dequant_hidden=1000000"):
        load_model(tmp_path / "g")


def test_loading_never_reinitializes_actnorm(model: Glow, tmp_path: Path) -> None:
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m", device="cpu").train()
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    loaded.log_prob(torch.rand(8, 3, 8, 8) * 0.1)  # a training-mode forward on very different data
    after = loaded.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_float16_storage_loads_as_float32(model: Glow, tmp_path: Path) -> None:
    save_model(model, tmp_path / "m16", dtype=torch.float16)
    save_model(model, tmp_path / "m32")
    size16 = (tmp_path / "m16" / "model.safetensors").stat().st_size
    size32 = (tmp_path / "m32" / "model.safetensors").stat().st_size
    assert size16 < 0.6 * size32
    loaded = load_model(tmp_path / "m16", device="cpu")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(_lp(model, x), _lp(loaded, x), rtol=1e-2)
    back = loaded.decode(loaded.encode(x))
    assert (back - x).abs().max() < 1e-4  # still an exact bijection
    assert read_config(tmp_path / "m16")["weights"]["dtype"] == "float16"


def test_config_records_format_architecture_and_preprocessing(model: Glow, tmp_path: Path) -> None:
    save_model(model, tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["format"] == "glow-explorer-model" and cfg["format_version"] == 1
    assert cfg["architecture"]["levels"] == 2 and cfg["preprocessing"]["n_bits"] == 5
    assert cfg["weights"]["sha256"] and cfg["directions"]["Smiling"]["scale"] == 1.5


# ------------------------------------------------------------------------------ bad files
def _saved(model: Glow, tmp_path: Path) -> Path:
    return save_model(model, tmp_path / "m")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file or folder"):
        load_model(tmp_path / "nope")


def test_unknown_bundled_name() -> None:
    with pytest.raises(CheckpointError, match="no bundled model of that name"):
        load_model("no-such-model-name")


def test_truncated_weights(model: Glow, tmp_path: Path) -> None:
    path = _saved(model, tmp_path)
    w = path / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*(truncated|bytes)"):
        load_model(path)


def test_corrupted_weights_fail_the_checksum(model: Glow, tmp_path: Path) -> None:
    path = _saved(model, tmp_path)
    w = path / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum does not match"):
        load_model(path)


def test_missing_weights_file(model: Glow, tmp_path: Path) -> None:
    path = _saved(model, tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights file"):
        load_model(path)


def test_wrong_format_version(model: Glow, tmp_path: Path) -> None:
    path = _saved(model, tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["format_version"] = 99
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"config\.json: format version 99 is newer"):
        load_model(path)


def test_config_not_json(model: Glow, tmp_path: Path) -> None:
    path = _saved(model, tmp_path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: is not valid JSON"):
        load_model(path)


def test_config_that_does_not_match_the_weights(model: Glow, tmp_path: Path) -> None:
    path = _saved(model, tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["architecture"]["hidden"] = 16
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"has shape .* needs"):
        load_model(path)
    cfg["architecture"]["hidden"] = 8
    cfg["architecture"]["steps"] = 3
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="missing .* tensor"):
        load_model(path)


def test_invalid_architecture_in_config(model: Glow, tmp_path: Path) -> None:
    path = _saved(model, tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["architecture"]["levels"] = 5
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="bad architecture: .*cannot be halved"):
        load_model(path)


def test_not_a_glow_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="without a Glow Explorer config"):
        load_model(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!garbage!")
    with pytest.raises(CheckpointError, match="header is not JSON"):
        load_model(tmp_path / "junk.safetensors")
    (tmp_path / "huge.safetensors").write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="header length"):
        load_model(tmp_path / "huge.safetensors")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['GLOW_PWNED']}",))


def test_a_malicious_pickle_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("GLOW_PWNED", str(marker))
    for name in ("model.pt", "model.pth", "model.ckpt", "model.bin"):
        (tmp_path / name).write_bytes(pickle.dumps(_Payload()))
        with pytest.raises(CheckpointError, match="pickle-based checkpoints are refused"):
            load_model(tmp_path / name)
    # the same payload disguised with our extension is rejected as not-safetensors
    (tmp_path / "model.safetensors").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "model.safetensors")
    assert not marker.exists()
    pickle.loads((tmp_path / "model.pt").read_bytes())  # the payload does work when unpickled...
    assert marker.exists()  # ...which proves the checks above would have noticed it


def test_nan_weights_are_rejected(model: Glow, tmp_path: Path) -> None:
    with torch.no_grad():
        model.levels[0].steps[0].actnorm.logs[0] = float("nan")
    save_model(model, tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_model(tmp_path / "m.safetensors")


def test_interrupted_save_keeps_the_previous_model(model: Glow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    good = path.read_bytes()
    import glowcore.io.fileio as fileio

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left


def test_config_json_path_resolves_to_its_folder(model: Glow, tmp_path: Path) -> None:
    path = _saved(model, tmp_path)
    assert load_model(path / "config.json", device="cpu").config == model.config
    assert resolve_model_path(path) == path


class _MarkerPayload:
    """Unpickling this creates ``marker`` (a stand-in for any code an attacker would run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("fmt", ["pickle", "torch.save"])
def test_a_config_naming_a_pickled_weights_file_is_refused_unread(model: Glow, tmp_path: Path, fmt: str) -> None:
    """A model folder whose config.json names ``model.pt`` (with a matching size and checksum, as
    an attacker would write it): refused with an error naming the file, and the pickle's payload
    never runs (loading it with ``torch.load(weights_only=False)`` would run it)."""
    import hashlib

    folder = tmp_path / "m"
    save_model(model, folder)
    marker = tmp_path / "pwned"
    weights = folder / "model.pt"
    if fmt == "pickle":
        weights.write_bytes(pickle.dumps(_MarkerPayload(marker), protocol=2))
    else:
        torch.save(_MarkerPayload(marker), weights)
    (folder / "model.safetensors").unlink()
    data = weights.read_bytes()
    cfg = json.loads((folder / "config.json").read_text())
    cfg["weights"] = {**cfg["weights"], "file": "model.pt", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "config.json").write_text(json.dumps(cfg))
    for target in (folder, folder / "config.json"):
        with pytest.raises(CheckpointError, match="model.pt") as info:
            load_model(target, device="cpu")
        assert "safetensors" in str(info.value) or "pickle" in str(info.value), str(info.value)
        assert not marker.exists(), "the pickled payload ran while loading the model"
    # the payload is live: unpickling the file the way a careless loader would creates the marker
    if fmt == "pickle":
        pickle.loads(data).close()
    else:
        torch.load(weights, weights_only=False).close()
    assert marker.exists()
