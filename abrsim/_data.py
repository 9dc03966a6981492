"""Where the built-in data (ladders, default traces) lives.

In a source checkout it is the top-level ``ladders/`` and ``traces/`` folders;
an installed wheel carries the same files under ``abrsim/_builtin/``.
"""

from __future__ import annotations

from pathlib import Path

from abrsim.errors import AbrsimError

__all__ = ["data_dir"]


def data_dir(kind: str) -> Path:
    """Return the folder of built-in data of one kind (``"ladders"`` or ``"traces"``).

    Raises:
        AbrsimError: if the installation lacks that folder.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "_builtin" / kind, here.parent / kind):
        if candidate.is_dir():
            return candidate
    raise AbrsimError(f"built-in {kind} folder not found next to {here}; reinstall abrsim")
