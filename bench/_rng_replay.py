"""Record the random-number calls a function makes and replay them bare (helper for bench/population.py).

`RecordingGenerator(rng)` stands in for a numpy Generator: every method called on it is forwarded to
`rng` and logged (name, arguments), so that `replay(calls, fresh_rng)` later makes exactly the same calls
on a generator in the same state, with none of the work done around them: the floor that the sampler's
own cost is measured against. A replay leaves the generator in the state the recorded run left it in
(tests/population/test_frame_building.py checks that).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RecordingGenerator:
    """A numpy Generator that logs each call made on it (only method calls are expected)."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self.calls: list[tuple[str, tuple, dict[str, Any]]] = []
        self.variates = 0  # how many numbers the recorded calls returned

    def __getattr__(self, name: str):
        method = getattr(self._rng, name)
        if not callable(method):
            raise AttributeError(f"only method calls are recorded, not {name!r}")

        def call(*args, **kwargs):
            self.calls.append((name, tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in args),
                               dict(kwargs)))
            out = method(*args, **kwargs)
            self.variates += int(np.size(out))
            return out

        return call


def replay(calls, rng: np.random.Generator) -> None:
    """Make the recorded calls on `rng`, results discarded."""
    for name, args, kwargs in calls:
        getattr(rng, name)(*args, **kwargs)
