"""Compiled kernels are cached once per user, keyed by package path and a digest of the whole package
(solver.geo.network.ch.kernelcache)."""

from __future__ import annotations

import hashlib
import importlib
import multiprocessing
import shutil
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from solver.geo.network.ch import heap, kernelcache
from solver.geo.network.ch.kernelcache import KernelCacheLocator, kernel_cache_dir, package_stamp
from tests.forked import run_forked


def test_the_kernel_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    for name in ("DOORSTEP_KERNEL_CACHE", "NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernel_cache_dir() == tmp_path / "xdg" / "doorstep" / "kernels"
    monkeypatch.setenv("DOORSTEP_KERNEL_CACHE", str(tmp_path / "k"))
    assert kernel_cache_dir() == tmp_path / "k"
    monkeypatch.setenv("DOORSTEP_KERNEL_CACHE", "off")
    assert kernel_cache_dir() is None
    monkeypatch.setenv("DOORSTEP_KERNEL_CACHE", str(tmp_path / "k"))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))  # numba's own setting wins
    assert kernel_cache_dir() is None


def test_a_kernel_is_cached_under_its_package_path_not_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("DOORSTEP_KERNEL_CACHE", str(tmp_path / "kernels"))
    for name in ("NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES"):
        monkeypatch.delenv(name, raising=False)
    locator = KernelCacheLocator.from_function(heap.push.py_func, heap.__file__)
    assert locator is not None
    # under its path inside the package and the package's version (two versions keep a folder each)
    assert Path(locator.get_cache_path()) == tmp_path / "kernels" / "solver" / "geo" / "network" / "ch" / package_stamp()[:16]
    assert Path(locator.get_cache_path()).is_dir()
    # a function outside the package is left to numba's own locators
    assert KernelCacheLocator.from_function(test_the_kernel_cache_folder_follows_the_environment, __file__) is None
    # a folder that cannot be written: numba's locators too
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("DOORSTEP_KERNEL_CACHE", str(blocked))
    assert KernelCacheLocator.from_function(heap.push.py_func, heap.__file__) is None


def test_the_stamp_is_a_digest_of_every_file_of_the_package():
    digest = hashlib.sha256()
    for path in sorted(kernelcache.PACKAGE_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    assert package_stamp() == digest.hexdigest()
    locator = KernelCacheLocator.from_function(heap.pop.py_func, heap.__file__)
    if locator is None:
        pytest.skip("the kernel cache is turned off here")
    assert locator.get_source_stamp() == digest.hexdigest()


def test_a_changed_helper_changes_the_stamp_of_every_kernel(monkeypatch, tmp_path):
    """Kernels inline the heap: editing heap.py must invalidate the queries' cache too."""
    copy = tmp_path / "ch"
    shutil.copytree(kernelcache.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(kernelcache, "PACKAGE_DIR", copy)
    before = package_stamp()
    with (copy / "heap.py").open("a") as f:
        f.write("\n# edited\n")
    assert package_stamp() != before


def test_the_packages_kernels_use_the_locator():
    if kernel_cache_dir() is None:
        pytest.skip("the kernel cache is turned off here")
    assert numba.config.CACHE_LOCATOR_CLASSES.split(",")[0].endswith("KernelCacheLocator")
    keys = np.zeros(4, np.int64)
    vals = np.zeros(4, np.int64)
    keys, vals, size = heap.push(keys, vals, 0, 7, 3)
    assert size == 1 and keys[0] == 7 and vals[0] == 3
    locator = heap.push._cache._impl.locator
    assert isinstance(locator, KernelCacheLocator)
    assert any(Path(locator.get_cache_path()).glob("heap.push-*.nbi"))


def _compile_after(barrier: Any, source: str, out: Connection) -> None:
    """A process that imports ``source``'s kernel, waits for the others, calls it through
    :func:`kernelcache.call` and sends (result, compiled, loaded from the cache)."""
    sys.path.insert(0, str(Path(source).parent))
    module = importlib.import_module(Path(source).stem)
    compiler = module.add._compiler
    compile_now = compiler.compile

    def slowly(*args: Any) -> Any:  # as long as a real kernel takes to compile (not loaded), without the CPU
        time.sleep(1.0)
        return compile_now(*args)

    compiler.compile = slowly
    barrier.wait()
    result = kernelcache.call(module.add, 1, 2)
    out.send((result, sum(module.add._cache_misses.values()), sum(module.add._cache_hits.values())))


def test_processes_starting_together_compile_a_kernel_once(monkeypatch, tmp_path):
    """Three processes meet a kernel at the same moment on an empty cache: one compiles it, the two
    others wait for its lock and load what it stored (without the lock all three compiled)."""
    monkeypatch.setenv("DOORSTEP_KERNEL_CACHE", str(tmp_path / "kernels"))
    source = tmp_path / "tiny_kernel.py"
    source.write_text("import numba\n\n\n@numba.njit(cache=True)\ndef add(a, b):\n    return a + b\n")
    barrier = multiprocessing.get_context("fork").Barrier(3)
    reports = [report for report, _ in run_forked(_compile_after, [(barrier, str(source))] * 3, timeout_s=60)
               if report is not None]
    assert [result for result, _, _ in reports] == [3, 3, 3]
    assert sorted((compiled, loaded) for _, compiled, loaded in reports) == [(0, 1), (0, 1), (1, 0)]
    assert list((tmp_path / "kernels").glob("compile-*.lock"))  # the lock lives beside the kernels


def test_the_kernels_entry_points_go_through_the_compile_lock(monkeypatch):
    """Every call from Python into a kernel of the package passes :func:`kernelcache.call`."""
    from solver.geo.network.ch import build, dijkstra_many_to_many, many_to_many

    called = []
    real = kernelcache.call
    monkeypatch.setattr(kernelcache, "call", lambda kernel, *args: called.append(kernel.__name__) or real(kernel, *args))
    ring = np.arange(4, dtype=np.int64)
    tail, head = np.concatenate([ring, (ring + 1) % 4]), np.concatenate([(ring + 1) % 4, ring])
    hierarchy = build(4, tail, head, np.full(8, 10, np.int64))
    one = (np.array([0, 1], np.int64), np.array([0], np.int64), np.array([0], np.int64))
    assert many_to_many(hierarchy, one, (np.array([0, 1], np.int64), np.array([2], np.int64),
                                         np.array([0], np.int64)))[0, 0] == 20
    order = np.argsort(tail, kind="stable")
    graph = (np.searchsorted(tail[order], np.arange(5)), head[order], np.full(8, 10, np.int64))
    entries = (np.array([0, 0, 0, 1, 1], np.int64), np.array([0], np.int64), np.array([0], np.int64))  # node 2: target 0
    assert dijkstra_many_to_many(graph, one, entries, 1)[0, 0] == 20
    assert called == ["_contract_all", "_target_spaces", "_source_rows", "_rows"]


def _lock_is_free() -> None:
    """Exit 0 when this process can take the compile lock at once, 1 when another holds it."""
    import fcntl

    root = kernel_cache_dir()
    assert root is not None
    with open(root / f"compile-{package_stamp()[:16]}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(1)


def test_a_process_forked_under_the_compile_lock_does_not_keep_it(monkeypatch, tmp_path):
    """A child forked while its parent compiles (a job process, a work horse) closes its copy of the
    lock file: the lock is free once the parent is done, though the child lives on."""
    monkeypatch.setenv("DOORSTEP_KERNEL_CACHE", str(tmp_path / "kernels"))
    context = multiprocessing.get_context("fork")
    with kernelcache.compile_lock():
        child = context.Process(target=time.sleep, args=(60,))
        child.start()
    try:
        probe = context.Process(target=_lock_is_free)
        probe.start()
        probe.join(30)
        assert probe.exitcode == 0
    finally:
        child.kill()
        child.join()
