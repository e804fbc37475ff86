"""From a training checkpoint to a model ready to bundle, with the bundled model's whole edit
recipe, in one resumable command: the steps sessions 6-10 ran by hand (docs/edit_check.md).

    python scripts/ship_model.py runs/ema1/best --run-dir runs/ema1 --work runs/ship --out runs/ship/model

1. ``bundle_model.py``: bits/dim on the validation partition, the 40 attribute directions fitted
   (logistic, 10,000 train faces), each with the reference model's scale (``--reference``, default
   the bundled ``celeba64``), samples and card figures;
2. ``benchmarks/edit_calibration.py``: the five edited attributes refitted and their scales chosen
   out of sample (400 other train faces, 85% on/off), each with the conditioning set the bundled
   model ships (``RECIPE``); Young's scale for adding aims for 90% (a second run, cached fit);
3. ``apply_calibration.py`` puts them in; with ``--sampling-prior``, ``fit_sampling_prior.py`` fits
   the top level's sampling prior to 12,000 train faces (the bundled model has none: it did not
   measure better, docs/sampling.md); ``benchmarks/edit_bounds.py`` measures how far each direction
   may move a face before the picture breaks, and ``apply_calibration.py --bounds`` adds it;
4. the checks a decision needs, none of which chose anything above: the edit figures on
   validation faces 2300-3299 (``--report-skip``), the sample metric at T=0.7.

Each step writes its output atomically under ``--work`` and is skipped when the output is already
there, so an interrupted run resumes where it stopped. ``--dry-run`` prints the commands. Nothing
is written into ``assets/``: copying ``--out`` there is a decision made on the figures (issue #15:
a model ships only when it beats the bundled one on validation bits/dim and on the sample metric).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACIAL_HAIR = ("No_Beard", "Goatee", "Sideburns", "5_o_Clock_Shadow", "Mustache")
# what each edited attribute holds fixed by default, as in the bundled model (docs/edit_check.md, session 8)
RECIPE = {
    "Smiling": "key",
    "Male": "all," + ",".join("-" + n for n in FACIAL_HAIR),
    "Eyeglasses": "key,Blurry,Attractive",
    "Blond_Hair": "none",
}
AMOUNTS = ("0.5", "1", "1.5", "2", "2.5", "3", "4", "5", "6", "7", "8")


def plan(args) -> list[tuple[str, Path, list[str]]]:
    """The steps: (name, output that marks it done, command)."""
    w = Path(args.work)
    py = [sys.executable]
    data = ["--data", f"celeba:{args.data}"]
    cal = py + ["benchmarks/edit_calibration.py", "--scale-faces", "400", "--threads", str(args.threads),
                "--directions-cache", str(w / "dirs.safetensors"), *data]
    bundle = py + ["scripts/bundle_model.py", args.checkpoint, "--data", args.data, "--method", "logistic",
                   "--fit-images", "10000", "--scales", str(w / "scales.json"), "--out", str(w / "m0"),
                   "--threads", str(args.threads)] + (["--run-dir", args.run_dir] if args.run_dir else [])
    fixed = ["--fixed-sets", "ship"] + [f"{a}={s}" for a, s in RECIPE.items()]
    last = w / ("m3" if args.sampling_prior else "m2")  # the model the bounds are measured on and added to
    return [
        ("bundle", w / "m0" / "card.json", bundle),
        ("calibrate", w / "ship.safetensors", cal + [str(w / "m0"), "--variants", "ship", *fixed, "--attrs", *RECIPE,
                                                    "--no-baseline", "--amounts", *AMOUNTS, "--json", str(w / "cal_ship.json"),
                                                    "--save-directions", str(w / "ship.safetensors"), "--ship-variant", "ship"]),
        ("calibrate Young", w / "young.safetensors", cal + [str(w / "m0"), "--variants", "key", "--attrs", "Young", "--target-on", "0.90",
                                                           "--no-baseline", "--amounts", *AMOUNTS, "--json", str(w / "cal_young.json"),
                                                           "--save-directions", str(w / "young.safetensors"), "--ship-variant", "key"]),
        ("apply", w / "m1" / "config.json", py + ["scripts/apply_calibration.py", str(w / "m0"), "--directions", str(w / "ship.safetensors"), "--out", str(w / "m1")]),
        ("apply Young", w / "m2" / "config.json", py + ["scripts/apply_calibration.py", str(w / "m1"), "--directions", str(w / "young.safetensors"), "--out", str(w / "m2")]),
        *([("sampling prior", w / "m3" / "config.json", py + ["scripts/fit_sampling_prior.py", str(w / "m2"), *data, "--out", str(w / "m3"),
                                                             "--threads", str(args.threads)])] if args.sampling_prior else []),
        ("bounds", w / "bounds.json", py + ["benchmarks/edit_bounds.py", str(last), *data, "--faces", "40", "--report-faces", "40",
                                            "--quantile", "0.05", "--threads", str(args.threads), "--json", str(w / "bounds.json")]),
        ("apply bounds", Path(args.out) / "config.json", py + ["scripts/apply_calibration.py", str(last), "--bounds", str(w / "bounds.json"), "--out", args.out]),
        ("edits grid", Path(args.out) / "edits.png", py + ["scripts/edits_grid.py", args.out]),
        ("report edits", w / "report_edits.json", cal + [args.out, "--variants", "--report-skip", "2300", "--report-faces", "1000",
                                                         "--json", str(w / "report_edits.json")]),
        ("report samples", w / "report_samples.json", py + ["benchmarks/sample_quality.py", args.out, "--samples", "1000", "--settings", "0.7",
                                                            "--threads", str(args.threads), "--data", f"celeba:{args.data}",
                                                            "--json", str(w / "report_samples.json")]),
    ]


def reference_scales(reference: str) -> dict[str, float]:
    """Each direction's scale for adding in the reference model (the ones no calibration chose
    came from the edit check; the calibrated ones are chosen again in step 2)."""
    sys.path.insert(0, str(ROOT))
    from glowcore import load_model

    model = load_model(reference, device="cpu")
    return {name: float(info["scale"]) for name, info in model.direction_info.items() if "scale" in info}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="model folder of a training run, e.g. runs/x/best")
    p.add_argument("--work", required=True, help="folder for the steps' outputs (resumes from what is there)")
    p.add_argument("--out", required=True, help="model folder to write (not in assets/)")
    p.add_argument("--run-dir", default=None, help="the training run, for its metadata (default: the checkpoint's parent)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "celeba64"), help="the CelebA 64x64 folder")
    p.add_argument("--reference", default="celeba64", help="model whose scales the uncalibrated directions keep")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sampling-prior", action="store_true",
                   help="also fit the top level's sampling prior (scripts/fit_sampling_prior.py); the sample report then measures it")
    p.add_argument("--dry-run", action="store_true", help="print the steps and whether each is done")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if (ROOT / "assets").resolve() in out.parents or out == Path(args.checkpoint).resolve():
        p.error(f"--out {args.out}: write the new model outside assets/ and not over its checkpoint; what ships is decided on its figures")
    if not args.dry_run and not (Path(args.checkpoint) / "config.json").is_file():
        p.error(f"{args.checkpoint}: no config.json there; give a model folder such as runs/x/best")
    if not args.dry_run and not Path(args.data).is_dir():
        p.error(f"--data {args.data}: no such folder (the CelebA 64x64 faces with their labels)")
    work = Path(args.work)
    steps = plan(args)
    if args.dry_run:
        for name, done, cmd in steps:
            print(f"[{'done' if done.exists() else 'todo'}] {name}: {' '.join(cmd)}")
        return 0
    work.mkdir(parents=True, exist_ok=True)
    scales = work / "scales.json"
    if not scales.exists():
        tmp = scales.with_suffix(".tmp")
        tmp.write_text(json.dumps(reference_scales(args.reference), indent=1) + "\n")
        os.replace(tmp, scales)
    for name, done, cmd in steps:
        if done.exists():
            print(f"[done] {name}", flush=True)
            continue
        print(f"[run] {name}: {' '.join(cmd)}", flush=True)
        rc = subprocess.call(cmd, cwd=ROOT)
        if rc != 0 or not done.exists():
            print(f"ship_model: step {name!r} failed (exit {rc}); fix it and run the same command again to resume", file=sys.stderr)
            return 1
    m0 = work / "m0"
    for extra in ("samples.png", "card.json"):
        if not (out / extra).exists():
            shutil.copy2(m0 / extra, out / extra)
    print(f"wrote {args.out}; figures in {work / 'report_edits.json'} and {work / 'report_samples.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
