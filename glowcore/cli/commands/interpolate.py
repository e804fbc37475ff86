"""glow interpolate A B [C ...] --frames 60 --fps 30 --out morph.mp4: a morph video."""

from __future__ import annotations

import argparse

from ._common import add_model_args
from ._guard import add_overwrite_arg


def add_parser(sub) -> None:
    from ...ops.interpolate import EASES, MODES

    p = sub.add_parser(
        "interpolate",
        help="morph between faces and export a video",
        description="Morph through two or more keyframes (photos, latent .npz files from glow encode, or seed:N "
        "samples) and write an MP4 (H.264), GIF or animated WebP, chosen by the output's suffix.",
    )
    p.add_argument("keyframes", nargs="+", help="photos, latent files or seed:N (at least two keyframes in all)")
    add_model_args(p)
    p.add_argument("--frames", type=int, default=60, help="number of frames (default 60)")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("-o", "--out", default="morph.mp4", help="output video: .mp4, .gif or .webp (default morph.mp4)")
    p.add_argument("--mode", choices=MODES, default="slerp", help="linear or spherical interpolation (default slerp)")
    p.add_argument("--ease", choices=EASES, default="smooth", help="ease curve within each segment (default smooth)")
    p.add_argument("--loop", action="store_true", help="return to the first keyframe (seamless repeat)")
    p.add_argument("--pingpong", action="store_true", help="go through the keyframes and back")
    p.add_argument("--scale", type=int, default=None, help="upscale factor (default 4)")
    p.add_argument("--size", type=int, default=None, metavar="PX", help="frames of PX x PX pixels (e.g. 256 or 512): photos are aligned (with rotation) and their own detail is carried into the frames near them; the frames between are the model's 64-px faces enlarged")
    p.add_argument("--no-detail", action="store_true", help="with --size: enlarge the model's frames only (no detail from the photos)")
    p.add_argument("--filter", choices=("smooth", "nearest"), default="smooth", help="upscale filter (default smooth)")
    p.add_argument("--no-frame", action="store_true", help="centre-crop photos instead of looking for a face")
    p.add_argument("-t", "--temperature", type=float, default=None, help="temperature for seed:N keyframes, every level (default: 0.7 with the finest levels at 0.85, as glow sample and the explorer draw them)")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...io.checkpoint import load_model
    from ...ops.video import probe_video, render_morph
    from ...base.limits import MAX_FPS, MIN_FPS, number_in
    from ...ops.morphsize import check_size
    from ._common import console, inputs_to_latent, output_path
    from ._guard import check_model_decodes, check_outputs, model_files, sampling_temperatures

    out = output_path(args.out, (".mp4", ".gif", ".webp"), "video")
    if not 2 <= args.frames <= 100_000:
        raise ValueError(f"--frames must be from 2 to 100000, got {args.frames}")
    number_in("--fps", args.fps, MIN_FPS, MAX_FPS)
    args.temperature, args.detail_temperature = sampling_temperatures(args.temperature, None)
    check_outputs([out], [*args.keyframes, *model_files(args.model)], args.overwrite_input)
    model = load_model(args.model, device=args.device)
    check_model_decodes(model, model.source_path)
    if args.size is not None:
        if args.scale is not None:
            raise ValueError("give --size (the frame's side in pixels) or --scale (a factor), not both")
        if args.no_frame:
            raise ValueError("--size aligns the photos to carry their detail: leave out --no-frame (or use --scale)")
        check_size(args.size)
        keyframes, names, details = _sized_keyframes(model, args)
    else:
        keyframes, names = inputs_to_latent(model, args.keyframes, frame_face=not args.no_frame, temperature=args.temperature, detail_temperature=args.detail_temperature)
        details = None
    if keyframes.batch_size < 2:
        raise ValueError("need at least two keyframes (photos, seed:N, or a latent file holding several)")
    bar = console("rendering")
    try:
        render_morph(
            model, keyframes, out, frames=args.frames, fps=args.fps, mode=args.mode, ease=args.ease,
            loop=args.loop, pingpong=args.pingpong, scale=4 if args.scale is None else args.scale, filter=args.filter,
            progress=bar, size=args.size, details=details,
        )
    finally:
        bar.close()
    info = probe_video(out)
    how = ""
    if args.size is not None:
        photos = sum(d is not None for d in details or [])
        how = f"; the model's {model.config.image_size}-px faces enlarged" + (f", with the detail of {photos} photo(s) near them" if photos else "")
    print(f"wrote {Path(out)}: {info.frames} frames, {info.width}x{info.height}, {info.fps:g} fps, through {len(names)} keyframes{how}")
    return 0


def _sized_keyframes(model, args: argparse.Namespace):
    """Keyframes for --size: photos aligned with their detail measured; seeds and latent files as usual."""
    import sys

    from ...latent import Latent
    from ...ops.morphsize import photo_keyframe
    from ._common import LATENT_SUFFIX, inputs_to_latent

    parts, names, details = [], [], []
    for item in args.keyframes:
        if item.startswith("seed:") or item.lower().endswith(LATENT_SUFFIX) or model.config.channels != 3:
            lat, nms = inputs_to_latent(model, [item], frame_face=True, temperature=args.temperature, detail_temperature=args.detail_temperature)
            parts.append(lat)
            names.extend(nms)
            details.extend([None] * lat.batch_size)
            continue
        key = photo_keyframe(model, item, args.size, name=item)
        print(key.message, file=sys.stderr)
        parts.append(key.latent)
        names.append(item)
        details.append(None if args.no_detail else key.detail)
    return Latent.cat(parts), names, details
