"""How abrsim compiles: the :func:`kernel` decorator, and an honest on-disk cache across modules.

numba invalidates a cached function when its own source file changes, but not when a
function it calls from another module changes: the cached machine code still has the old
callee inlined. The session loop calls the ABR kernels from another module, so it records a
digest of those modules next to its cache and flushes the cache when the digest changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from numba import njit

__all__ = ["flush_if_dependencies_changed", "is_cached", "kernel"]


def _no_refcount_options() -> dict[str, bool]:
    """``_nrt`` is a private numba option (0.5x to at least 0.68); without it kernels compile
    with reference counting: correct, only slower."""
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return {}
    return {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}


_NO_REFCOUNT = _no_refcount_options()


def kernel(function: Any) -> Any:
    """Compile a hot function that never allocates, without numba's reference counting.

    By default numba counts references to every array a compiled function receives: a call
    that is not inlined pays a few atomic increments and decrements through the runtime. For
    the small functions the session loop calls at every abandonment checkpoint that cost was
    most of the run time (Sabre-style checks every 50 ms: 2.5x slower). A function compiled
    this way may read, write and slice arrays but cannot create one; numba refuses to compile
    it if it tries.
    """
    return njit(cache=True, **_NO_REFCOUNT)(function)


def flush_if_dependencies_changed(dispatchers: Iterable[Any], dependencies: Iterable[ModuleType]) -> None:
    """Flush the disk cache of each numba dispatcher whose dependency modules changed since it was filled."""
    digest = hashlib.sha256()
    for module in dependencies:
        digest.update(Path(str(module.__file__)).read_bytes())
    stamp_text = digest.hexdigest()
    for dispatcher in dispatchers:
        cache = getattr(dispatcher, "_cache", None)
        if cache is None or not hasattr(cache, "flush"):
            continue
        stamp = Path(cache.cache_path) / f"{dispatcher.py_func.__module__}.{dispatcher.__name__}.deps"
        try:
            if stamp.read_text() == stamp_text:
                continue
        except OSError:
            pass
        try:
            cache.flush()
            stamp.write_text(stamp_text)
        except OSError:  # a read-only cache: numba recompiles in memory, which is correct
            pass


def is_cached(dispatcher: Any) -> bool:
    """Whether numba's on-disk cache has compiled code for ``dispatcher`` (True when it cannot tell,
    e.g. with the JIT off).

    The index file alone says nothing: :func:`flush_if_dependencies_changed` writes an empty one
    on import, and numba ignores one whose source stamp is stale. The index must list an overload.
    """
    try:
        cache_file = dispatcher._cache._cache_file
    except AttributeError:
        return True
    try:
        return bool(cache_file._load_index())
    except Exception:  # numba's private cache layout changed: say nothing rather than nag
        return True
