"""glow directions MODEL: fit edit directions (labels, example folders, principal directions) and
store them with the model."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "directions",
        help="fit attribute directions and store them with a model",
        description="Fit latent directions and save them with the model. One of: --data SPEC (one direction "
        "per label, e.g. the 40 CelebA attributes), --positive/--negative/--name (two sets of example photos), "
        "--pca K (principal directions pc1..pcK of the data's encodings). --list shows what a model has.",
    )
    p.add_argument("model_path", nargs="?", default=None, metavar="MODEL", help="model folder or .safetensors file (default: --model, else the bundled model)")
    p.add_argument("--model", default=None, help="same as MODEL")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--data", default=None, metavar="SPEC", help="labelled data: celeba:PATH, folder:PATH (labels.csv) or fashion-mnist[:PATH]")
    p.add_argument("--split", default="train", help="data split to fit on (default train)")
    p.add_argument("--attributes", nargs="+", default=None, metavar="NAME", help="only these labels (default all)")
    p.add_argument("--method", choices=("mean-diff", "logistic"), default="mean-diff", help="mean difference or logistic-regression normal (default mean-diff)")
    p.add_argument("--l2", type=float, default=1e-2, help="ridge strength of the logistic regression (default 0.01)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many images (a seeded random subset)")
    p.add_argument("--positive", nargs="+", default=None, metavar="PATH", help="folder(s) or photos that show the trait")
    p.add_argument("--negative", nargs="+", default=None, metavar="PATH", help="folder(s) or photos that lack it")
    p.add_argument("--name", default=None, help="name of the direction fitted from --positive/--negative")
    p.add_argument("--pca", type=int, default=None, metavar="K", help="fit the K principal directions pc1..pcK of --data (or --positive) encodings")
    p.add_argument("--prefix", default="", help="prefix for the stored names (e.g. 'lr_' to keep both methods)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("-o", "--out", default=None, help="save the model with its directions here (default: update MODEL in place; required for the bundled model)")
    p.add_argument("--list", action="store_true", help="list the model's directions and exit")
    p.add_argument("--remove", nargs="+", default=None, metavar="NAME", help="remove these directions")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit's subset and the PCA (default 0)")
    p.set_defaults(func=run)


def _list(model) -> None:
    if not model.directions:
        print("no directions")
        return
    print(f"{'name':24s} {'kind':9s} {'method':10s} details")
    for nm in sorted(model.directions):
        info = model.direction_info.get(nm, {})
        details = []
        for key in ("n_pos", "n_neg", "accuracy", "explained_variance", "scale"):
            if key in info:
                v = info[key]
                details.append(f"{key}={v:.4g}" if isinstance(v, float) else f"{key}={v}")
        print(f"{nm:24s} {str(info.get('kind', '?')):9s} {str(info.get('method', '?')):10s} {' '.join(details)}")


def _expand(paths: list[str]) -> list:
    from pathlib import Path

    from ...io.imagefiles import list_images

    out: list = []
    for item in paths:
        p = Path(item)
        out.extend(list_images(p) if p.is_dir() else [p])
    return out


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ...io.checkpoint import load_model, read_config, resolve_model_path, save_model
    from ...ops.directions import add_directions, fit_example_direction, fit_label_directions, principal_directions, remove_direction
    from ._common import console

    if args.model_path and args.model and args.model_path != args.model:
        raise ValueError("give the model either as MODEL or as --model, not two different ones")
    path = resolve_model_path(args.model_path or args.model)
    model = load_model(path, device=args.device)
    if args.list:
        _list(model)
        return 0
    from ._guard import check_outputs, inside_package

    if args.out is None and inside_package(path) is not None:
        raise ValueError(f"{path} is part of the installed package, which no command changes: give --out FOLDER to save a copy with the changes")
    check_outputs([args.out], [])
    if args.remove:
        mode = "--remove"
    elif args.pca is not None:
        mode = "--pca"
    elif args.positive or args.negative:
        mode = "--positive/--negative"
    elif args.data:
        mode = "--data"
    else:
        raise ValueError("choose one of --data SPEC, --positive/--negative with --name, --pca K, --remove NAME, or --list")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    rng = np.random.default_rng(args.seed)

    def subset(n: int) -> np.ndarray | None:
        if args.limit is None or args.limit >= n:
            return None
        if args.limit < 2:
            raise ValueError("--limit must be at least 2")
        return np.sort(rng.choice(n, args.limit, replace=False))

    vecs: dict = {}
    infos: dict = {}
    if mode == "--remove":
        for nm in args.remove:
            remove_direction(model, nm)
        print(f"removed {', '.join(args.remove)}")
    elif mode == "--positive/--negative":
        if not (args.positive and args.negative and args.name):
            raise ValueError("--positive and --negative need each other and --name")
        bar = console("examples")
        vec, info = fit_example_direction(model, _expand(args.positive), _expand(args.negative), method=args.method, batch_size=args.batch_size, progress=bar, l2=args.l2, return_info=True)
        bar.close()
        vecs, infos = {args.prefix + args.name: vec}, {args.prefix + args.name: info}
    else:
        if mode == "--pca" and args.positive and not args.data:
            images = _expand(args.positive)
            from ...ops.photo import load_photos

            images, _ = load_photos(images, model.config.image_size, channels=model.config.channels, skip_bad=True)
            labels, label_names = None, []
        else:
            if not args.data:
                raise ValueError("--pca needs images: --data SPEC or --positive PATH...")
            from ...data.datasets import load_dataset

            bar = console("loading")
            ds = load_dataset(args.data, model.config.image_size, split=args.split, progress=bar)
            bar.close()
            print(ds.describe())
            ds.check_fits(model.config.image_size, model.config.channels)
            images, labels, label_names = ds.images, ds.labels, list(ds.label_names)
        idx = subset(len(images))
        if idx is not None:
            images = images[idx]
            labels = labels[idx] if labels is not None else None
        bar = console("fitting")
        if mode == "--pca":
            vecs, infos = principal_directions(model, images, args.pca, batch_size=args.batch_size, progress=bar, seed=args.seed, return_info=True)
        else:
            if labels is None or not label_names:
                raise ValueError(f"{args.data} has no labels to fit directions from (use --pca, or a labels.csv)")
            names = args.attributes or label_names
            missing = [nm for nm in names if nm not in label_names]
            if missing:
                raise ValueError(f"{args.data} has no label(s) {', '.join(missing)}; it has: {', '.join(label_names)}")
            cols = [label_names.index(nm) for nm in names]
            y = np.asarray(labels)[:, cols]
            vecs, infos = fit_label_directions(model, images, y, names, method=args.method, batch_size=args.batch_size, progress=bar, l2=args.l2, return_info=True)
            for info in infos.values():
                info["data"] = f"{args.data} [{args.split}]"
        bar.close()
        vecs = {args.prefix + k: v for k, v in vecs.items()}
        infos = {args.prefix + k: v for k, v in infos.items()}
    if vecs:
        add_directions(model, vecs, infos)
        for nm, info in infos.items():
            extra = ", ".join(f"{k}={info[k]:.4g}" if isinstance(info[k], float) else f"{k}={info[k]}" for k in ("n_pos", "n_neg", "accuracy", "explained_variance") if k in info)
            print(f"{nm}: |v| = {float(vecs[nm].norm()):.2f}" + (f" ({extra})" if extra else ""))
    out = args.out or path
    dtype_name = (read_config(path).get("weights") or {}).get("dtype", "float32")
    import torch

    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype_name, torch.float32)
    save_model(model, out, dtype=dtype)
    print(f"saved {out} ({len(model.directions)} direction(s))")
    return 0
