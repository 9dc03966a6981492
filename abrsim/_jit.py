"""How abrsim compiles: the :func:`kernel` decorator, and an honest on-disk cache across modules.

A kernel's compiled callers call a copy of it without numba's Python and C entry points, which
cost about a third of a small function's compile time: nearly all of the session loop's callees
are never called from Python (:class:`Kernel`).

numba invalidates a cached function when its own source file changes, but not when a
function it calls from another module changes: the cached machine code still has the old
callee inlined. The session loop calls the ABR kernels from another module, so it records a
digest of those modules next to its cache and flushes the cache when the digest changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

from numba import config, njit
from numba.core import sigutils
from numba.core.registry import CPUDispatcher

__all__ = ["Kernel", "flush_if_dependencies_changed", "is_cached", "kernel"]


def _options(names: Iterable[str], value: bool) -> dict[str, bool]:
    """The numba options among ``names`` this numba has, set to ``value``: ``_nrt`` and the
    ``no_*_wrapper`` options are numba's own (0.5x to at least 0.68); without them kernels compile
    with reference counting and entry points: correct, only slower to run or to compile."""
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return {}
    return {name: value for name in names if hasattr(CPUTargetOptions, name)}


_NO_REFCOUNT = _options(["_nrt"], False)
_NO_ENTRY_POINTS = _options(["no_cpython_wrapper", "no_cfunc_wrapper"], True)


class Kernel(CPUDispatcher):  # type: ignore[misc]
    """A numba dispatcher whose compiled callers call a copy of it compiled without entry points.

    Called from Python it is an ordinary dispatcher. Typed as the callee of another compiled
    function, it hands numba its copy (:attr:`compiled`; also what :meth:`get_overload` returns,
    an entry point Python cannot call): the same function under another name
    (numba's disk cache tells overloads apart by name and types, not by options), compiled
    without numba's Python and C entry points, which cost about a third of a small function's
    compile time and which no compiled caller uses. Each is compiled only if used: the session
    loop compiles only copies, the discrete-event player (which calls the step's rules from
    Python) only kernels. The copy is flushed along with the kernel when the kernel's dependency
    modules change.
    """

    _dependencies: tuple[ModuleType, ...] = ()
    _compiled: Any = None

    @property
    def compiled(self) -> Any:
        """The copy compiled callers call (made on first use)."""
        if self._compiled is None:
            function = self.py_func
            copy = FunctionType(function.__code__, function.__globals__, function.__name__,
                                function.__defaults__, function.__closure__)
            copy.__qualname__ = f"{function.__qualname__}__compiled"
            copy.__module__ = function.__module__
            copy.__doc__ = function.__doc__
            compiled = njit(cache=True, **_NO_REFCOUNT, **_NO_ENTRY_POINTS)(copy)
            if self._dependencies:
                flush_if_dependencies_changed([compiled], self._dependencies)
            self._compiled = compiled
        return self._compiled

    def get_call_template(self, args: Any, kws: Any) -> Any:  # numba types a compiled caller's call
        return self.compiled.get_call_template(args, kws)

    def get_overload(self, sig: Any) -> Any:  # ... and lowers it (so it is the copy's entry point)
        compiled = self.compiled
        args, _ = sigutils.normalize_signature(sig)
        if tuple(args) not in compiled.overloads:  # typed, not compiled yet (abrsim._ahead types alone)
            compiled.compile(tuple(args))
        return compiled.get_overload(sig)


def kernel(function: Any) -> Any:
    """Compile a hot function that never allocates, without numba's reference counting.

    By default numba counts references to every array a compiled function receives: a call
    that is not inlined pays a few atomic increments and decrements through the runtime. For
    the small functions the session loop calls at every abandonment checkpoint that cost was
    most of the run time (Sabre-style checks every 50 ms: 2.5x slower). A function compiled
    this way may read, write and slice arrays but cannot create one; numba refuses to compile
    it if it tries.

    Compiled callers call a copy compiled without entry points from Python (:class:`Kernel`).
    """
    if config.DISABLE_JIT or not _NO_ENTRY_POINTS:
        return njit(cache=True, **_NO_REFCOUNT)(function)
    dispatcher = Kernel(py_func=function, locals={}, targetoptions={"nopython": True, **_NO_REFCOUNT})
    dispatcher.enable_caching()
    return dispatcher


def flush_if_dependencies_changed(dispatchers: Iterable[Any], dependencies: Iterable[ModuleType]) -> None:
    """Flush the disk cache of each numba dispatcher whose dependency modules changed since it was filled."""
    dependencies = tuple(dependencies)
    digest = hashlib.sha256()
    for module in dependencies:
        digest.update(Path(str(module.__file__)).read_bytes())
    stamp_text = digest.hexdigest()
    for dispatcher in dispatchers:
        if isinstance(dispatcher, Kernel):  # and its compiled callers' copy, now or when it is made
            dispatcher._dependencies = tuple(dict.fromkeys((*dispatcher._dependencies, *dependencies)))
            if dispatcher._compiled is not None:
                flush_if_dependencies_changed([dispatcher._compiled], dependencies)
        cache = getattr(dispatcher, "_cache", None)
        if cache is None or not hasattr(cache, "flush"):
            continue
        function = dispatcher.py_func
        stamp = Path(cache.cache_path) / f"{function.__module__}.{function.__qualname__}.deps"
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
