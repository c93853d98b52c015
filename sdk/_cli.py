"""The ``dwf`` console script's entry point (``sdk._cli:main``); the commands live in :mod:`sdk.cli`.

``python -m sdk._cli ARGS`` is the same as ``dwf ARGS``.
"""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
