"""The ``glow`` command line: ``main.py`` and one module per command in ``commands/``."""
