"""Several generators drawn as one, so that `sample` and `retest_labs` make one frame for many batches.

The recruitment simulation draws each site's candidates from the site's own generator, 1,024 at a
time, and judges every site's batch of a round together (recruitment/candidates.py). Called once per
batch, `sample` pays its ~100 numpy calls, ~140 column constructions and a frame per batch, and the
frames are then stacked. `Streams` stands for the generators of all the batches: each draw it is asked
for (n = the batches' sizes added up) is drawn from every generator in turn, that generator's own
share, with the same method and arguments, and the parts put one after the other. Every generator
therefore makes exactly the draws, in the same order, it makes when its batch is sampled alone, and
the arithmetic `sample` does on the draws is element by element, so the rows of the one frame are the
rows of the separate frames, one after the other. The exceptions are handled where they are: the
copula's matrix product is taken block by block (`parts`, population/labs.py), and each batch's
patient ids count from 0 (`patient_ids`). tests/population/test_streams.py compares the frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def join(parts: Sequence[np.ndarray]) -> np.ndarray:
    """`np.concatenate(parts, axis=-1)` (parts of one dtype and leading shape), each part copied into
    its share of an array made once: the same values, measured cheaper on a round's 50 parts of 1,024
    (population/streams.py's draws and the copula's blocks)."""
    first = parts[0]
    out = np.empty((*first.shape[:-1], sum(p.shape[-1] for p in parts)), first.dtype)
    lo = 0
    for p in parts:
        hi = lo + p.shape[-1]
        out[..., lo:hi] = p
        lo = hi
    return out


class Streams:
    """Generators `gens`, batch i drawing `sizes[i]` values from gens[i] in each draw. Only the methods
    below exist; parameters must be scalars (an array of per-candidate parameters would have to be cut
    into the batches, which no draw of `sample` or `retest_labs` needs).

    `keep` (optional, per batch None or ascending positions 0 <= p < sizes[i]): every draw is still made
    at the batches' full sizes, so each generator makes exactly the draws it makes without `keep`, but
    only the kept positions are returned (n counts them): the values those candidates get when their
    whole batches are drawn, for arithmetic on their rows alone (recruitment/candidates.py judges only
    the candidates of a batch who can matter). tests/population/test_streams.py compares the frames."""

    __slots__ = ("gens", "n", "sel", "sizes")

    def __init__(self, gens: Sequence[np.random.Generator], sizes: Sequence[int],
                 keep: Sequence[np.ndarray | None] | None = None):
        if len(gens) != len(sizes):
            raise ValueError("one size per generator")
        if len({id(g) for g in gens}) != len(gens):
            raise ValueError("two batches share a generator: their draws would interleave")
        self.gens = list(gens)
        self.sizes = [int(s) for s in sizes]
        self.sel = None  # positions kept in the joined draws (None: all)
        if keep is not None and len(keep) != len(self.sizes):
            raise ValueError("one keep per generator")
        if keep is not None and any(k is not None for k in keep):
            parts, lo = [], 0
            for k, size in zip(keep, self.sizes, strict=True):
                if k is None:
                    parts.append(np.arange(lo, lo + size, dtype=np.int64))
                else:
                    k = np.asarray(k, dtype=np.int64)
                    if k.size and (k[0] < 0 or k[-1] >= size or (k.size > 1 and np.any(np.diff(k) <= 0))):
                        raise ValueError("kept positions must be ascending, within their batch")
                    parts.append(k + lo)
                lo += size
            self.sel = np.concatenate(parts) if parts else np.empty(0, np.int64)
        self.n = sum(self.sizes) if self.sel is None else int(self.sel.size)

    def kept(self, x: np.ndarray) -> np.ndarray:
        """The kept positions (last axis) of a draw joined at the full sizes (`np.take`: the values
        of x[..., sel], measured ~25% cheaper on a network round's 133,120 rows)."""
        return x if self.sel is None else np.take(x, self.sel, axis=-1)

    def _shapes(self, size) -> list:
        if isinstance(size, (int, np.integer)):
            if int(size) != self.n:
                raise ValueError(f"a draw of {size} from streams of {self.n} candidates")
            return list(self.sizes)
        size = tuple(size)
        if not size or size[-1] != self.n:
            raise ValueError(f"a draw of shape {size} from streams of {self.n} candidates")
        return [(*size[:-1], s) for s in self.sizes]

    def parts(self, method: str, size, *args, **kwargs) -> list[np.ndarray]:
        """Each generator's share of the draw `method(*args, size, **kwargs)`, unjoined."""
        for a in args:
            if np.ndim(a) != 0 and method != "choice":  # choice's values are the categories
                raise TypeError(f"Streams.{method}: parameters must be scalars")
        return [getattr(g, method)(*args, shape, **kwargs) for g, shape in zip(self.gens, self._shapes(size),
                                                                               strict=True)]

    def _joined(self, method: str, size, *args, **kwargs) -> np.ndarray:
        parts = self.parts(method, size, *args, **kwargs)
        return self.kept(parts[0] if len(parts) == 1 else join(parts))

    def patient_ids(self) -> np.ndarray:
        """Each batch's candidates numbered from 0, as `sample` numbers a batch alone."""
        return self.kept(np.concatenate([np.arange(s, dtype=np.int64) for s in self.sizes])) if self.sizes \
            else np.empty(0, np.int64)

    def _filled(self, method: str, dtype) -> np.ndarray:
        """A one-dimensional draw of `method` (random, standard_normal: the methods with `out`), each
        generator filling its own share of one array in place: the values `parts` would give, without
        the parts and their concatenation."""
        out = np.empty(sum(self.sizes), dtype)
        lo = 0
        for g, s in zip(self.gens, self.sizes, strict=True):
            getattr(g, method)(dtype=dtype, out=out[lo:lo + s])
            lo += s
        return self.kept(out)

    def random(self, size, dtype=np.float64):
        if isinstance(size, (int, np.integer)) and int(size) == self.n:
            return self._filled("random", dtype)
        return self._joined("random", size, dtype=dtype)

    def standard_normal(self, size):
        if isinstance(size, (int, np.integer)) and int(size) == self.n:
            return self._filled("standard_normal", np.float64)
        return self._joined("standard_normal", size)

    def uniform(self, low, high, size):
        return self._joined("uniform", size, low, high)

    def normal(self, loc, scale, size):
        return self._joined("normal", size, loc, scale)

    def lognormal(self, mean, sigma, size):
        return self._joined("lognormal", size, mean, sigma)

    def gamma(self, shape, scale, size):
        return self._joined("gamma", size, shape, scale)

    def beta(self, a, b, size):
        return self._joined("beta", size, a, b)

    def exponential(self, scale, size):
        return self._joined("exponential", size, scale)

    def weibull(self, a, size):
        return self._joined("weibull", size, a)

    def choice(self, a, size, p=None):
        return self._joined("choice", size, a, p=p)
