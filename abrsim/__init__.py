"""abrsim: an adaptive-bitrate video streaming simulator.

The main entry points, importable from here (loaded on first use, so that
``import abrsim`` stays cheap):

- :func:`load_trace`, :func:`load_traces` (:mod:`abrsim.trace`)
- :func:`load_ladder` (:mod:`abrsim.ladder`)
- :class:`PlayerModel` (:mod:`abrsim.model`)
- :func:`make_policy`, :func:`available_policies` (:mod:`abrsim.abr`)
- :func:`run_session`, :func:`run_batch` (:mod:`abrsim.engine.fast`)
- :func:`rows_from_batch` (:mod:`abrsim.results`)
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("abrsim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

_LAZY = {
    "load_trace": ("abrsim.trace", "load_trace"),
    "load_traces": ("abrsim.trace", "load_traces"),
    "load_ladder": ("abrsim.ladder", "load_ladder"),
    "PlayerModel": ("abrsim.model", "PlayerModel"),
    "make_policy": ("abrsim.abr", "make"),
    "available_policies": ("abrsim.abr", "available"),
    "run_session": ("abrsim.engine.fast", "run_session"),
    "run_batch": ("abrsim.engine.fast", "run_batch"),
    "rows_from_batch": ("abrsim.results", "rows_from_batch"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'abrsim' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)
