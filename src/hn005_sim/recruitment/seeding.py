"""Many PCG64 generators of one seed at once, each the generator `SeedSequence(entropy=seed,
spawn_key=key)` gives, with the seed sequence's hash computed for all the keys together.

A replicate of the recruitment simulation makes a generator per site and stream (arrivals, population,
screening) and one per chart unit and site (eligibility/chart.py): 338 in a replicate of
scenarios/network_south_china.toml. Made one at a time, each costs ~14 us (the seed sequence's
hashing ~9 us, the bit generator's seeding ~5 us), 6-7 ms per replicate there. The hash (numpy's
SeedSequence: mix the entropy words into a pool of 4, then draw the state words from the pool, all in
32-bit arithmetic with constants that do not depend on the data) is the same few dozen operations for
every key, so it is computed here on arrays of keys, and each PCG64 seeded from its precomputed state
words (`_Seeded`: a seed sequence that hands them over, and is a real SeedSequence for anything else).
tests/recruitment/test_seeding.py checks the states and the generators' draws against SeedSequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.random.bit_generator import ISeedSequence

_M32 = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875  # Python integers, reduced to 32 bits after each product
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4


def _words(x: int) -> list[int]:
    """A non-negative integer as little-endian 32-bit words (numpy's _int_to_uint32_array)."""
    x = int(x)
    if x < 0:
        raise ValueError(f"seed sequence words must be non-negative, got {x}")
    if x == 0:
        return [0]
    out = []
    while x > 0:
        out.append(x & 0xFFFFFFFF)
        x >>= 32
    return out


def _entropy(entropy: int, key: Sequence[int]) -> list[int]:
    """SeedSequence's assembled entropy: the seed's words (padded to the pool size when there is a
    spawn key), then each spawn-key element's words."""
    run = _words(entropy)
    spawn = [w for k in key for w in _words(k)]
    if spawn and len(run) < _POOL:
        run = run + [0] * (_POOL - len(run))
    return run + spawn


def _hashmix(value, h: int):
    """SeedSequence's hashmix of a word (a Python int) or of a column of words (uint32 array), with the
    hash constant h; returns the value and the next constant."""
    if isinstance(value, int):
        value = ((value ^ h) * ((h * _MULT_A) & _M32)) & _M32
    else:
        value = (value ^ np.uint32(h)) * np.uint32((h * _MULT_A) & _M32)
    return value ^ (value >> 16), (h * _MULT_A) & _M32


def _mix(x, y):
    """SeedSequence's mix of two words or columns of words (uint32 arithmetic)."""
    if isinstance(x, int) and isinstance(y, int):
        out = (_MIX_L * x - _MIX_R * y) & _M32
    else:
        lx = np.uint32((_MIX_L * x) & _M32) if isinstance(x, int) else x * np.uint32(_MIX_L)
        ry = np.uint32((_MIX_R * y) & _M32) if isinstance(y, int) else y * np.uint32(_MIX_R)
        out = lx - ry
    return out ^ (out >> 16)


def _states_same_length(rows: np.ndarray) -> np.ndarray:
    """(r, 4) uint64 state words of `SeedSequence.generate_state(4, np.uint64)`, from (r, L) uint32
    assembled entropy words (every row of the same length L). The hash constants are the same for
    every row; so is the pool while the words mixed in are (the seed, the replicate, the stream...):
    those steps are taken once on Python integers, the others on columns (uint32 arrays wrap)."""
    r, n = rows.shape
    cols = []
    for j in range(n):
        col = rows[:, j]
        cols.append(int(col[0]) if r and (col == col[0]).all() else col)
    h = _INIT_A
    pool = []
    for i in range(_POOL):
        v, h = _hashmix(cols[i] if i < n else 0, h)
        pool.append(v)
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                v, h = _hashmix(pool[src], h)
                pool[dst] = _mix(pool[dst], v)
    for src in range(_POOL, n):
        for dst in range(_POOL):
            v, h = _hashmix(cols[src], h)
            pool[dst] = _mix(pool[dst], v)
    state = np.empty((r, 8), np.uint32)
    c = _INIT_B
    for i in range(8):
        v = pool[i % _POOL]
        if isinstance(v, int):
            v = ((v ^ c) * ((c * _MULT_B) & _M32)) & _M32
        else:
            v = (v ^ np.uint32(c)) * np.uint32((c * _MULT_B) & _M32)
        c = (c * _MULT_B) & _M32
        state[:, i] = v ^ (v >> 16)
    return np.ascontiguousarray(state.astype("<u4")).view("<u8").astype(np.uint64)


def pcg64_states(entropy: int, keys: Sequence[Sequence[int]]) -> np.ndarray:
    """(len(keys), 4) uint64: `SeedSequence(entropy=entropy, spawn_key=key).generate_state(4,
    np.uint64)` of each key (the words PCG64 is seeded from), keys of equal word length together.
    Keys whose elements are each one word (0 <= k < 2**32, nearly always) skip the word lists."""
    out = np.empty((len(keys), 4), np.uint64)
    run = _entropy(entropy, (0,))[:-1]  # the seed's words, padded as with a spawn key
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    slow: dict[int, list[int]] = {}
    for length, idx in by_length.items():
        sel = [keys[i] for i in idx]
        # every element one word: the smallest and largest over the keys (C loops, not one per element)
        if length and len(run) == _POOL and min(map(min, sel)) >= 0 and max(map(max, sel)) < 2**32:
            rows = np.empty((len(idx), _POOL + length), np.uint32)
            rows[:, :_POOL] = np.array(run, np.uint32)
            rows[:, _POOL:] = np.array(sel, dtype=np.uint64).astype(np.uint32)
            out[idx] = _states_same_length(rows)
        else:
            for i in idx:
                slow.setdefault(len(_entropy(entropy, keys[i])), []).append(i)
    for idx in slow.values():
        out[idx] = _states_same_length(np.array([_entropy(entropy, keys[i]) for i in idx], dtype=np.uint32))
    return out


class _Seeded(ISeedSequence):
    """The seed sequence `SeedSequence(entropy, spawn_key)` whose 4 uint64 state words are known: hands
    them to PCG64, and is a real SeedSequence for any other request (other state sizes, spawn)."""

    def __init__(self, entropy: int, spawn_key: tuple[int, ...], state: np.ndarray):
        self.entropy, self.spawn_key, self._state = entropy, spawn_key, state
        self._real: np.random.SeedSequence | None = None

    def _sequence(self) -> np.random.SeedSequence:
        if self._real is None:
            self._real = np.random.SeedSequence(entropy=self.entropy, spawn_key=self.spawn_key)
        return self._real

    def generate_state(self, n_words, dtype=np.uint32):
        # PCG64 asks for (4, np.uint64), the class itself: told apart without making a dtype, and
        # handed the words themselves (read-only: `generators`), not a copy
        if n_words == 4 and dtype is np.uint64:
            return self._state if not self._state.flags.writeable else self._state.copy()
        if n_words == 4 and np.dtype(dtype) == np.uint64:
            return self._state.copy()
        return self._sequence().generate_state(n_words, dtype)

    def spawn(self, n_children):
        return self._sequence().spawn(n_children)

    @property
    def n_children_spawned(self):
        return self._sequence().n_children_spawned

    @property
    def pool_size(self):
        return self._sequence().pool_size


FEW = 12
"""Below this many keys the generators are made one at a time: the hash on arrays costs about as much
as 12 seed sequences (3 keys: 0.24 ms against 0.08 ms; 26 keys: 0.66 against 1.25 ms)."""


def generators(entropy: int, keys: Sequence[Sequence[int]]) -> list[np.random.Generator]:
    """`np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=entropy, spawn_key=key)))`
    of each key: the same generators, in the same states."""
    keys = [tuple(map(int, key)) for key in keys]
    if len(keys) < FEW:
        return [np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=entropy, spawn_key=key)))
                for key in keys]
    states = pcg64_states(entropy, keys)
    states.flags.writeable = False  # each generator's seed sequence hands its row over as it is
    Generator, PCG64 = np.random.Generator, np.random.PCG64  # looked up once, not per key
    return [Generator(PCG64(_Seeded(entropy, key, state))) for key, state in zip(keys, states, strict=True)]
