"""Where numba keeps the compiled kernels: one cache per user, shared by every checkout.

numba caches a compiled function next to its source (``__pycache__``) by
default, so each new checkout, release folder or container layer of the
product compiles the hierarchy's kernels again: about 13 s of CPU at the
first network build or matrix of every fresh install. :class:`KernelCacheLocator`
keeps them instead under one folder per user, named by the module's path
*inside* the package (never by where the package lies) and by a digest of
every source file of :mod:`solver.geo.network.ch`, which also stamps them
(so two versions on one machine keep a folder each): kernels inline
each other's helpers (the heap into the queries), so a change to any file of
the package must invalidate them all, which numba's own stamp (the defining
file only) does not do. numba adds its own version, the Python version and
the CPU's name and features to each entry, so one cache root serves every
checkout, version and machine that shares it.

Kernels are called through :func:`call`, which compiles (or loads) a kernel
for new argument types under a lock on the cache folder: processes that start
together on a fresh install (the job processes of a service, RQ workers, the
test suite's workers) used to compile the same kernels at once, each for
itself; now one compiles while the others wait, then load what it stored.

The folder is ``$DOORSTEP_KERNEL_CACHE`` when set, else
``$XDG_CACHE_HOME/doorstep/kernels`` (``~/.cache/doorstep/kernels``);
``DOORSTEP_KERNEL_CACHE=off`` (or numba's own ``NUMBA_CACHE_DIR`` /
``NUMBA_CACHE_LOCATOR_CLASSES``) leaves caching to numba. A folder that
cannot be written falls back to numba's locators too.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import numba
from numba.core import caching

__all__ = ["KernelCacheLocator", "call", "compile_lock", "install", "kernel_cache_dir"]

R = TypeVar("R")

#: Threads of one process compile one kernel at a time (numba has its own lock too; this one is held
#: around the file lock, which other processes wait on).
_THREAD_LOCK = threading.Lock()
#: The lock file while this process holds it (a process forked meanwhile closes its copy, below).
_HELD: list[Any] = []


def _forget_the_lock_in_a_child() -> None:
    """A child forked while its parent compiles closes its copy of the lock file: an ``flock`` is
    released only when every copy is closed, so a long-lived child (a job process, a work horse)
    would otherwise hold every other process's compilation until it ended."""
    for handle in _HELD:
        handle.close()
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_the_lock_in_a_child)

#: The package whose kernels this locator serves (this file's folder).
PACKAGE_DIR = Path(__file__).resolve().parent
#: The folder that holds the top-level package ``solver`` (paths are keyed relative to it).
_ROOT = PACKAGE_DIR.parents[3]
#: numba's own locators, tried after this one (for functions outside the package).
_NUMBA_LOCATORS = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator",
                   "IPythonCacheLocator", "ZipCacheLocator")


def kernel_cache_dir() -> Path | None:
    """The configured kernel cache folder, or None when numba's default applies.

    Returns
    -------
    pathlib.Path or None
        ``$DOORSTEP_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/doorstep/kernels``
        (``~/.cache/doorstep/kernels``); None for ``off`` or when numba is
        configured (``NUMBA_CACHE_DIR``, ``NUMBA_CACHE_LOCATOR_CLASSES``).
    """
    if os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES"):
        return None
    configured = os.environ.get("DOORSTEP_KERNEL_CACHE", "")
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "doorstep" / "kernels"


@functools.lru_cache(maxsize=8)
def _package_digest(directory: Path, stamps: tuple[tuple[str, int, int], ...]) -> str:
    """sha256 of the sources in ``directory``; keyed on each file's (name, mtime, size) so that an edit re-hashes."""
    digest = hashlib.sha256()
    for name, _, _ in stamps:
        digest.update(name.encode())
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()


def package_stamp() -> str:
    """A digest of every ``.py`` file of :mod:`solver.geo.network.ch`: the kernels' freshness."""
    stamps = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        status = path.stat()
        stamps.append((path.name, status.st_mtime_ns, status.st_size))
    return _package_digest(PACKAGE_DIR, tuple(stamps))


class KernelCacheLocator(caching.InTreeCacheLocator):
    """numba cache locator for the package's kernels (see the module's doc).

    Parameters
    ----------
    py_func : function
        The Python function numba compiles.
    py_file : str
        The file that defines it.
    root : pathlib.Path
        The kernel cache folder (:func:`kernel_cache_dir`).
    """

    def __init__(self, py_func: Any, py_file: str, root: Path) -> None:
        super().__init__(py_func, py_file)  # type: ignore[no-untyped-call]
        # one folder per version of the package: checkouts of two versions on one machine (a rolling
        # release) each keep their kernels instead of overwriting each other's index in turn
        relative = Path(py_file).resolve().parent.relative_to(_ROOT)
        self._cache_path = str(root / relative / package_stamp()[:16])

    def get_cache_path(self) -> str:
        """The folder of the function's cache files."""
        return self._cache_path

    def get_source_stamp(self) -> str:
        """The package's digest: any change to any of its files recompiles every kernel."""
        return package_stamp()

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> KernelCacheLocator | None:
        """A locator for a function of the package when a cache folder is configured and writable, else None."""
        root = kernel_cache_dir()
        if root is None or Path(py_file).resolve().parent != PACKAGE_DIR:
            return None
        self = cls(py_func, py_file, root)
        try:
            self.ensure_cache_path()  # type: ignore[no-untyped-call]
        except OSError:
            return None
        return self


@contextlib.contextmanager
def compile_lock() -> Iterator[None]:
    """Hold this version's compile lock: an exclusive ``flock`` on ``compile-<digest>.lock`` in the kernel
    cache folder, shared by every process of the machine that uses the folder (only a thread lock when
    there is no folder or it cannot be written)."""
    with _THREAD_LOCK:
        root = kernel_cache_dir()
        handle = None
        if root is not None:
            try:
                root.mkdir(parents=True, exist_ok=True)
                handle = open(root / f"compile-{package_stamp()[:16]}.lock", "a+b")  # noqa: SIM115 (closed below)
            except OSError:
                handle = None
        try:
            if handle is not None:
                _HELD.append(handle)
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            if handle is not None:
                _HELD.clear()
                handle.close()  # closing the file releases the lock


def call(kernel: Callable[..., R], *args: Any) -> R:
    """``kernel(*args)``; the first time this process meets these argument types, the kernel is compiled or
    loaded from the cache under :func:`compile_lock` first.

    A process that finds the lock held waits for the one compiling, then loads the kernel it stored
    instead of compiling it again. ``kernel`` is a numba dispatcher (``@jit`` of
    :mod:`~solver.geo.network.ch.common`).
    """
    dispatcher = cast(Any, kernel)
    signature = tuple(numba.typeof(arg) for arg in args)  # type: ignore[no-untyped-call]
    if signature not in dispatcher.overloads:
        with compile_lock():
            dispatcher.compile(signature)  # from the cache when another process stored it meanwhile
    return kernel(*args)


def install() -> None:
    """Put :class:`KernelCacheLocator` before numba's locators, unless numba is configured otherwise.

    Called before the package's kernels are defined (:mod:`~solver.geo.network.ch.common`);
    numba reads the list when each cached function is defined.
    """
    if kernel_cache_dir() is None:
        return
    locators = ",".join([f"{__name__}.{KernelCacheLocator.__name__}", *_NUMBA_LOCATORS])
    setattr(numba.config, "CACHE_LOCATOR_CLASSES", locators)  # noqa: B010 (numba.config has no stubs)
