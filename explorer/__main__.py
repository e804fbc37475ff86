"""``python -m explorer``: start Glow Explorer."""

import sys

from .app import main

sys.exit(main())
