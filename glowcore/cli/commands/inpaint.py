"""glow inpaint IMAGE --mask MASK.png --candidates 4: fill in the masked part of a face."""

from __future__ import annotations

import argparse

from ._common import add_model_args
from ._guard import add_overwrite_arg
from .edit import _box


def add_parser(sub) -> None:
    from ...ops.inpaint import METHODS

    p = sub.add_parser(
        "inpaint",
        help="fill in a masked region of a face",
        description="Complete the painted (white or opaque) region of MASK in IMAGE with the model: MAP "
        "completion in latent space, several candidates from different starts. The mask may be painted "
        "over the original photo (it is framed the same way) or at the model's size.",
    )
    p.add_argument("image", help="photo to complete, or a folder of photos (with --mask a folder of masks of the same names, -o an output folder)")
    p.add_argument("--mask", required=True, help="mask image, the photo's size or the model's: light pixels (gray >= 128), "
                   "or opaque ones over transparency, are filled; dark or transparent ones are kept")
    add_model_args(p)
    p.add_argument("--candidates", type=int, default=4, help="number of completions (default 4)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (default: 20 for map, 15 for lbfgs)")
    p.add_argument("-t", "--temperature", type=float, default=0.7, help="spread of the random starts and the prior (default 0.7)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--method", choices=METHODS, default="map", help="map (Adam) or lbfgs (default map)")
    p.add_argument("-o", "--out", default="inpainted.png", help="output PNG: the masked input, then the candidates (default inpainted.png)")
    p.add_argument("--each", action="store_true", help="also save each candidate as OUT-1.png, OUT-2.png, ...")
    p.add_argument("--scale", type=int, default=1, help="upscale factor for the PNG (default 1)")
    p.add_argument("--no-frame", action="store_true", help="centre-crop the photo instead of looking for a face (implies --face-only)")
    p.add_argument("--face-only", action="store_true", help="write model-size faces even when the mask covers the full photo")
    p.add_argument("--box", type=_box, default=None, metavar="X,Y,W,H", help="the face's box in photo pixels, when none is found")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...base.limits import MAX_CANDIDATES
    from ...io.checkpoint import load_model
    from ._common import output_path
    from ._guard import check_model_decodes, check_outputs, model_files, seed, temperature

    if not 1 <= args.candidates <= MAX_CANDIDATES:
        raise ValueError(f"--candidates must be from 1 to {MAX_CANDIDATES}, got {args.candidates}")
    if args.scale < 1:
        raise ValueError(f"--scale must be at least 1, got {args.scale}")
    temperature(args.temperature)
    seed(args.seed)
    if Path(args.image).is_dir():
        return _inpaint_folder(args)
    out = output_path(args.out, (".png",), "output")
    outputs = [out] + ([out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(args.candidates)] if args.each else [])
    check_outputs(outputs, [args.image, args.mask, *model_files(args.model)], args.overwrite_input)
    model = load_model(args.model, device=args.device)
    check_model_decodes(model, model.source_path)
    return _inpaint_one(args, model, out)


def _inpaint_one(args: argparse.Namespace, model, out) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from ...base.images import to_tensor
    from ...io.grid import save_grid
    from ...ops.inpaint import load_mask
    from ...ops.photo import crop_like, frame_photo
    from ._mask import check_mask

    size, channels = model.config.image_size, model.config.channels
    if not (args.face_only or args.no_frame) and channels == 3 and _inpaint_full_size(args, model, out):
        return 0
    framed = frame_photo(args.image, size, not args.no_frame, channels=channels)
    print(framed.message)
    mask_path = Path(args.mask)
    check_mask(mask_path, framed.source_size, size)
    mask_size = _image_size(mask_path)
    if mask_size is not None and mask_size == framed.source_size and mask_size != (size, size):
        # painted over the original photo: crop it like the photo
        raw = load_mask(mask_path, mask_size[1], mask_size[0])
        mask = crop_like(raw.astype(np.uint8) * 255, framed, size) >= 128
    else:
        mask = load_mask(mask_path, size, size)
    print(f"mask: {int(mask.sum())} of {mask.size} pixels to fill")
    if not mask.any():
        raise ValueError(f"{mask_path}: nothing to fill: no pixel of the mask is light (gray >= 128) or opaque")
    if mask.all():
        print("mask: every pixel is to be filled, nothing of the photo is kept (the candidates are samples)")
    result = _fill(args, model, framed.image, mask)
    x = to_tensor(framed.image, channels).to(result.device)
    shown = torch.where(torch.from_numpy(mask).to(result.device), torch.ones_like(x), x)
    save_grid(torch.cat([shown, result]), out, ncol=args.candidates + 1, scale=args.scale, finite=True)
    print(f"wrote {out}: masked input, then {args.candidates} candidate(s), best first")
    if args.each:
        for i in range(args.candidates):
            each = out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
            save_grid(result[i : i + 1], each, ncol=1, scale=args.scale, pad=0)
            print(f"wrote {each}")
    return 0


def _inpaint_folder(args: argparse.Namespace) -> int:
    """Every photo under the folder with the mask of the same name (any image suffix, same
    sub-folder) in the --mask folder, each written to the output folder as NAME.png (the full-size
    photo with the fill when its mask is the photo's size). A photo without a mask, or that fails,
    gets one line and the others go on."""
    import contextlib
    import io
    from pathlib import Path

    from ...io.checkpoint import load_model
    from ...io.imagefiles import list_images
    from ._common import console
    from ._guard import check_model_decodes
    from .edit import _check_folders

    src, masks_dir, dst = Path(args.image), Path(args.mask), Path(args.out)
    if not masks_dir.is_dir():
        raise ValueError(f"{src} is a folder: --mask must name a folder of masks, one per photo with the photo's name")
    _check_folders(args, default_out="inpainted.png", what="filled")
    masks = {p.relative_to(masks_dir).with_suffix(""): p for p in list_images(masks_dir)}
    files = list_images(src)
    model = load_model(args.model, device=args.device)
    check_model_decodes(model, model.source_path)
    bar = console("filling")
    failed = 0
    for i, f in enumerate(files):
        rel = f.relative_to(src)
        mask = masks.get(rel.with_suffix(""))
        out = (dst / rel).with_suffix(".png")
        try:
            if mask is None:
                raise ValueError(f"{f}: not filled: no mask {rel.with_suffix('')}.* in {masks_dir}")
            out.parent.mkdir(parents=True, exist_ok=True)
            one = argparse.Namespace(**{**vars(args), "image": str(f), "mask": str(mask), "out": str(out), "box": None})
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                _inpaint_one(one, model, out)
        except (ValueError, OSError) as e:
            failed += 1
            why = str(e)
            bar.write(why if "not filled" in why else (f"not filled: {why}" if why.startswith(str(f)) else f"{f}: not filled: {why}"))
        bar(i + 1, len(files), f.name)
    bar.close()
    print(f"filled {len(files) - failed} of {len(files)} photos into {dst}" + (f"; {failed} not filled (named above)" if failed else ""))
    return 0 if not failed else 1


def _image_size(path) -> tuple[int, int] | None:
    """An image file's (width, height), or None when it cannot be read (load_mask then explains)."""
    from pathlib import Path

    from PIL import Image

    if not Path(path).is_file():
        return None
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001
        return None


def _inpaint_full_size(args: argparse.Namespace, model, out) -> bool:
    """A mask painted over a photo larger than the model: fill the face and paste the fill back
    into the full-size photo. False (nothing done) when the mask is not the photo's size."""
    from pathlib import Path

    from ...ops.align import align, read_photo
    from ...ops.inpaint import load_mask
    from ...ops.paste import mask_to_face, paste_fill

    size = model.config.image_size
    mask_size = _image_size(Path(args.mask))
    if mask_size is None:
        return False
    photo = read_photo(args.image)
    h, w = photo.shape[:2]
    if max(w, h) <= size or mask_size != (w, h):
        return False
    aligned = align(photo, size, box=args.box, name=str(args.image))
    print(aligned.message)
    painted = load_mask(Path(args.mask), h, w)
    face_mask = mask_to_face(aligned, painted)
    if not face_mask.any():
        raise ValueError(f"{args.mask}: the painted area does not touch the face (the model fills only the face's {size}-px frame)")
    print(f"mask: {int(painted.sum())} photo pixels painted, {int(face_mask.sum())} of the face's {size}x{size} to fill "
          f"(filled areas are at the model's resolution, {size} px across the face)")
    result = _fill(args, model, aligned.face, face_mask)
    _save_png(paste_fill(aligned, result[0], photo, painted), out)
    print(f"wrote {out} ({w}x{h}, the best of {args.candidates} candidate(s) pasted into the photo)")
    if args.each:
        for i in range(args.candidates):
            each = out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
            _save_png(paste_fill(aligned, result[i], photo, painted), each)
            print(f"wrote {each}")
    return True


def _save_png(arr, path) -> None:
    from PIL import Image

    from ...io.fileio import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def _fill(args: argparse.Namespace, model, image, mask):
    """The inpainting candidates for ``image`` (model size) and its boolean ``mask``, with progress."""
    from ...ops.inpaint import inpaint
    from ._common import console

    bar = console("inpainting")
    try:
        return inpaint(model, image, mask, candidates=args.candidates, steps=args.steps, temperature=args.temperature,
                       seed=args.seed, method=args.method, progress=bar)
    finally:
        bar.close()
