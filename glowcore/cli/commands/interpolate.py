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
    p.add_argument("--scale", type=int, default=4, help="upscale factor (default 4)")
    p.add_argument("--filter", choices=("smooth", "nearest"), default="smooth", help="upscale filter (default smooth)")
    p.add_argument("--no-frame", action="store_true", help="centre-crop photos instead of looking for a face")
    p.add_argument("-t", "--temperature", type=float, default=0.7, help="temperature for seed:N keyframes (default 0.7)")
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...io.checkpoint import load_model
    from ...ops.video import probe_video, render_morph
    from ...base.limits import MAX_FPS, MIN_FPS, number_in
    from ._common import console, inputs_to_latent, output_path
    from ._guard import check_model_decodes, check_outputs, model_files, temperature

    out = output_path(args.out, (".mp4", ".gif", ".webp"), "video")
    if not 2 <= args.frames <= 100_000:
        raise ValueError(f"--frames must be from 2 to 100000, got {args.frames}")
    number_in("--fps", args.fps, MIN_FPS, MAX_FPS)
    temperature(args.temperature)
    check_outputs([out], [*args.keyframes, *model_files(args.model)], args.overwrite_input)
    model = load_model(args.model, device=args.device)
    check_model_decodes(model, model.source_path)
    keyframes, names = inputs_to_latent(model, args.keyframes, frame_face=not args.no_frame, temperature=args.temperature)
    if keyframes.batch_size < 2:
        raise ValueError("need at least two keyframes (photos, seed:N, or a latent file holding several)")
    bar = console("rendering")
    try:
        render_morph(
            model, keyframes, out, frames=args.frames, fps=args.fps, mode=args.mode, ease=args.ease,
            loop=args.loop, pingpong=args.pingpong, scale=args.scale, filter=args.filter, progress=bar,
        )
    finally:
        bar.close()
    info = probe_video(out)
    print(f"wrote {Path(out)}: {info.frames} frames, {info.width}x{info.height}, {info.fps:g} fps, through {len(names)} keyframes")
    return 0
