"""Work-arounds for bugs in the libraries the explorer runs on.

:func:`protect_singletons` — PySide6 6.12.0 on Python 3.10/3.11 returns ``None`` from every Qt
method that has no result (``setEnabled``, ``setValue``, ``setText``, ...) and ``True`` from
``Signal.emit()`` without taking a new reference to it. On Python 3.12 and later these objects
are immortal and nothing happens; on 3.11 each such call takes one reference away for good, and
once the count reaches zero the interpreter aborts ("Fatal Python error: none_dealloc" or
"bool_dealloc"). With torch loaded ``None`` starts with about 54,000 references, so the window
crashed after a few thousand user actions (found by the GUI monkey test of issue #7;
PySide6 6.11.2 does not have the bug). The work-around does once what Python 3.12 does: it gives
``None``, ``True`` and ``False`` 2**40 extra references, so no number of lost ones can free them.
"""

from __future__ import annotations

import sys

__all__ = ["protect_singletons"]

_EXTRA_REFERENCES = 1 << 40
_done = False


def protect_singletons() -> bool:
    """Make ``None``, ``True`` and ``False`` effectively immortal on CPython < 3.12.

    Returns True when it changed something (once per process; a no-op on 3.12+ and other
    interpreters, where they are immortal already or not reference-counted this way).
    """
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    import ctypes

    for obj in (None, True, False):
        # ob_refcnt is the first field of every object in CPython's (non-debug) object header.
        ctypes.c_ssize_t.from_address(id(obj)).value += _EXTRA_REFERENCES
    _done = True
    return True
