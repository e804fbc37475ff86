"""The ``glow`` command line: ``glow COMMAND --help`` for each command.

Each command lives in ``glowcore/cli/commands/NAME.py`` with ``add_parser(subparsers)`` (which sets
``func``) so that commands are independent of each other.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

COMMANDS = ("info", "sample", "eval", "train", "directions", "encode", "edit", "interpolate", "inpaint")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="glow", description="Glow normalizing flows: train, sample, edit, interpolate, inpaint.")
    parser.add_argument("--version", action="version", version=f"glow-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"glowcore.cli.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"glowcore.cli.commands.{name}":
                continue  # command not available in this build
            raise
        module.add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that half-written files are removed on the way out."""


def _on_sigterm(signum, _frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    from ..io.checkpoint import CheckpointError
    from ..base.progress import Cancelled

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args) or 0)
    except (CheckpointError, ValueError, OSError, OverflowError) as e:  # (OSError: disk full, read-only, not a folder, ...)
        print(f"glow {args.command}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"glow {args.command}: error: not enough memory for this (use fewer or smaller images)", file=sys.stderr)
        return 2
    except Cancelled:
        print(f"glow {args.command}: cancelled", file=sys.stderr)
        return 130
    except Terminated:
        print(f"glow {args.command}: terminated (SIGTERM); nothing half-written was left", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"glow {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
