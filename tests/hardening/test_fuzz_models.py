"""Hostile and broken model files and folders against :func:`glowcore.io.checkpoint.load_model`.

Truncations at every class of cut point, damaged and hand-made safetensors headers (offsets past
the end, negative or huge; wrong dtypes and shapes; missing and extra tensors), fuzzed
``config.json`` files, absurd architectures (refused before anything is allocated) and malicious
pickles planted wherever a loader might look (never executed). Every failure must be a
:class:`CheckpointError` that names the file; anything that loads must decode finite images.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import glowcore.io.checkpoint as ckpt
from glowcore import CheckpointError, Glow, GlowConfig, load_model, save_model
from glowcore.io.checkpoint import architecture_size, read_config

from ..testdata import fashion_spec
from ._common import SCALE, count, fuzz_settings, truncation_points


def _tiny(channels: int = 3, **kw) -> Glow:
    torch.manual_seed(0)
    cfg = dict(image_size=8, channels=channels, levels=2, steps=1, hidden=4)
    cfg.update(kw)
    m = Glow(GlowConfig(**cfg))
    m.initialize(torch.rand(8, channels, cfg["image_size"], cfg["image_size"]))
    m.directions = {"Smiling": torch.randn(m.dim)}
    m.direction_info = {"Smiling": {"scale": 1.0}}
    return m.eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    m = _tiny()
    return {"file": save_model(m, root / "m.safetensors"), "dir": save_model(m, root / "mdir")}


def _load_or_clear_error(path: Path, where: str | None = None) -> Glow | None:
    """Load ``path``; a failure must be a CheckpointError naming ``where`` (default: the path's
    name). A model that loads must decode finite images."""
    where = where or path.name
    try:
        m = load_model(path, device="cpu")
    except CheckpointError as e:
        assert where in str(e), f"message does not name {where}: {e}"
        return None
    imgs = m.sample(2, 1.0, seed=0)
    assert torch.isfinite(imgs).all()
    return m


def _split(blob: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def _join(header: dict | str | bytes, body: bytes, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else (header if isinstance(header, str) else json.dumps(header)).encode()
    return (len(raw) if length is None else length).to_bytes(8, "little", signed=length is not None and length < 0) + raw + body


# --------------------------------------------------------------------------------- truncation
def _cut_points(blob: bytes) -> list[int]:
    """Every class of cut: inside the length prefix, in the header, at its end, at the start,
    middle and end of every tensor's data (and the generic points of truncation_points)."""
    header, _ = _split(blob)
    base = 8 + int.from_bytes(blob[:8], "little")
    pts = set(truncation_points(len(blob))) | set(range(0, 9)) | {base - 1, base, base + 1}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        pts |= {base + a, base + (a + b) // 2, base + b - 1}
    if SCALE > 1:  # the long run cuts at every byte
        pts = set(range(len(blob)))
    return sorted(p for p in pts if 0 <= p < len(blob))


@pytest.mark.parametrize("form", ["file", "dir"])
def test_every_truncation_is_a_clear_error(saved, tmp_path: Path, form: str) -> None:
    src = saved[form]
    weights = src if form == "file" else src / "model.safetensors"
    blob = weights.read_bytes()
    for cut in _cut_points(blob):
        if form == "file":
            p = tmp_path / f"cut{cut}.safetensors"
            p.write_bytes(blob[:cut])
            target, where = p, p.name
        else:
            p = tmp_path / f"cut{cut}"
            p.mkdir()
            (p / "config.json").write_bytes((src / "config.json").read_bytes())
            (p / "model.safetensors").write_bytes(blob[:cut])
            target, where = p, "model.safetensors"
        with pytest.raises(CheckpointError) as info:
            load_model(target, device="cpu")
        assert where in str(info.value)
        count(f"models.truncated.{form}")
    # config.json cut anywhere
    text = (src.parent / "mdir" / "config.json").read_bytes() if form == "file" else (src / "config.json").read_bytes()
    if form == "dir":
        for cut in truncation_points(len(text.rstrip())):
            p = tmp_path / f"cfgcut{cut}"
            p.mkdir()
            (p / "config.json").write_bytes(text[:cut])
            (p / "model.safetensors").write_bytes(blob)
            with pytest.raises(CheckpointError, match="config.json"):
                load_model(p, device="cpu")
            count("models.truncated.config")


# ------------------------------------------------------------------------ hand-made headers
def _header_cases(header: dict, body: bytes) -> dict[str, bytes]:
    meta = header["__metadata__"]
    tensors = [k for k in header if k != "__metadata__"]
    floats = [k for k in tensors if header[k]["dtype"] == "F32" and not k.startswith("directions.")]
    first = floats[0]
    a, b = header[first]["data_offsets"]
    cases: dict[str, bytes] = {}

    def variant(name: str, **changes) -> None:
        h = json.loads(json.dumps(header))
        h[first].update(changes)
        cases[name] = _join(h, body)

    variant("offsets_past_eof", data_offsets=[a, len(body) + 1000])
    variant("offsets_huge", data_offsets=[a, 2**63])
    variant("offsets_u64_max", data_offsets=[2**64 - 8, 2**64 - 1])
    variant("offsets_over_u64", data_offsets=[a, 2**70])
    variant("offsets_negative", data_offsets=[-4, b])
    variant("offsets_reversed", data_offsets=[b, a])
    variant("offsets_overlap", data_offsets=[a + 4, b + 4])
    variant("offsets_not_numbers", data_offsets=["0", "4"])
    variant("offsets_missing", data_offsets=[a])
    variant("shape_huge", shape=[2**40, 2**40])
    variant("shape_negative", shape=[-1])
    variant("shape_wrong_numel", shape=[1])
    variant("shape_not_list", shape="4")
    variant("dtype_int", dtype="I32")
    variant("dtype_bool", dtype="BOOL")
    variant("dtype_unknown", dtype="F128")
    variant("dtype_f64", dtype="F64")
    h = json.loads(json.dumps(header))
    h["directions.Smiling"]["dtype"] = "I32"
    cases["direction_int"] = _join(h, body)
    h = json.loads(json.dumps(header))
    del h[first]
    cases["missing_tensor"] = _join(h, body)
    h = json.loads(json.dumps(header))
    h["levels.9.extra"] = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
    cases["extra_tensor"] = _join(h, body)
    h = json.loads(json.dumps(header))
    h["__metadata__"] = {"glow_explorer": 5}
    cases["metadata_not_string"] = _join(h, body)
    h = json.loads(json.dumps(header))
    h["__metadata__"] = "x"
    cases["metadata_not_object"] = _join(h, body)
    h = json.loads(json.dumps(header))
    h["__metadata__"] = {"glow_explorer": meta["glow_explorer"][: len(meta["glow_explorer"]) // 2]}
    cases["metadata_config_cut"] = _join(h, body)
    cases["header_length_zero"] = _join(b"", body)
    cases["header_length_huge"] = _join(header, body, length=2**62)
    cases["header_length_negative"] = _join(header, body, length=-8)
    cases["header_not_utf8"] = _join(b"\xff\xfe{\x00", body)
    cases["header_deep_json"] = _join("[" * 50_000 + "]" * 50_000, body)
    cases["header_big_int"] = _join('{"a": ' + "9" * 5000 + "}", body)
    cases["header_list"] = _join("[1, 2, 3]", body)
    cases["header_tensor_not_object"] = _join({**header, first: 5}, body)
    return cases


def test_hand_made_safetensors_headers_are_clear_errors(saved, tmp_path: Path) -> None:
    header, body = _split(saved["file"].read_bytes())
    for name, blob in _header_cases(header, body).items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(blob)
        assert _load_or_clear_error(p) is None, f"{name} loaded"
        count("models.header")


@st.composite
def damaged_header(draw, header: dict, body: bytes) -> bytes:
    h = json.loads(json.dumps(header))
    keys = [k for k in h if k != "__metadata__"]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
        max_leaves=6,
    )
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.sampled_from(keys))
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets", None]))
        if field is None:
            h.pop(k, None)
        elif draw(st.booleans()):
            h.setdefault(k, {})
            if isinstance(h[k], dict):
                h[k][field] = draw(json_values)
        else:
            offsets = h[k].get("data_offsets") if isinstance(h.get(k), dict) else None
            if field == "data_offsets" and isinstance(offsets, list) and len(offsets) == 2 and all(type(v) is int for v in offsets):
                h[k]["data_offsets"] = [offsets[0] + draw(st.integers(-64, 64)), offsets[1] + draw(st.integers(-64, 64))]
            elif isinstance(h.get(k), dict) and field == "shape":
                h[k]["shape"] = draw(st.lists(st.integers(-2, 2**33), max_size=4))
            elif isinstance(h.get(k), dict):
                h[k]["dtype"] = draw(st.sampled_from(["F16", "BF16", "F32", "F64", "I8", "U8", "I64", "BOOL", "F8_E4M3", "C64", "??"]))
    cut = draw(st.integers(0, 64))
    return _join(h, body[: len(body) - cut] if draw(st.booleans()) else body)


def test_fuzz_safetensors_headers(saved, tmp_path_factory) -> None:
    header, body = _split(saved["file"].read_bytes())
    folder = tmp_path_factory.mktemp("hdr")

    @fuzz_settings(150)
    @given(blob=damaged_header(header, body))
    def check(blob: bytes) -> None:
        p = folder / "fuzzed.safetensors"
        p.write_bytes(blob)
        _load_or_clear_error(p)
        count("models.header.fuzz")

    check()


def test_fuzz_raw_bytes_of_a_model_file(saved, tmp_path_factory) -> None:
    blob = saved["file"].read_bytes()
    folder = tmp_path_factory.mktemp("raw")

    @fuzz_settings(150)
    @given(edits=st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)), min_size=1, max_size=8),
           cut=st.integers(0, len(blob)))
    def check(edits, cut) -> None:
        b = bytearray(blob[: max(cut, 1)])
        for i, v in edits:
            if i < len(b):
                b[i] = v
        p = folder / "raw.safetensors"
        p.write_bytes(bytes(b))
        _load_or_clear_error(p)
        count("models.bytes.fuzz")

    check()


# ------------------------------------------------------------------- tensors in the wrong form
def _rewrite(src_dir: Path, dst: Path, edit) -> Path:
    """Copy a model folder, change its tensors with ``edit(dict)`` and fix the checksum so that
    the tensors' content, not the checksum, is what load_model judges."""
    import hashlib

    from safetensors.torch import load_file, save

    t = load_file(str(src_dir / "model.safetensors"))
    edit(t)
    data = save(t)
    cfg = json.loads((src_dir / "config.json").read_text())
    cfg["weights"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    dst.mkdir()
    (dst / "model.safetensors").write_bytes(data)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_wrong_dtypes_shapes_and_sets_of_tensors(saved, tmp_path: Path) -> None:
    src = saved["dir"]
    names = list(__import__("safetensors.torch", fromlist=["load_file"]).load_file(str(src / "model.safetensors")))
    floats = [k for k in names if not k.endswith("initialized") and not k.startswith("directions.")]
    flag = next(k for k in names if k.endswith("initialized"))
    edits = {
        "int_weights": (lambda t: t.__setitem__(floats[0], t[floats[0]].to(torch.int32)), "dtype"),
        "bool_weights": (lambda t: t.__setitem__(floats[1], t[floats[1]] > 0), "dtype"),
        "float_flag": (lambda t: t.__setitem__(flag, t[flag].float()), "dtype"),
        "f64_overflow": (lambda t: t.__setitem__(floats[0], torch.full_like(t[floats[0]], 1e300, dtype=torch.float64)), "NaN or infinite"),
        "nan": (lambda t: t[floats[2]].fill_(float("nan")), "NaN or infinite"),
        "wrong_shape": (lambda t: t.__setitem__(floats[0], torch.zeros(3, 3)), "shape"),
        "transposed": (lambda t: t.__setitem__(floats[3], t[floats[3]].reshape(-1).flip(0).reshape(-1, 1)), "shape"),
        "missing": (lambda t: t.pop(floats[4]), "missing"),
        "extra": (lambda t: t.__setitem__("levels.0.bogus", torch.zeros(2)), "unexpected"),
        "direction_wrong_len": (lambda t: t.__setitem__("directions.Smiling", torch.zeros(5)), "direction"),
        "direction_nan": (lambda t: t["directions.Smiling"].fill_(float("inf")), "direction"),
    }
    for name, (edit, words) in edits.items():
        with pytest.raises(CheckpointError, match=words) as info:
            load_model(_rewrite(src, tmp_path / name, edit), device="cpu")
        assert "model.safetensors" in str(info.value)
        count("models.tensors")
    # float16 / float64 storage of finite values is accepted and comes back float32
    m = load_model(_rewrite(src, tmp_path / "f64", lambda t: t.update({k: t[k].double() for k in floats})), device="cpu")
    assert all(p.dtype == torch.float32 for p in m.parameters())
    count("models.tensors")


def test_config_that_describes_another_model(saved, tmp_path: Path) -> None:
    src = saved["dir"]
    for field, value in (("hidden", 8), ("steps", 2), ("levels", 1), ("channels", 1), ("image_size", 16), ("coupling", "additive"), ("lu", False)):
        p = tmp_path / f"{field}"
        p.mkdir()
        (p / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
        cfg = json.loads((src / "config.json").read_text())
        cfg["architecture"][field] = value
        (p / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(CheckpointError, match="model.safetensors|config.json"):
            load_model(p, device="cpu")
        count("models.config.mismatch")


# --------------------------------------------------------------------- absurd architectures
ABSURD = [
    {"levels": 1000},
    {"levels": 10**12},
    {"levels": 10**4000},
    {"hidden": 10**9},
    {"hidden": 10**5},
    {"steps": 10**6},
    {"steps": 10**9, "hidden": 1},
    {"channels": 10**9},
    {"image_size": 2**40, "levels": 2},
    {"image_size": 2**31, "levels": 31},
    {"image_size": 10**4000},
    {"hidden": 40_000},  # ~ 1.6e9 x K: allowed by the size limit only if the file could hold it
]


def test_absurd_architectures_are_refused_before_allocating(saved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real_glow = ckpt.Glow

    def guarded(config: GlowConfig):
        n = architecture_size(config)
        built.append(n)
        assert n < 10**7, f"load_model is building a model of {n:,} values"
        return real_glow(config)

    monkeypatch.setattr(ckpt, "Glow", guarded)
    src = saved["dir"]
    for i, change in enumerate(ABSURD):
        p = tmp_path / f"absurd{i}"
        p.mkdir()
        (p / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
        cfg = json.loads((src / "config.json").read_text())
        cfg["architecture"].update(change)
        (p / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(CheckpointError) as info:
            load_model(p, device="cpu")
        msg = str(info.value)
        assert "config.json" in msg or "model.safetensors" in msg, msg
        assert "architecture" in msg or "values" in msg, msg
        count("models.config.absurd")
    # the single-file form carries its config in the header: same checks
    header, body = _split(saved["file"].read_bytes())
    for i, change in enumerate(ABSURD):
        h = json.loads(json.dumps(header))
        cfg = json.loads(h["__metadata__"]["glow_explorer"])
        cfg["architecture"].update(change)
        h["__metadata__"]["glow_explorer"] = json.dumps(cfg)
        p = tmp_path / f"absurd{i}.safetensors"
        p.write_bytes(_join(h, body))
        with pytest.raises(CheckpointError, match=p.name):
            load_model(p, device="cpu")
        count("models.config.absurd")
    assert all(n < 10**7 for n in built)


def test_architecture_size_is_exact(tmp_path: Path) -> None:
    """The size estimate behind the refusal matches the real model (hypothesis over small configs, every
    coupling, 1x1 form, split-prior network and dequantiser): the formula is a second description of
    the architecture, kept honest here (a meta-device build would give the count, but its first use
    imports torch._dynamo and sympy, seconds added to the first load_model)."""

    @fuzz_settings(40)
    @given(levels=st.integers(1, 3), steps=st.integers(1, 3), hidden=st.integers(1, 12), channels=st.integers(1, 4),
           coupling=st.sampled_from(["affine", "additive"]), lu=st.booleans(), extra=st.integers(0, 1),
           prior_hidden=st.integers(0, 5), dequant_hidden=st.integers(0, 3))
    def check(levels, steps, hidden, channels, coupling, lu, extra, prior_hidden, dequant_hidden) -> None:
        size = 2**levels * (1 + extra)
        cfg = GlowConfig(image_size=size, channels=channels, levels=levels, steps=steps, hidden=hidden, coupling=coupling, lu=lu,
                         prior_hidden=prior_hidden, dequant_hidden=dequant_hidden)
        m = Glow(cfg)
        assert architecture_size(cfg) == sum(v.numel() for v in m.state_dict().values())
        count("models.architecture_size")

    check()


# --------------------------------------------------------------------------- config.json fuzz
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=10,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))


def test_fuzz_config_json(saved, tmp_path_factory) -> None:
    src = saved["dir"]
    base = json.loads((src / "config.json").read_text())
    weights = (src / "model.safetensors").read_bytes()
    paths = [p for p in _paths(base) if p]
    folder = tmp_path_factory.mktemp("cfg")
    (folder / "model.safetensors").write_bytes(weights)

    @fuzz_settings(200)
    @given(data=st.data())
    def check(data) -> None:
        how = data.draw(st.sampled_from(["set", "delete", "add", "replace_all", "text"]))
        cfg = json.loads(json.dumps(base))
        if how == "text":
            text = data.draw(st.text(max_size=200))
        else:
            if how == "replace_all":
                cfg = data.draw(JSON)
            else:
                path = data.draw(st.sampled_from(paths))
                parent = cfg
                for k in path[:-1]:
                    parent = parent[k]
                if how == "set":
                    parent[path[-1]] = data.draw(JSON)
                elif how == "delete":
                    del parent[path[-1]]
                else:
                    target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
                    target[data.draw(st.text(max_size=8))] = data.draw(JSON)
            try:
                text = json.dumps(cfg)
            except ValueError:  # integers too long for json to write
                return
        (folder / "config.json").write_text(text, encoding="utf-8")
        try:  # a config that no longer fits its weights is reported on the weights file
            m = load_model(folder, device="cpu")
            assert torch.isfinite(m.sample(1, 1.0, seed=0)).all()
        except CheckpointError as e:
            assert "config.json" in str(e) or "model.safetensors" in str(e), str(e)
        count("models.config.fuzz")

    check()


def test_config_json_oddities(saved, tmp_path: Path) -> None:
    src = saved["dir"]
    good = (src / "config.json").read_text()
    cases = {
        "empty": "",
        "bom": "\ufeff" + good,
        "not_utf8": None,
        "deep": "[" * 100_000 + "]" * 100_000,
        "big_int": '{"format": ' + "7" * 5000 + "}",
        "nan": good.replace('"format_version": 1', '"format_version": NaN'),
        "list": "[]",
        "directions_not_objects": json.dumps({**json.loads(good), "directions": {"Smiling": [1, 2]}}),
        "weights_file_escapes": json.dumps({**json.loads(good), "weights": {"file": "../../etc/passwd"}}),
        "weights_file_pickle": json.dumps({**json.loads(good), "weights": {"file": "model.pt"}}),
        "weights_file_empty": json.dumps({**json.loads(good), "weights": {"file": ""}}),
        "weights_file_dot": json.dumps({**json.loads(good), "weights": {"file": "."}}),
    }
    for name, text in cases.items():
        p = tmp_path / name
        p.mkdir()
        (p / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
        if text is None:
            (p / "config.json").write_bytes(b"\xff\xfe" + good.encode("utf-16-le"))
        else:
            (p / "config.json").write_text(text, encoding="utf-8")
        if name == "directions_not_objects":  # odd but harmless: the direction loads, without its info
            m = load_model(p, device="cpu")
            assert "Smiling" in m.directions and m.direction_info["Smiling"] == {}
        else:
            if name == "weights_file_pickle":
                (p / "model.pt").write_bytes(pickle.dumps({"a": 1}))
            m = _load_or_clear_error(p, "config.json" if name not in ("weights_file_pickle",) else "model.pt")
            assert m is None or name == "bom", name
        count("models.config.oddities")


# ------------------------------------------------------------------------- malicious pickles
class _Payload:
    """Unpickling this runs a shell command that creates the file named by $GLOW_PWNED."""

    def __reduce__(self):
        return (os.system, (f"touch {os.environ['GLOW_PWNED']}",))


def _pickles() -> dict[str, bytes]:
    out = {f"p{proto}": pickle.dumps(_Payload(), protocol=proto) for proto in range(0, pickle.HIGHEST_PROTOCOL + 1)}
    import io

    buf = io.BytesIO()
    torch.save({"model": _Payload()}, buf)  # torch's zip format with the payload in data.pkl
    out["torch_zip"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save({"model": _Payload()}, buf, _use_new_zipfile_serialization=False)
    out["torch_legacy"] = buf.getvalue()
    return out


PLANT_NAMES = ["model.pt", "model.pth", "model.ckpt", "model.bin", "pytorch_model.bin", "model.pkl", "model.safetensors",
               "optimizer.pt", "trainer_state.safetensors", "trainer_state.pt", "images.npy", "latents.npz"]


def test_fuzz_malicious_pickles_never_run(saved, tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    from glowcore.cli.main import main

    root = tmp_path_factory.mktemp("pwn")
    marker = root / "PWNED"
    monkeypatch.setenv("GLOW_PWNED", str(marker))
    payloads = _pickles()
    # The payloads are live: unpickling one does create the marker (so the checks below can fail).
    pickle.loads(payloads["p2"])
    assert marker.exists()
    marker.unlink()

    @fuzz_settings(60)
    @given(payload=st.sampled_from(sorted(payloads)), name=st.sampled_from(PLANT_NAMES),
           entry=st.sampled_from(["load_file", "load_dir", "read_config", "cli_info", "cli_sample", "init_from", "resume", "edit_npz"]))
    def check(payload: str, name: str, entry: str) -> None:
        case = root / f"c{len(list(root.iterdir()))}"
        model_dir = case / "model"
        run = case / "run"
        model_dir.mkdir(parents=True)
        blob = payloads[payload]
        # a model folder whose weights are a pickle in disguise, with pickles planted around it
        (model_dir / "config.json").write_bytes((saved["dir"] / "config.json").read_bytes())
        (model_dir / name).write_bytes(blob)
        if name != "model.safetensors":
            (model_dir / "model.safetensors").write_bytes(blob)
        # a run folder whose checkpoint has pickles planted in it
        (run / "latest").mkdir(parents=True)
        for f in ("config.json", "model.safetensors"):
            (run / "latest" / f).write_bytes((saved["dir"] / f).read_bytes())
        (run / "latest" / "trainer_state.json").write_text(json.dumps({"format": "glow-explorer-trainer-state", "version": 1}))
        (run / "latest" / name).write_bytes(blob)
        if name != "trainer_state.safetensors":
            (run / "latest" / "trainer_state.safetensors").write_bytes(blob)
        (run / "run.json").write_text(json.dumps({"config": {"data": fashion_spec(), "out": str(run), "levels": 2, "steps": 1, "hidden": 4}}))
        target_file = model_dir / name
        codes = []
        if entry == "load_file":
            with pytest.raises(CheckpointError):
                load_model(target_file, device="cpu")
        elif entry == "load_dir":
            with pytest.raises(CheckpointError):
                load_model(model_dir, device="cpu")
        elif entry == "read_config":
            try:
                read_config(target_file)
            except CheckpointError:
                pass
        elif entry == "cli_info":
            codes.append(main(["info", str(target_file)]) if name.endswith(("safetensors", ".pt")) else main(["info", str(model_dir)]))
        elif entry == "cli_sample":
            codes.append(main(["sample", "--model", str(target_file), "-n", "1", "-o", str(case / "s.png")]))
        elif entry == "init_from":
            codes.append(main(["train", "--data", fashion_spec(), "--out", str(case / "new"), "--init-from", str(model_dir),
                               "--max-steps", "1", "--threads", "1", "--no-progress"]))
            codes.append(main(["train", "--data", fashion_spec(), "--out", str(case / "new2"), "--init-from", str(target_file),
                               "--max-steps", "1", "--threads", "1", "--no-progress"]))
        elif entry == "resume":
            codes.append(main(["train", "--resume", "--out", str(run), "--threads", "1", "--no-progress"]))
        else:
            npz = case / "latents.npz"
            npz.write_bytes(blob)
            obj = case / "obj.npz"
            np.savez(obj, latents=np.array([_Payload()], dtype=object), shapes=np.zeros((1, 3), np.int64))
            for f in (npz, obj):
                codes.append(main(["edit", str(f), "--model", str(saved["dir"]), "--set", "Smiling=1", "-o", str(case / "e.png")]))
        assert all(c != 0 for c in codes), codes
        assert not marker.exists(), f"the payload ran ({payload} as {name} via {entry})"
        count("models.pickle.fuzz")

    check()


# ------------------------------------------------------------------ latent files (glow encode)
def test_fuzz_latent_files(saved, tmp_path_factory) -> None:
    """``.npz`` latents given to glow edit / interpolate: truncated, wrong arrays, wrong shapes."""
    from glowcore.cli.commands._common import load_latents, save_latents

    m = load_model(saved["dir"], device="cpu")
    folder = tmp_path_factory.mktemp("npz")
    good = folder / "good.npz"
    save_latents(good, m.sample_latent(2, 0.7, seed=0), ["a", "b"])
    blob = good.read_bytes()
    arrays = st.one_of(
        st.just(np.zeros((2, m.dim), np.float32)),
        st.builds(lambda n, d: np.zeros((n, d), np.float32), st.integers(0, 3), st.integers(0, m.dim + 2)),
        st.builds(lambda s: np.array(s), st.lists(st.integers(-3, 2**40), max_size=4)),
        st.just(np.array(["x", "y"])), st.just(np.array(3.5)), st.just(np.zeros((2, 3, 4))),
        st.just(np.asarray(m.latent_shapes, np.int64)), st.just(np.asarray(m.latent_shapes, np.int64)[::-1].copy()),
    )

    @fuzz_settings(100)
    @given(kind=st.sampled_from(["cut", "arrays"]), cut=st.integers(0, len(blob) - 1),
           latents=arrays, shapes=arrays, names=st.one_of(st.none(), arrays))
    def check(kind, cut, latents, shapes, names) -> None:
        p = folder / "fuzzed.npz"
        if kind == "cut":
            p.write_bytes(blob[:cut])
        else:
            extra = {} if names is None else {"names": names}
            with open(p, "wb") as fh:
                np.savez(fh, latents=latents, shapes=shapes, **extra)
        try:
            lat, nms = load_latents(p, m)
        except ValueError as e:
            assert p.name in str(e), str(e)
        else:
            assert lat.shapes == m.latent_shapes and len(nms) == lat.batch_size
        count("latents.npz.fuzz")

    check()


def test_planted_pickles_beside_valid_checkpoints_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loads that succeed never touch the pickles planted beside them: a run folder, its
    checkpoints and its image cache full of payloads resume and seed new runs normally."""
    from PIL import Image

    from glowcore.cli.main import main
    from glowcore.training.train import TrainConfig, train

    marker = tmp_path / "PWNED"
    monkeypatch.setenv("GLOW_PWNED", str(marker))
    root = tmp_path / "faces"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    run, cache = tmp_path / "run", tmp_path / "cache"
    common = dict(data=f"folder:{root}", image_size=16, levels=2, steps=1, hidden=4, batch=8, warmup=1, val_images=2,
                  init_batch=8, samples=1, eval_minutes=600.0, threads=1, device="cpu", cache_dir=str(cache))
    train(TrainConfig(out=str(run), max_steps=2, **common), log=lambda _m: None)
    payloads = _pickles()
    planted = 0
    for folder in (run, run / "latest", run / "best", root):
        for name, blob in zip(["model.pt", "optimizer.pt", "trainer_state.pt", "model.ckpt", "pytorch_model.bin", "x.pkl"],
                              payloads.values()):
            (folder / name).write_bytes(blob)
            planted += 1
    for arr in cache.rglob("images.npy"):  # the decoded-image cache, swapped for a pickled object array
        np.save(arr, np.array([_Payload()], dtype=object), allow_pickle=True)
        planted += 1
    args = ["--threads", "1", "--no-progress"]
    assert main(["train", "--resume", "--out", str(run), "--max-steps", "3", *args]) == 0
    assert main(["train", "--data", f"folder:{root}", "--out", str(tmp_path / "run2"), "--init-from", str(run / "best"),
                 "--max-steps", "1", "--batch", "8", "--val-images", "2", "--init-batch", "8", "--samples", "1",
                 "--cache-dir", str(cache), "--device", "cpu", *args]) == 0
    assert main(["info", str(run / "latest")]) == 0
    assert not marker.exists(), "a planted payload ran"
    assert load_model(run / "latest", device="cpu").metadata["training"]["step"] == 3
    for arr in cache.rglob("images.npy"):  # the poisoned cache was refused and rebuilt
        assert np.load(arr, allow_pickle=False).dtype == np.uint8
    count("models.pickle.planted", planted)
