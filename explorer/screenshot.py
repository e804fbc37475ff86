"""Take the README screenshot: ``python -m explorer.screenshot --model M --out docs/screenshot.png``.

Run it under a real X server for faithful fonts, e.g.
``xvfb-run -s "-screen 0 1600x1000x24" python -m explorer.screenshot --model PATH --run RUN_DIR``.
It opens the window with throw-away settings, edits a few attributes, adds keyframes, waits for
the plots, and saves ``QWidget.grab()`` of the window.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from .app import make_app
from .window import MainWindow


def _wait(app: QApplication, cond, timeout_s: float = 120.0) -> bool:
    loop_timer = QTimer()
    waited = 0.0
    while not cond():
        loop = QEventLoop()
        loop_timer.singleShot(50, loop.quit)
        loop.exec()
        waited += 0.05
        if waited > timeout_s:
            return False
    return True


def _pause(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--out", default="docs/screenshot.png")
    p.add_argument("--run", help="training run directory for the run viewer")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--size", default="1600x1000")
    p.add_argument("--threads", type=int)
    p.add_argument("--tab", default="interpolate", choices=["interpolate", "inpaint", "directions"])
    p.add_argument("--edits", default="Smiling=0.6,Young=0.4,Blond_Hair=0.5", help="NAME=AMOUNT,... to show edited")
    p.add_argument("--keyframes", default="11,23,42", help="seeds added as keyframes")
    p.add_argument("--photo", help="open this photo (or 'synthetic': a face sampled from the model in a made-up room) "
                   "and show it edited at full size instead of the keyframes")
    p.add_argument("--compare", action="store_true", help="with --photo: the before | after split view")
    args = p.parse_args(argv)

    app = make_app()
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(args.model, settings=settings, seed=args.seed, threads=args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    win.resize(w, h)
    win.show()
    if not _wait(app, lambda: win.canvas.image() is not None):
        print("no face within the timeout", file=sys.stderr)
        return 1
    if args.run:
        win.plots.open_run(args.run)
    win.tools.setCurrentWidget({"interpolate": win.interpolate, "inpaint": win.inpaint, "directions": win.directions}[args.tab])
    if args.photo:
        return _photo_shot(app, win, args)
    # a sweep, for the render-time plot
    first = next(iter(win.attributes.rows), None)
    if first is not None:
        for v in range(-60, 61, 4):
            win.attributes.row(first).slider.setValue(v)
            _wait(app, win.settled)
        win.attributes.row(first).slider.setValue(0)
    # keyframes
    for s in [int(x) for x in args.keyframes.split(",") if x.strip()]:
        win.seed_spin.setValue(s)
        _wait(app, win.settled)
        n = win.interpolate.keyframes.count()
        win.morph_ctl.add_current_keyframe()
        _wait(app, lambda: win.interpolate.keyframes.count() > n)
    # a few faces in the history, then back to the chosen one with edits
    for s in (7, 13, 21, 3):
        win.seed_spin.setValue(s)
        _wait(app, win.settled)
        _pause(0.4)  # let the idle analysis run: one bits/dim point per face
    win.seed_spin.setValue(args.seed)
    _wait(app, win.settled)
    for item in filter(None, args.edits.split(",")):
        name, amount = item.split("=")
        if name in win.attributes.rows:
            win.attributes.row(name).slider.setValue(int(round(float(amount) * 100)))
            _wait(app, win.settled)
            _pause(0.4)
    _wait(app, lambda: win.interpolate.filmstrip.count() > 0, 60)
    win.interpolate.scrub.setValue(win.interpolate.scrub.maximum() // 3)
    _wait(app, lambda: bool(win.plots.projections), 60)
    _pause(1.5)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ok = win.grab().save(args.out)
    print(f"saved {args.out}" if ok else f"could not save {args.out}")
    win.close()
    return 0 if ok else 1


def synthetic_photo(model: str, path: str, seed: int = 4, size: tuple[int, int] = (960, 640)) -> str:
    """A made-up photo (no real person): a face sampled from ``model``, enlarged into a room-like
    background with a feathered edge. Imports glowcore (and torch): a tool, not the GUI."""
    import numpy as np
    import torch
    from PIL import Image, ImageFilter

    import glowcore

    m = glowcore.load_model(model, device="cpu")
    with torch.inference_mode():
        face = glowcore.to_uint8(m.decode(m.sample_latent(1, 0.6, seed=seed)))[0]
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall = np.stack([200 - 60 * yy / h, 190 - 50 * yy / h, 170 - 30 * xx / w], -1)
    wall[int(0.72 * h):] = (120, 95, 80)  # a table
    wall[int(0.1 * h): int(0.42 * h), int(0.74 * w): int(0.94 * w)] = (90, 120, 150)  # a picture on the wall
    room = Image.fromarray(np.clip(wall + rng.normal(0, 6, wall.shape), 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    side = int(0.62 * h)
    big = Image.fromarray(face).resize((side, side), Image.Resampling.BICUBIC)
    g = np.abs(np.mgrid[0:side, 0:side] - side / 2) / (side / 2)
    r = (g[0] ** 4 + g[1] ** 4) ** 0.25  # a rounded square: the sample's own hair and shoulders stay
    alpha = Image.fromarray((np.clip((1.0 - r) / 0.25, 0, 1) * 255).astype(np.uint8))
    room.paste(big, (int(0.3 * w), int(0.12 * h)), alpha)
    room.save(path, quality=92)
    return path


def _photo_shot(app: QApplication, win: MainWindow, args: argparse.Namespace) -> int:
    photo = args.photo
    if photo == "synthetic":
        photo = synthetic_photo(args.model, str(Path(tempfile.mkdtemp()) / "synthetic-portrait.jpg"))
    win.open_photo(photo)
    if not _wait(app, lambda: win.photo_ctl.photo is not None and win.settled()):
        print("the photo did not open", file=sys.stderr)
        return 1
    for item in filter(None, args.edits.split(",")):
        name, amount = item.split("=")
        if name in win.attributes.rows:
            win.attributes.row(name).slider.setValue(int(round(float(amount) * 100)))
            _wait(app, lambda: win.settled() and win.photo_ctl.settled())
    if args.compare:
        win.act_compare.trigger()
    _wait(app, lambda: win.settled() and win.photo_ctl.settled())
    _pause(1.0)
    print(win.photo_ctl.photo.message)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ok = win.grab().save(args.out)
    print(f"saved {args.out}" if ok else f"could not save {args.out}")
    win.close()
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
