"""Compiled kernels are cached once per user, keyed by package path and a digest of the whole package
(solver.geo.network.ch.kernelcache)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numba
import numpy as np
import pytest

from solver.geo.network.ch import heap, kernelcache
from solver.geo.network.ch.kernelcache import KernelCacheLocator, kernel_cache_dir, package_stamp


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
