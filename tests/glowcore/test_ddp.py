"""Two CPU processes under torchrun (gloo): DistributedDataParallel keeps the ranks identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..testdata import fashion_spec

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import torch
    from safetensors.torch import save_file
    from glowcore.training.train import TrainConfig, train

    out = Path(sys.argv[1])
    cfg = TrainConfig(data=sys.argv[2], out=str(out / "run"), levels=2, steps=2, hidden=16, batch=32,
                      lr=2e-3, warmup=5, max_steps=12, val_images=64, init_batch=64, samples=2,
                      threads=1, eval_minutes=60.0, device="cpu")
    res = train(cfg, log=lambda m: None)
    rank = int(os.environ["RANK"])
    state = {k: v.detach().cpu().contiguous() for k, v in res.model.state_dict().items()}
    save_file(state, str(out / f"rank{rank}.safetensors"))
    """
)


def test_two_gloo_ranks_stay_identical(tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(tmp_path), fashion_spec()],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    run = tmp_path / "run"
    record = json.loads((run / "run.json").read_text())
    assert record["world_size"] == 2
    meta = json.loads((run / "latest" / "trainer_state.json").read_text())
    assert meta["step"] == 12 and meta["images_seen"] == 12 * 32
    saved = load_file(str(run / "latest" / "model.safetensors"))
    for k in r0:
        assert torch.equal(saved[k], r0[k]), k  # rank 0 wrote the checkpoint of the shared weights
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # one writer
