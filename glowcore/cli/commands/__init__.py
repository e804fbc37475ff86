"""One module per ``glow`` command, each with ``add_parser(subparsers)``."""
