"""population.sample_many and retest_labs on Streams against sample / retest_labs one batch at a time:
the same rows, bit for bit, and every generator left where the one-at-a-time draws leave it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hn005_sim import population as P
from hn005_sim.population.streams import Streams
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def _bitwise_equal(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.schema == b.schema
    assert a.equals(b, null_equal=True)
    for c in a.columns:
        x, y = a[c], b[c]
        assert x.is_null().to_list() == y.is_null().to_list(), c
        if x.dtype == pl.Float64:  # -0.0 against 0.0 and NaN payloads: compare the bits
            assert np.array_equal(x.to_numpy().view(np.int64), y.to_numpy().view(np.int64)), c


@pytest.mark.parametrize("scenario", ["baseline", "network_south_china"])
@pytest.mark.parametrize("sizes", [[1024] * 4, [300, 1024, 0, 57, 1], [5]])
def test_sample_many_and_retest_on_streams_equal_one_batch_at_a_time(scenario, sizes):
    sc, _ = load_scenario(ROOT / "scenarios" / f"{scenario}.toml")
    cfg = sc.population
    alone_rngs = [np.random.default_rng(100 + i) for i in range(len(sizes))]
    alone = [P.sample(cfg, n, g) for n, g in zip(sizes, alone_rngs, strict=True)]
    rngs = [np.random.default_rng(100 + i) for i in range(len(sizes))]
    whole = P.sample_many(cfg, list(zip(sizes, rngs, strict=True)))
    _bitwise_equal(whole, pl.concat(alone))
    assert whole["patient_id"].to_list() == [k for n in sizes for k in range(n)]

    # re-measured labs of some rows of each batch, after the batch (its generator again)
    rows = [np.flatnonzero(np.random.default_rng(7 + i).random(n) < 0.3) for i, n in enumerate(sizes)]
    keep = [i for i, r in enumerate(rows) if r.size]
    ref = pl.concat([P.retest_labs(cfg, alone[i][rows[i]], alone_rngs[i]) for i in keep])
    lo = np.cumsum([0, *sizes])
    every = np.concatenate([rows[i] + lo[i] for i in keep])
    got = P.retest_labs(cfg, whole[every], Streams([rngs[i] for i in keep], [rows[i].size for i in keep]))
    _bitwise_equal(got, ref)
    for a, b in zip(alone_rngs, rngs, strict=True):  # every stream where the batch-by-batch draws left it
        assert a.bit_generator.state == b.bit_generator.state


def test_streams_refuse_what_would_change_the_draws():
    g = np.random.default_rng(0)
    with pytest.raises(ValueError, match="share a generator"):
        Streams([g, g], [2, 3])
    s = Streams([np.random.default_rng(0), np.random.default_rng(1)], [2, 3])
    with pytest.raises(ValueError, match="a draw of 4"):
        s.random(4)
    with pytest.raises(TypeError, match="scalars"):
        s.normal(np.zeros(5), 1.0, 5)
    # each generator's share, one after the other
    a, b = np.random.default_rng(0), np.random.default_rng(1)
    assert np.array_equal(s.standard_normal((2, 5)), np.concatenate([a.standard_normal((2, 2)),
                                                                     b.standard_normal((2, 3))], axis=1))


@pytest.mark.parametrize("sizes", [[1024, 3], [0, 5, 0, 17], [7]])
def test_filled_draws_equal_each_generators_own(sizes):
    """`Streams.random` / `standard_normal` filling one array in place against each generator drawing
    its share alone (float64 and float32 uniforms, normals, a 2-D draw through the parts), values
    bit for bit and generators left in the same states."""
    mine = [np.random.default_rng(7 + i) for i in range(len(sizes))]
    alone = [np.random.default_rng(7 + i) for i in range(len(sizes))]
    s = Streams(mine, sizes)
    got = [s.random(s.n), s.random(s.n, dtype=np.float32), s.standard_normal(s.n),
           s.standard_normal((3, s.n)), s.random(s.n)]
    want = [[g.random(n) for g, n in zip(alone, sizes, strict=True)],
            [g.random(n, dtype=np.float32) for g, n in zip(alone, sizes, strict=True)],
            [g.standard_normal(n) for g, n in zip(alone, sizes, strict=True)],
            [g.standard_normal((3, n)) for g, n in zip(alone, sizes, strict=True)],
            [g.random(n) for g, n in zip(alone, sizes, strict=True)]]
    for a, parts in zip(got, want, strict=True):
        b = np.concatenate(parts, axis=-1)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8))
    assert [g.bit_generator.state for g in mine] == [g.bit_generator.state for g in alone]


def test_join_is_concatenate_along_the_last_axis():
    from hn005_sim.population.streams import join

    rng = np.random.default_rng(3)
    kinds = (((), np.float64), ((), np.float32), ((), np.int64), ((3,), np.float64), ((10,), bool))
    for shape, dtype in kinds:
        parts = [np.asarray(rng.random((*shape, n)) * 100).astype(dtype) for n in (5, 0, 1024, 1)]
        got, want = join(parts), np.concatenate(parts, axis=-1)
        assert got.dtype == want.dtype and got.shape == want.shape and got.flags["C_CONTIGUOUS"]
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("scenario", ["baseline", "network_south_china"])
@pytest.mark.parametrize("kept", [[0.3, None, 0.0, 1.0], [0.05], [None, None], [0.5, 0.5, 0.9]])
def test_sample_many_of_kept_rows_is_the_whole_batches_rows(scenario, kept):
    """`keep`: the kept rows of the frame `sample_many` gives without it (frame_of the full batches,
    bit for bit, patient ids included), every generator left where the full draws leave it."""
    sc, _ = load_scenario(ROOT / "scenarios" / f"{scenario}.toml")
    cfg = sc.population
    sizes = [1024, 300, 57, 1][: len(kept)]
    keep = [None if p is None else np.flatnonzero(np.random.default_rng(9 + i).random(n) < p)
            for i, (p, n) in enumerate(zip(kept, sizes, strict=True))]
    full_rngs = [np.random.default_rng(200 + i) for i in range(len(sizes))]
    full = P.sample_many(cfg, list(zip(sizes, full_rngs, strict=True)))
    rngs = [np.random.default_rng(200 + i) for i in range(len(sizes))]
    got = P.sample_many(cfg, list(zip(sizes, rngs, strict=True)), keep)
    lo = np.cumsum([0, *sizes])
    rows = np.concatenate([np.arange(n) + lo[i] if k is None else k + lo[i]
                           for i, (k, n) in enumerate(zip(keep, sizes, strict=True))])
    assert got.height == rows.size
    _bitwise_equal(got, full[rows])
    for a, b in zip(full_rngs, rngs, strict=True):
        assert a.bit_generator.state == b.bit_generator.state


def test_kept_positions_must_be_ascending_within_their_batch():
    gens = [np.random.default_rng(0), np.random.default_rng(1)]
    for bad in ([np.array([3, 1]), None], [np.array([0, 5]), None], [np.array([-1]), None], [None]):
        with pytest.raises(ValueError):
            Streams(gens, [4, 2], bad)
    s = Streams(gens, [4, 2], [np.array([1, 3]), None])
    assert s.n == 4 and s.sizes == [4, 2]
    a, b = np.random.default_rng(0).random(4), np.random.default_rng(1).random(2)
    assert np.array_equal(s.random(4), np.concatenate([a[[1, 3]], b]))
