"""Figures derived from a frozen config object, computed once per object instead of once per batch.

The recruitment simulation samples candidates 1,024 at a time, so what `sample` derives from the
configuration alone (category thresholds, label orders, truncation bounds, the copula's Cholesky
factor) was recomputed for every batch. Config models are frozen after loading (scenario/base.py), so a
value derived from one object stays right for as long as the object lives; the cache holds the object
itself beside the value (an id is not reused while the object is held) and is emptied when it grows past
MAX_ENTRIES, so that sweeps over many configs do not keep them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 4096
_CACHE: dict[tuple[int, str], tuple[Any, Any]] = {}


def derived(obj: Any, what: str, compute: Callable[[], T]) -> T:
    """compute(), the value of `what` for `obj`, from the cache when it was computed for this object."""
    key = (id(obj), what)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is obj:
        return hit[1]
    value = compute()
    if len(_CACHE) >= MAX_ENTRIES:
        _CACHE.clear()
    _CACHE[key] = (obj, value)
    return value
