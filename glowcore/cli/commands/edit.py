"""glow edit IMAGE --set NAME=AMOUNT ...: move a face along attribute directions."""

from __future__ import annotations

import argparse
import sys

from ...base.limits import MAX_AMOUNT
from ._common import add_model_args
from ._guard import add_overwrite_arg


def _amount(text: str) -> tuple[str, float]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=AMOUNT (e.g. Smiling=1.0), got {text!r}")
    name, _, value = text.rpartition("=")
    try:
        amount = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"amount of {name!r} must be a number, got {value!r}") from None
    if not abs(amount) <= MAX_AMOUNT:  # (NaN too) far beyond, faces turn to two-colour noise
        raise argparse.ArgumentTypeError(f"amount of {name!r} must be a number from -{MAX_AMOUNT:g} to {MAX_AMOUNT:g}, got {value!r}")
    return name.strip(), amount


def _box(text: str) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4 or vals[2] <= 0 or vals[3] <= 0:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H in photo pixels with W and H > 0 (e.g. 120,80,200,200), got {text!r}")
    return vals  # type: ignore[return-value]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "edit",
        help="edit a face along attribute directions",
        description="Encode a photo (or take a latent file from glow encode, or seed:N for a sample) and move it "
        "along named directions: glow edit face.jpg --set Smiling=1.0 --set Young=-0.5 -o out.png. "
        "Amount 1.0 is a clear but natural change.",
    )
    p.add_argument("image", nargs="?", help="photo, folder of photos (edited into the folder -o names), latent .npz file, or seed:N")
    add_model_args(p)
    p.add_argument("--set", dest="amounts", action="append", type=_amount, default=[], metavar="NAME=AMOUNT", help="direction and amount (repeatable)")
    p.add_argument("--fixed", action="append", default=[], metavar="NAME", help="keep this direction unchanged (InterFaceGAN conditional edit; repeatable or comma-separated); "
                   "replaces the directions the model holds fixed by default for the edited ones (see --list)")
    p.add_argument("--alone", action="store_true", help="edit each direction alone, holding nothing fixed (not even what the model holds by default)")
    p.add_argument("--unbounded", action="store_true", help="add the amounts as they are, past the directions' bounds (where the model's pictures break; by default "
                   "an edit moves a face toward a bound and never past it)")
    p.add_argument("--levels", type=int, nargs="+", default=None, metavar="I", help="limit the edit to these levels (0 = finest ... -1 = coarsest)")
    p.add_argument("--sweep", type=float, nargs="+", default=None, metavar="F", help="instead of one result, a row of results at these multiples of the amounts (e.g. -1 -0.5 0 0.5 1)")
    p.add_argument("-o", "--out", default="edited.png", help="output image (default edited.png); for a folder of photos, the output folder")
    p.add_argument("--compare", action="store_true", help="put the original (reconstruction) left of the result")
    p.add_argument("--scale", type=int, default=1, help="upscale factor for the PNG (default 1)")
    p.add_argument("--no-frame", action="store_true", help="centre-crop the photo instead of looking for a face (implies --face-only)")
    p.add_argument("--face-only", action="store_true", help="write the model-size face instead of the full-size photo")
    p.add_argument("--box", type=_box, default=None, metavar="X,Y,W,H", help="the face's box in photo pixels, when none is found")
    paste_mode = p.add_mutually_exclusive_group()
    paste_mode.add_argument("--spread", dest="spread", action="store_true", default=True, help="full-size photos (the default): paste the whole change the edit made up to the face frame's edge and continue it smoothly past it (hair edits keep their strength; a background tint the edit makes spreads too)")
    paste_mode.add_argument("--face-mask", dest="spread", action="store_false", help="full-size photos: paste the change inside a feathered mask within the face frame instead (keeps the background around the head; weakens edits that reach the frame's edge, e.g. hair)")
    p.add_argument("--face", type=int, default=0, metavar="N", help="which face when there are several: 0 = the largest (default), 1 = the next, ...")
    p.add_argument("-t", "--temperature", type=float, default=None, help="temperature for seed:N inputs, every level (default: 0.7 with the finest levels at 0.85, as glow sample and the explorer draw them)")
    p.add_argument("--latent-out", default=None, help="also save the edited latent(s) as .npz")
    p.add_argument("--list", action="store_true", help="list the model's directions and exit")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...io.checkpoint import load_model
    from ...io.grid import image_format
    from ._guard import check_model_decodes, check_outputs, model_files, sampling_temperatures

    args.temperature, args.detail_temperature = sampling_temperatures(args.temperature, None)
    if args.scale < 1:
        raise ValueError(f"--scale must be at least 1, got {args.scale}")
    folder = not args.list and bool(args.image) and Path(args.image).is_dir()
    if folder:
        _check_folders(args)
    elif not args.list:
        image_format(args.out)
        check_outputs([args.out, args.latent_out], [args.image, *model_files(args.model)], args.overwrite_input)
    model = load_model(args.model, device=args.device)
    if not args.list:
        check_model_decodes(model, model.source_path)
    if args.list:
        names = sorted(model.directions)
        if not names:
            print("this model has no directions (fit some with `glow directions`)")
        for nm in names:
            info = model.direction_info.get(nm, {})
            held = f"  holds fixed: {', '.join(info['fixed'])}" if info.get("fixed") else ""
            b = info.get("bounds")
            bound = f"  bounds: {', '.join('-' if v is None else f'{v:g}' for v in b)}" if b else ""
            print(f"{nm:24s} {info.get('method', '?'):10s} {info.get('kind', '')}{held}{bound}")
        return 0
    if not args.image:
        raise ValueError("give a photo, a latent file or seed:N to edit (or --list)")
    if not args.amounts:
        raise ValueError("nothing to do: give at least one --set NAME=AMOUNT")
    amounts: dict[str, float] = {}
    for name, value in args.amounts:
        amounts[name] = amounts.get(name, 0.0) + value
    given = [f.strip() for item in args.fixed for f in item.split(",") if f.strip()]
    if args.alone and given:
        raise ValueError("--alone holds nothing fixed; leave out --fixed, or --alone")
    # None: what each direction holds by default (its "fixed" list in the model); a list replaces that
    fixed: list | None = [] if args.alone else (given or None)
    if folder:
        return _edit_folder(args, model, amounts, fixed)
    return _edit_one(args, model, amounts, fixed)


def _held(model, amounts: dict, fixed: list | None) -> list:
    """Every direction the edit holds fixed (the caller's, or the edited directions' defaults)."""
    from ...ops.directions import fixed_sets

    sets = fixed_sets(model, [k for k, v in amounts.items() if v], fixed)
    return [nm for nm in dict.fromkeys(f for held in sets.values() for f in held) if nm not in amounts]


def _report(model, latent, edited, amounts: dict, fixed: list | None) -> None:
    from ...ops.directions import project

    held = _held(model, amounts, fixed)
    names = list(amounts) + held
    before = project(model, latent[:1], names)
    after = project(model, edited[-1:], names)
    for nm in names:
        print(f"{nm}: {float(before[nm][0]):+.2f} -> {float(after[nm][0]):+.2f}" + (" (fixed)" if nm in held else ""))


def _edit_one(args: argparse.Namespace, model, amounts: dict, fixed: list | None) -> int:
    import torch

    from ...ops.directions import edit
    from ...io.grid import save_grid
    from ._common import inputs_to_latent, save_latents

    if _full_size(args, model):
        return _edit_full_size(args, model, amounts, fixed)
    latent, names = inputs_to_latent(model, [args.image], frame_face=not args.no_frame, temperature=args.temperature, detail_temperature=args.detail_temperature)
    if args.sweep:
        factors = list(args.sweep)
        edited = edit(model, latent[:1], {k: [v * f for f in factors] for k, v in amounts.items()}, fixed=fixed, levels=args.levels, bounded=not args.unbounded)
    else:
        edited = edit(model, latent, amounts, fixed=fixed, levels=args.levels, bounded=not args.unbounded)
    with torch.inference_mode():
        out = model.decode(edited)
        if args.compare:
            out = torch.cat([model.decode(latent[:1]), out])
    save_grid(out, args.out, ncol=out.shape[0], scale=args.scale, finite=True)
    _report(model, latent, edited, amounts, fixed)
    if args.latent_out:
        save_latents(args.latent_out, edited, [f"{names[0]} edited"] * edited.batch_size)
    print(f"wrote {args.out}")
    return 0


def _full_size(args: argparse.Namespace, model) -> bool:
    """A photo larger than the model, edited into the full-size photo (not --face-only, --no-frame,
    --sweep or --compare, which write model-size faces)."""
    from ._common import LATENT_SUFFIX

    item = args.image
    if args.face_only or args.no_frame or args.sweep or args.compare or model.config.channels != 3 or item.startswith("seed:") or item.lower().endswith(LATENT_SUFFIX):
        return False
    from pathlib import Path

    from PIL import Image

    if not Path(item).is_file():  # a pipe would block here: the photo loader names the problem
        return False
    try:
        with Image.open(item) as im:  # reads the header only
            w, h = im.size
    except Exception:  # not a readable image: the model-size path says why
        return False
    return max(w, h) > model.config.image_size


def _edit_full_size(args: argparse.Namespace, model, amounts: dict, fixed: list | None) -> int:
    from pathlib import Path

    import torch
    from PIL import Image

    from ...ops.align import align, read_photo
    from ...ops.directions import _unknown, edit
    from ...io.fileio import atomic_path
    from ...ops.paste import paste
    from ._common import save_latents

    src, dst = Path(args.image), Path(args.out)
    suffix = dst.suffix.lower()
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
    if suffix not in formats:
        raise ValueError(f"{dst}: the output must end in {', '.join(formats)}")
    for name in list(amounts) + (fixed or []):
        if name not in model.directions:
            raise ValueError(_unknown(model, name))
    photo = read_photo(src)
    try:
        aligned = align(photo, model.config.image_size, box=args.box, face=args.face, name=str(src))
    except ValueError as e:
        if args.box is None and "no face found" in str(e):
            raise ValueError(f"{e}: use --box X,Y,W,H, or --face-only --no-frame for a {model.config.image_size}-px centre crop") from None
        raise
    print(aligned.message, file=sys.stderr)
    latent = model.encode(aligned.face[None])
    edited = edit(model, latent, amounts, fixed=fixed, levels=args.levels, bounded=not args.unbounded)
    with torch.inference_mode():
        recon, out_face = model.decode(latent), model.decode(edited)
    result = paste(aligned, out_face[0], recon[0], photo, spread=args.spread)
    with atomic_path(dst, suffix=suffix) as tmp:
        Image.fromarray(result).save(tmp, format=formats[suffix], **({"quality": 95} if formats[suffix] in ("JPEG", "WEBP") else {}))
    _report(model, latent, edited, amounts, fixed)
    if args.latent_out:
        save_latents(args.latent_out, edited, [f"{src} edited"])
    print(f"wrote {dst} ({result.shape[1]}x{result.shape[0]}, the face edited at {model.config.image_size} px and pasted back)")
    return 0


#: Suffixes a folder's photos keep in the output folder (others are written as PNG).
KEEP_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


def _check_folders(args: argparse.Namespace, default_out: str = "edited.png", what: str = "edited") -> None:
    """A folder in: -o must name a folder that is neither the input folder nor inside it, nor
    inside the installed package."""
    from pathlib import Path

    from ._guard import _resolved, inside_package

    src, dst = Path(args.image), Path(args.out)
    if args.out == default_out or dst.suffix.lower() in KEEP_SUFFIXES:
        raise ValueError(f"{src} is a folder: give -o OUT_FOLDER for the {what} photos (same names)")
    if dst.exists() and not dst.is_dir():
        raise ValueError(f"{dst}: is a file; -o must name a folder when the input is a folder")
    s, d = _resolved(src), _resolved(dst)
    if d == s or s in d.parents:
        raise ValueError(f"{dst}: the output folder must not be the input folder or inside it (the photos there would be replaced)")
    if inside_package(dst) is not None:
        raise ValueError(f"{dst}: inside the installed package; choose another output folder")
    if getattr(args, "latent_out", None) or getattr(args, "sweep", None) or getattr(args, "compare", False) or args.box:
        raise ValueError("--latent-out, --sweep, --compare and --box take one photo, not a folder")


def _edit_folder(args: argparse.Namespace, model, amounts: dict, fixed: list | None) -> int:
    """Every photo under the folder, edited into the output folder (same names and sub-folders;
    --face-only writes PNG faces). A photo that fails gets one line and the rest go on."""
    import contextlib
    import io
    from pathlib import Path

    from ...io.imagefiles import list_images
    from ._common import console

    src, dst = Path(args.image), Path(args.out)
    files = list_images(src)
    bar = console("editing")
    failed: list[str] = []
    for i, f in enumerate(files):
        out = dst / f.relative_to(src)
        if args.face_only or args.no_frame or out.suffix.lower() not in KEEP_SUFFIXES:
            out = out.with_suffix(".png")
        one = argparse.Namespace(**{**vars(args), "image": str(f), "out": str(out), "box": None})
        said = io.StringIO()
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                _edit_one(one, model, amounts, fixed)
        except (ValueError, OSError) as e:
            failed.append(str(f))
            why = str(e)
            bar.write(f"not edited: {why}" if why.startswith(str(f)) else f"{f}: not edited: {why}")
        bar(i + 1, len(files), f.name)
    bar.close()
    done = len(files) - len(failed)
    print(f"edited {done} of {len(files)} photos into {dst}" + (f"; {len(failed)} not edited (named above)" if failed else ""))
    return 0 if not failed else 1
