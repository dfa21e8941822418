"""The bit-packed row figures (eligibility/bits.py) and what restrictiveness derives from them, against
brute force on unpacked bool matrices: lowest set bit, per-group column counts, the chart-review funnel
row by row, co-failure pair by pair, prescreen outcomes and failure patterns. Widths span one, two and
three 64-bit words (k = 63, 64, 65, 130 put bits at every word boundary)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.eligibility import Screening, bits
from hn005_sim.eligibility.chart import FAIL, PASS, UNKNOWN
from hn005_sim.eligibility.restrictiveness import analyse, chart_funnel, cofailure, funnel

WIDTHS = st.sampled_from([1, 2, 7, 8, 9, 63, 64, 65, 70, 127, 128, 130])


def matrix(seed: int, n: int, k: int, p: float) -> np.ndarray:
    return np.random.default_rng(seed).random((n, k)) < p


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 70), k=WIDTHS, p=st.floats(0.0, 1.0))
def test_pack_lowest_any_and_counts_match_the_bool_matrix(seed, n, k, p):
    m = matrix(seed, n, k, p)
    words = bits.pack_rows(m)
    assert words.shape == (n, bits.words_for(k)) and words.dtype == np.uint64
    # every bit where the matrix has it, nothing past column k
    for r in range(n):
        value = sum(int(w) << (64 * c) for c, w in enumerate(words[r]))
        assert value == sum(1 << j for j in range(k) if m[r, j])
    expected_low = np.where(m.any(axis=1), m.argmax(axis=1), -1) if k else np.full(n, -1)
    assert np.array_equal(bits.lowest_set(words), expected_low)
    assert np.array_equal(bits.any_set(words), m.any(axis=1))
    sel = np.random.default_rng(seed + 1).random(k) < 0.5
    mask = bits.mask_words(np.flatnonzero(sel), k)
    ms = m & sel
    assert np.array_equal(bits.lowest_set(words, mask), np.where(ms.any(axis=1), ms.argmax(axis=1), -1))
    assert np.array_equal(bits.any_set(words, mask), ms.any(axis=1))
    groups = 5
    g = np.random.default_rng(seed + 2).integers(0, groups, n)
    brute = np.array([m[g == i].sum(axis=0) for i in range(groups)]).reshape(groups, k)
    assert np.array_equal(bits.column_counts(words, k, g, groups), brute)
    assert np.array_equal(bits.column_counts(words, k)[0], m.sum(axis=0))
    w = np.random.default_rng(seed + 3).integers(1, 1000, n).astype(np.float64)
    assert np.array_equal(bits.column_counts(words, k, weights=w)[0], (m * w[:, None]).sum(axis=0))


def test_column_counts_with_constant_columns():
    """Bytes alike on every row are not histogrammed: all-set, all-clear and mixed bytes side by side."""
    m = np.zeros((50, 24), bool)
    m[:, :8] = True  # byte 0: always set
    m[::3, 16:24] = True  # byte 2: varies
    words = bits.pack_rows(m)
    g = np.arange(50) % 4
    brute = np.array([m[g == i].sum(axis=0) for i in range(4)])
    assert np.array_equal(bits.column_counts(words, 24, g, 4), brute)


def test_lowest_set_every_bit_of_every_word():
    """Each single bit 0..191 is found (the de Bruijn table covers all 64 positions of each word)."""
    k = 192
    m = np.eye(k, dtype=bool)
    assert np.array_equal(bits.lowest_set(bits.pack_rows(m)), np.arange(k))


def _column_bitmaps_brute(m: np.ndarray) -> np.ndarray:
    n, k = m.shape
    out = np.zeros((k, bits.bitmap_bytes(n)), np.uint8)
    for c in range(k):
        packed = np.packbits(m[:, c], bitorder="little")
        out[c, : len(packed)] = packed
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 200), k=WIDTHS, p=st.floats(0.0, 1.0))
def test_column_bitmaps_popcount_and_valid_bitmap_match_the_bool_matrix(seed, n, k, p):
    m = matrix(seed, n, k, p)
    got = bits.column_bitmaps(m)
    assert got.shape == (k, bits.bitmap_bytes(n)) and got.dtype == np.uint8
    assert np.array_equal(got, _column_bitmaps_brute(m))
    assert [bits.popcount(row) for row in got] == m.sum(axis=0).tolist()
    valid = bits.valid_bitmap(n)
    assert np.unpackbits(valid, bitorder="little").tolist() == [1] * n + [0] * (8 * len(valid) - n)


def test_column_bitmaps_across_transpose_slices():
    """More 8 x 8 blocks than one slice of `transpose8` holds (bits._CHUNK words): 600,003 rows of 16
    columns are 2 x 9,376 blocks; each slice boundary must leave its blocks whole."""
    m = matrix(7, 600_003, 16, 0.3)
    assert bits._CHUNK < 2 * (600_003 + 63) // 64
    assert np.array_equal(bits.column_bitmaps(m), _column_bitmaps_brute(m))


def test_transpose8_is_the_bit_matrix_transpose():
    x = np.random.default_rng(3).integers(0, 2**63, 40_000, dtype=np.uint64)
    def as_bits(words):  # (r, byte, bit)
        return np.unpackbits(words.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little").reshape(-1, 8, 8)

    before = as_bits(x.copy())
    got = bits.transpose8(x.copy())
    assert np.array_equal(as_bits(got), before.transpose(0, 2, 1))
    assert np.array_equal(bits.transpose8(got), x)  # an involution
    with pytest.raises(ValueError):
        bits.transpose8(np.zeros((4, 4), np.uint64)[:, ::2])


@pytest.mark.parametrize("offset", [0, 3, 8, 13])
def test_pass_bitmap_reads_the_series_bits(offset):
    values = np.random.default_rng(offset).random(1000) < 0.4
    col = pl.Series("x", values)[offset:]  # a slice: Arrow offset not a multiple of 8 takes the copy
    got = np.unpackbits(bits.pass_bitmap(col), bitorder="little")[: len(col)].astype(bool)
    assert np.array_equal(got, values[offset:])


def _unpacked(bitmap: np.ndarray, n: int) -> np.ndarray:
    return np.unpackbits(bitmap, bitorder="little", count=n).astype(bool)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 1000, 100_003])
def test_read_boolean_columns_copies_each_columns_bits(n):
    rng = np.random.default_rng(n)
    values = {f"c{j}": rng.random(n) < 0.3 for j in range(5)}
    frame = pl.DataFrame(values)
    for invert in (False, True):
        out = np.zeros((5, (n + 7) // 8), np.uint8)
        done = bits.read_boolean_columns(frame, out, invert=invert)
        assert done.all()
        for j, v in enumerate(values.values()):
            assert np.array_equal(_unpacked(out[j], n), ~v if invert else v)


def test_read_boolean_columns_leaves_what_it_cannot_read_to_the_caller():
    """Nulls, an offset inside a byte, several chunks or batches, another type: not copied (False),
    and `pass_bitmaps` packs those from the values; every bitmap right either way."""
    rng = np.random.default_rng(5)
    a = rng.random(1000) < 0.5
    b = rng.random(1000) < 0.5
    with_null = pl.Series("n", [True, None, False] * 10)
    cases = {
        "nulls": pl.DataFrame([with_null]),
        "offset 3": pl.DataFrame({"a": a})[3:],
        "offset 8": pl.DataFrame({"a": a})[8:],
        "chunks": pl.concat([pl.DataFrame({"a": a}), pl.DataFrame({"a": b})], rechunk=False),
        "mixed": pl.DataFrame({"a": a, "b": b}).hstack([pl.Series("x", np.arange(1000))]),
        "empty": pl.DataFrame({"a": a[:0]}),
    }
    for name, frame in cases.items():
        out = np.zeros((frame.width, (frame.height + 7) // 8), np.uint8)
        done = bits.read_boolean_columns(frame, out)
        if name in ("nulls", "offset 3", "mixed", "empty"):
            assert not done.any(), name
        if frame.dtypes[0] == pl.Boolean:
            want = frame.to_series(0).fill_null(False).to_numpy().astype(bool)
            assert np.array_equal(_unpacked(bits.pass_bitmaps(frame)[0], frame.height), want), name
            for j in np.flatnonzero(done):
                assert np.array_equal(_unpacked(out[j], frame.height), frame.to_series(j).to_numpy()), name


def test_bitmaps_need_no_pyarrow():
    """Screening a frame reads the pass columns' bits without importing pyarrow (a fresh process)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, polars as pl\n"
            "from hn005_sim.eligibility.engine import fail_words\n"
            "t = pl.DataFrame({'a': np.arange(100) % 3 == 0, 'b': np.arange(100) % 5 == 0})\n"
            "w = fail_words(t)\n"
            "assert int(w[1, 0]) == 3 and int(w[0, 0]) == 0 and int(w[5, 0]) == 1\n"
            "print('pyarrow' in sys.modules)\n")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "False"


def test_screen_imports_no_pyarrow(tmp_path):
    """`screen` as a whole (evaluation, chart review, every figure, sweeps, relaxation, its files) in a
    fresh process: pyarrow never loaded."""
    import subprocess
    import sys

    out = str(tmp_path / "o")
    code = ("import sys\n"
            "from hn005_sim.cli import main\n"
            f"rc = main(['screen', 'scenarios/baseline.toml', '--patients', '3000', '--out', {out!r},"
            " '-q', '--save-matrix'])\n"
            "print(rc, 'pyarrow' in sys.modules)\n")
    root = __file__.rsplit("/tests/", 1)[0]
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert got.stdout.split()[-1] == "False", got.stdout + got.stderr
    assert (tmp_path / "o" / "pass_matrix.parquet").is_file()


# -- restrictiveness from the packed words -------------------------------------------------------------


def brute_chart_funnel(passes: np.ndarray, known: np.ndarray, order: np.ndarray) -> dict[str, np.ndarray]:
    """Row by row: in chart review until the first known failure; then, if never removed, the first
    failure on the true values."""
    n, k = passes.shape
    out = {c: np.zeros(k, np.int64) for c in ("prescreen_pass", "prescreen_fail", "prescreen_unknown",
                                               "screen_fail")}
    for r in range(n):
        removed = False
        for s, c in enumerate(order):
            if not known[r, c]:
                out["prescreen_unknown"][s] += 1
            elif passes[r, c]:
                out["prescreen_pass"][s] += 1
            else:
                out["prescreen_fail"][s] += 1
                removed = True
                break
        if not removed:
            for s, c in enumerate(order):
                if not passes[r, c]:
                    out["screen_fail"][s] += 1
                    break
    return out


def _screening(seed: int, n: int, k: int, p_fail: float, p_known: float, known_after_consent: bool):
    rng = np.random.default_rng(seed)
    passes = rng.random((n, k)) >= p_fail
    stages = np.where(rng.random(k) < 0.7, "prescreen", "screening")
    known = rng.random((n, k)) < p_known
    if not known_after_consent:  # as the chart model makes it: screening-stage criteria never known
        known[:, stages != "prescreen"] = False
    ids = [f"c{i}" for i in range(k)]
    return Screening.from_matrix(passes, ids, ["inclusion"] * k, list(stages), known), passes, known


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), k=WIDTHS, p_fail=st.floats(0.0, 0.2),
       p_known=st.floats(0.0, 1.0), after=st.booleans())
def test_chart_funnel_matches_row_by_row(seed, n, k, p_fail, p_known, after):
    s, passes, known = _screening(seed, n, k, p_fail, p_known, after)
    got = chart_funnel(s, funnel(s.patterns, s.order, s.ids, s.stages))
    want = brute_chart_funnel(passes, known, s.order)
    for col, values in want.items():
        assert np.array_equal(got[col].to_numpy(), values), col
    # the unknown-at-prescreen share analyse reports is the share of rows with the criterion unknown
    crit = analyse(s, bootstrap=0).criteria
    assert np.array_equal(crit["unknown_at_prescreen_rate"].to_numpy(), 1.0 - known.mean(axis=0))
    assert np.array_equal(s.unknown_at_prescreen_rate, 1.0 - known.mean(axis=0))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), k=WIDTHS, p_fail=st.floats(0.0, 0.6),
       p_known=st.floats(0.0, 1.0))
def test_prescreen_outcome_and_patterns_match_brute_force(seed, n, k, p_fail, p_known):
    s, passes, known = _screening(seed, n, k, p_fail, p_known, True)
    pre = s.stages == "prescreen"
    known_fail = (~passes & known).any(axis=1)
    unknown = (~known[:, pre]).any(axis=1)
    outcome = np.where(known_fail, FAIL, np.where(unknown, UNKNOWN, PASS))
    assert np.array_equal(s.prescreen_pass, ~known_fail)
    assert np.array_equal(s.prescreen_outcome, outcome)
    # distinct (failure pattern, outcome) pairs with their counts, sorted by the pattern words then
    # the outcome (the order every figure sums in)
    rows = {}
    for r in range(n):
        key = (tuple(int(w) for w in bits.pack_rows(~passes[r : r + 1])[0]), int(outcome[r]))
        rows[key] = rows.get(key, 0) + 1
    keys = sorted(rows)
    pat = s.patterns
    assert [tuple(int(w) for w in bits.pack_rows(f[None, :])[0]) for f in pat.fails] == [kk[0] for kk in keys]
    assert pat.outcome.tolist() == [kk[1] for kk in keys]
    assert pat.count.tolist() == [rows[kk] for kk in keys]
    # the grouping's words are the packed patterns
    assert pat.words is not None and np.array_equal(pat.packed, bits.pack_rows(pat.fails))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80), k=WIDTHS, p_fail=st.floats(0.0, 0.9))
def test_cofailure_matches_pair_by_pair(seed, n, k, p_fail):
    s, passes, _ = _screening(seed, n, k, p_fail, 1.0, True)
    fails = ~passes
    table = cofailure(s.patterns, s.ids)
    a, b = np.triu_indices(k, k=1)
    both = np.array([(fails[:, i] & fails[:, j]).sum() for i, j in zip(a, b, strict=True)], dtype=np.int64)
    assert np.array_equal(table["both_fail"].to_numpy(), both.reshape(-1))
    single = fails.sum(axis=0).astype(np.float64)
    assert np.array_equal(table["expected_if_independent"].to_numpy(), single[a] * single[b] / n)


# -- sweeps and relaxation from shared rows and bitmaps --------------------------------------------------


def test_every_sweep_point_and_relaxation_step_counts_like_the_whole_frame():
    """Every sweep point's and every menu item's eligible count (one shared row subset, bitmaps,
    popcounts) equals the count on the whole frame with the changed pass columns swapped in."""
    from hn005_sim.eligibility import compile_criteria
    from hn005_sim.eligibility.relax import _sweep_grid, evaluate_changes, shared_rows
    from hn005_sim.population import sample
    from hn005_sim.rng import stream
    from hn005_sim.scenario.load import load_scenario

    sc, _ = load_scenario("scenarios/baseline.toml")
    frame = sample(sc.population, 6_000, stream(11, 0, "population"))
    screener = compile_criteria(sc.criteria, frame.schema)
    screening = screener.evaluate(frame)
    _, _, changes = _sweep_grid(screener)
    changes += [(r.overrides, r.readings) for r in screener.cfg.relaxations]
    changes.append(({**screener.cfg.relaxations[0].overrides, **screener.cfg.relaxations[1].overrides},
                     {**screener.cfg.relaxations[0].readings, **screener.cfg.relaxations[1].readings}))
    got = evaluate_changes(screener, screening, frame, changes, shared_rows(screener, screening, frame))
    alone = evaluate_changes(screener, screening, frame, changes)  # its own rows
    base = frame.select(screener.exprs)
    want = []
    for overrides, readings in changes:
        changed = screener.changed_exprs(overrides, readings)
        swapped = base.with_columns(frame.select([e.alias(screener.ids[i]) for i, e in changed.items()])
                                    if changed else [])
        want.append(int(swapped.select(pl.all_horizontal(pl.all()).sum()).item()))
    assert len(changes) > 200
    assert got.tolist() == want and alone.tolist() == want
    # the eligible count as configured, from the shared rows and from the words, never the patterns
    from hn005_sim.eligibility.relax import _eligible_now

    eligible = int(base.select(pl.all_horizontal(pl.all()).sum()).item())
    assert _eligible_now(screening, shared_rows(screener, screening, frame)) == eligible
    assert _eligible_now(screening, None) == eligible
    assert "patterns" not in screening.__dict__  # cached_property: never built by the sweeps
    # the rows whose failures all lie in a set of criteria, against the unpacked pass matrix
    rows = shared_rows(screener, screening, frame)
    fails = ~screening.passes[rows.index]
    rng = np.random.default_rng(4)
    sets = [frozenset([c]) for c in rows.order] + [frozenset([screening.k - 1 + 5])]
    sets += [frozenset(rng.choice(rows.order, min(size, len(rows.order)), replace=False).tolist())
             for size in (2, 3, 10, 40)]
    sets += [frozenset(), frozenset(rows.order)]
    for t in sets:
        inside = np.isin(np.arange(screening.k), sorted(t))
        want = np.packbits(~(fails & ~inside).any(axis=1), bitorder="little")
        assert np.array_equal(rows.failing_only(t), want), sorted(t)


def test_changed_rules_keep_the_value_type():
    """The memo of changed rules tells True from 1 (equal and hashed alike in Python)."""
    from hn005_sim.eligibility import CriteriaConfig, compile_criteria

    cfg = CriteriaConfig.model_validate({
        "parameters": {"x": {"value": 2, "unit": "", "source": "assumption: test figure"}},
        "criterion": [{"id": "c", "kind": "inclusion", "stage": "prescreen", "protocol_text": "a at least x",
                       "rule": "a >= {x}", "null": "fail"}],
    })
    screener = compile_criteria(cfg, {"a": pl.Float64})
    assert screener.changed_rules({"x": 1}) == {0: "a >= 1"}
    assert screener.changed_rules({"x": True}) == {0: "a >= TRUE"}
    assert screener.changed_rules({"x": 1.0}) == {0: "a >= 1"}
    assert screener.changed_rules({"x": 2}) == {}


def test_popcount_rows_with_and_without_numpy_bitwise_count(monkeypatch):
    rows = np.random.default_rng(5).integers(0, 256, (7, 300)).astype(np.uint8)
    want = np.unpackbits(rows, axis=1).sum(axis=1)
    assert np.array_equal(bits.popcount_rows(rows), want)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert np.array_equal(bits.popcount_rows(rows), want)
