"""A binary heap of ``(int64 key, int64 value)`` in two arrays, with lazy deletion (numba)."""

from __future__ import annotations

from solver.geo.network.ch.common import grown, jit
from solver.geo.network.graph import Ints

__all__ = ["pop", "push"]


@jit()
def push(keys: Ints, vals: Ints, size: int, key: int, val: int) -> tuple[Ints, Ints, int]:
    """Push ``(key, val)`` on the heap of ``size`` entries (arrays doubled when full); returns arrays and size."""
    if size == keys.size:
        keys, vals = grown(keys, size, 2 * keys.size), grown(vals, size, 2 * keys.size)
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        vals[i] = vals[parent]
        i = parent
    keys[i] = key
    vals[i] = val
    return keys, vals, size + 1


@jit()
def pop(keys: Ints, vals: Ints, size: int) -> tuple[int, int, int]:
    """Pop the smallest key: returns ``(key, val, new size)``."""
    key, val = keys[0], vals[0]
    size -= 1
    if size > 0:
        last_k, last_v = keys[size], vals[size]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and keys[child + 1] < keys[child]:
                child += 1
            if keys[child] >= last_k:
                break
            keys[i] = keys[child]
            vals[i] = vals[child]
            i = child
        keys[i] = last_k
        vals[i] = last_v
    return key, val, size
