"""Which criteria restrict the most, from the pass matrix in one vectorised pass.

Every figure is a sum over candidates of a per-candidate quantity that depends only on the candidate's
failure pattern (the set F_p of criteria p fails), so it is computed on the distinct patterns weighted
by their counts: identical to the row-wise sums, and a bootstrap over candidates is a multinomial draw
over patterns (exact, not an approximation).

- fail rate of i: share failing i (whatever else they fail);
- sole-fail rate of i: share failing i and nothing else (the pool gained by dropping i alone);
- Shapley value of i in the game v(S) = #candidates failing some criterion in S: phi_i = sum over
  candidates failing i of 1/|F_p| (each excluded candidate's exclusion shared equally among the
  criteria it fails; Shapley 1953, closed form for this "union" game). sum_i phi_i = #excluded;
- funnel: candidates removed at each criterion, prescreen criteria first, then screening, each in
  protocol order (a candidate is counted at the first criterion it fails);
- co-failure of (i, j): candidates failing both, and lift = observed / (n * rate_i * rate_j).

Chart review (eligibility/chart.py): a candidate passes prescreen unless a criterion fails on values
known at prescreen; the prescreen outcome (pass / fail / unknown) is part of the pattern, so the
prescreen-pass fraction, the unknown fraction and the screen-failure rate (share of those passing
prescreen who fail screening) get their intervals from the same bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import special

from hn005_sim.eligibility import bits
from hn005_sim.eligibility.engine import Patterns, Screener, Screening

RESAMPLE_LIMIT = 2_000_000
"""Above this many (distinct patterns x replicates), intervals use the exact bootstrap variance
(normal approximation) instead of resampling: same target, no Monte Carlo error, far faster."""


@dataclass(frozen=True)
class Figures:
    """Counts for one set of pattern weights (the cohort itself, or one bootstrap replicate)."""

    n: np.ndarray  # candidates
    eligible: np.ndarray
    prescreen_pass: np.ndarray
    prescreen_unknown: np.ndarray
    fail: np.ndarray  # (..., k)
    sole: np.ndarray  # (..., k)
    shapley: np.ndarray  # (..., k)


def by_failed(pat: Patterns, counts: np.ndarray) -> np.ndarray:
    """(k + 1, k) float64: row f, the candidates failing exactly f criteria who fail each criterion,
    for (u,) integer pattern weights. Integer sums (per-byte histograms, no BLAS), so exact whatever the
    order of summation: the figures built from them are the same bytes on every machine and any
    OpenBLAS thread count (a float product's last bits follow OpenBLAS's thread split)."""
    k = pat.fails.shape[1]
    return bits.column_counts(pat.packed, k, group=pat.failed.astype(np.intp), groups=k + 1,
                              weights=np.asarray(counts, dtype=np.float64))


def _over_failed(table: np.ndarray, power: int = 1) -> np.ndarray:
    """sum over f >= 1 of table[..., f, :] / f**power, in the fixed order f = 1, 2, ..."""
    out = np.zeros(table.shape[:-2] + table.shape[-1:])
    for f in range(1, table.shape[-2]):
        out = out + table[..., f, :] / float(f) ** power
    return out


def shapley_sums(pat: Patterns, counts: np.ndarray) -> np.ndarray:
    """(k,) Shapley values for (u,) integer pattern weights: sum over patterns of count / |F_p| on
    each criterion the pattern fails, as exact integer sums per |F_p| (`by_failed`) divided in a fixed
    order."""
    return _over_failed(by_failed(pat, counts))


def _by_failed_many(pat: Patterns, counts: np.ndarray) -> np.ndarray:
    """(b, k + 1, k): `by_failed` for (b, u) integer weights (bootstrap draws). Each product sums
    integers, exact in any order, so BLAS's thread split cannot change it."""
    fails, nf = pat.fails_float, pat.failed
    k = fails.shape[1]
    out = np.zeros((counts.shape[0], k + 1, k))
    for f in np.unique(nf[nf > 0]):
        sel = nf == f
        out[:, f, :] = counts[:, sel] @ fails[sel]
    return out


def figures(pat: Patterns, counts: np.ndarray, prescreen: np.ndarray,
            shapley: np.ndarray | None = None, table: np.ndarray | None = None) -> Figures:
    """All additive figures for integer pattern weights `counts` ((u,) the cohort, or (b, u) bootstrap
    draws).

    Every figure is a sum of integers (exact in any order) or, for the Shapley values, such sums per
    number of failed criteria divided in a fixed order (`shapley_sums`; `shapley`: its result for these
    counts, when already computed): the same bytes on any machine. For the cohort the counts are summed
    without BLAS (`_counted`; `table`: `by_failed` of these (u,) counts, when already computed, gives
    the fail and sole-fail counts as its column sums and its row 1: the same integers)."""
    nf = pat.failed
    counts = np.asarray(counts, dtype=np.float64)
    pre_ok = pat.prescreen_pass(prescreen)
    if counts.ndim == 1 and table is not None:
        # integer-valued float64 sums below 2**53: exact in any order, the same bytes as `_counted`
        return Figures(
            n=counts.sum(axis=-1),
            eligible=counts[nf == 0].sum(),
            prescreen_pass=counts[pre_ok].sum(),
            prescreen_unknown=counts[pat.prescreen_unknown()].sum(),
            fail=table.sum(axis=0),
            sole=table[1].copy() if table.shape[0] > 1 else np.zeros(table.shape[1]),
            shapley=_over_failed(table) if shapley is None else shapley,
        )
    if counts.ndim == 1:
        one = nf == 1
        return Figures(
            n=counts.sum(axis=-1),
            eligible=counts[nf == 0].sum(),
            prescreen_pass=counts[pre_ok].sum(),
            prescreen_unknown=counts[pat.prescreen_unknown()].sum(),
            fail=_counted(pat, counts),
            sole=np.bincount(pat.fails[one].argmax(axis=1), weights=counts[one],
                             minlength=pat.fails.shape[1]).astype(np.float64),
            shapley=shapley_sums(pat, counts) if shapley is None else shapley,
        )
    # (b, u) integer draws: every product below sums integers, exact in any order; the fail and
    # sole-fail counts are the by-failed table's sums over f and its row f = 1 (the same integers as
    # `counts @ fails` and `counts[..., one] @ fails[one]`, without those two products)
    table = _by_failed_many(pat, counts)
    return Figures(
        n=counts.sum(axis=-1),
        eligible=counts @ (nf == 0),
        prescreen_pass=counts @ pre_ok,
        prescreen_unknown=counts @ pat.prescreen_unknown(),
        fail=table.sum(axis=1),
        sole=table[:, 1, :] if table.shape[1] > 1 else np.zeros(table.shape[:1] + table.shape[2:]),
        shapley=_over_failed(table),
    )


def _counted(pat: Patterns, counts: np.ndarray) -> np.ndarray:
    """(k,) float64: candidates failing each criterion, `counts @ fails` summed exactly (integer
    weights) from per-byte histograms of the packed patterns instead of a BLAS product, whose threads
    wait on each other on a busy machine."""
    k = pat.fails.shape[1]
    return bits.column_counts(pat.packed, k, weights=counts)[0]


def normal_intervals(pat: Patterns, prescreen: np.ndarray, z: float,
                     table: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Intervals from the exact bootstrap variance (the limit of infinitely many replicates).

    For a mean of per-candidate values x, the bootstrap variance is (E_w[x^2] - E_w[x]^2) / n with
    pattern weights w = count / n; for a ratio a/b the delta method uses x = a - (a/b) b, divided by
    b^2. Interval: estimate +- z sd, clipped to [0, 1]. Used when a resampling bootstrap over the
    distinct patterns would be slow (many patterns x replicates).
    """
    count = pat.count.astype(np.float64)
    n = float(count.sum())
    nf = pat.failed
    elig = nf == 0
    pre = pat.prescreen_pass(prescreen)
    out: dict[str, np.ndarray] = {}
    # Every mean is an integer sum (exact in any order) divided by n, or a few of them combined in a
    # fixed order: the same bytes on any machine and OpenBLAS thread count (no float BLAS product).

    def band(mean, var):
        sd = np.sqrt(np.maximum(var, 0.0))
        return np.stack([np.clip(mean - z * sd, 0, 1), np.clip(mean + z * sd, 0, 1)])

    means = {}
    for key, x in (("eligible_fraction", elig), ("prescreen_pass_fraction", pre),
                   ("prescreen_unknown_fraction", pat.prescreen_unknown())):
        m = means[key] = count[x].sum() / n
        out[key] = band(m, m * (1 - m) / n)
    m_pre, m_el = means["prescreen_pass_fraction"], means["eligible_fraction"]
    if m_pre > 0:
        # resid = elig - r pre takes 4 values; E[resid^2] from the integer count of each
        r = m_el / m_pre
        c11, c01, c10 = (count[elig & pre].sum(), count[~elig & pre].sum(), count[elig & ~pre].sum())
        e_resid2 = (c11 * (1 - r) ** 2 + c01 * r**2 + c10) / n
        out["screen_failure_rate"] = band(1 - r, e_resid2 / (n * m_pre**2))
    else:
        out["screen_failure_rate"] = np.zeros(2)
    # (k + 1, k) integer sums by number of failed criteria (`table`: already computed for these counts)
    table = by_failed(pat, count) if table is None else table
    p = table.sum(axis=0) / n
    out["fail_rate"] = band(p, p * (1 - p) / n)
    ps = table[1] / n
    out["sole_fail_rate"] = band(ps, ps * (1 - ps) / n)
    m_ex = count[~elig].sum() / n
    if m_ex > 0:
        # h = fails / nf is zero unless the candidate is excluded, so with resid = h - share * excl:
        # E[resid^2] = E[h^2] - 2 share E[h] + share^2 E[excl], and h^2 = fails / nf^2.
        m_h = _over_failed(table) / n
        m_h2 = _over_failed(table, 2) / n
        share = m_h / m_ex
        out["shapley_share"] = band(share, (m_h2 - 2 * share * m_h + share**2 * m_ex) / (n * m_ex**2))
    else:
        out["shapley_share"] = np.zeros((2, pat.fails.shape[1]))
    return out


def _rates(f: Figures) -> dict[str, np.ndarray]:
    n = np.maximum(f.n, 1)
    excluded = f.n - f.eligible
    with np.errstate(invalid="ignore", divide="ignore"):
        failed = f.prescreen_pass - f.eligible
        sfr = np.where(f.prescreen_pass > 0, failed / np.maximum(f.prescreen_pass, 1), 0.0)
        share = np.where(excluded[..., None] > 0, f.shapley / np.maximum(excluded, 1)[..., None], 0.0)
    return {
        "eligible_fraction": f.eligible / n,
        "prescreen_pass_fraction": f.prescreen_pass / n,
        "prescreen_unknown_fraction": f.prescreen_unknown / n,
        "screen_failure_rate": sfr,
        "fail_rate": f.fail / n[..., None],
        "sole_fail_rate": f.sole / n[..., None],
        "shapley_share": share,
    }


def funnel(pat: Patterns, order: np.ndarray, ids: tuple[str, ...], stages: np.ndarray) -> pl.DataFrame:
    """Attrition in screening order: each candidate is removed at the first criterion they fail."""
    n = int(pat.count.sum())
    ordered = pat.fails[:, order]
    has = ordered.any(axis=1)
    first = ordered.argmax(axis=1)
    dropped = np.bincount(first[has], weights=pat.count[has], minlength=len(order)).astype(np.int64)
    remaining = n - np.cumsum(dropped)
    return pl.DataFrame(
        {
            "step": np.arange(1, len(order) + 1, dtype=np.int64),
            "criterion_id": [ids[i] for i in order],
            "stage": [str(stages[i]) for i in order],
            "remaining": remaining,
            "dropped": dropped,
            "remaining_fraction": remaining / max(n, 1),
        }
    )


def chart_funnel(screening: Screening, fl: pl.DataFrame) -> pl.DataFrame:
    """The funnel as chart review sees it (`_chart_counts`)."""
    return _chart_counts(screening, fl)[0]


def _chart_counts(screening: Screening, fl: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray | None]:
    """The funnel as chart review sees it, in the order of the funnel `fl` (one row per step):

    - `prescreen_pass`: candidates still in chart review at this step who pass this criterion on
      values known at prescreen;
    - `prescreen_fail`: candidates removed at chart review by this criterion (their first criterion,
      in this order, that fails on values known at prescreen);
    - `prescreen_unknown`: candidates still in chart review at this step for whom the criterion is
      unknown (the chart does not decide it, or it is judged only after consent);
    - `screen_fail`: candidates who passed prescreen and are removed at screening by this criterion
      (their first failing criterion, in this order, on the true values).

    At each step prescreen_pass + prescreen_fail + prescreen_unknown = candidates still in chart
    review; prescreen_fail + screen_fail sums to the candidates excluded. Without a chart model
    (`screening.known` None) the prescreen-stage criteria come first and are all known, so the columns
    follow from the funnel itself; otherwise they are counted step by step on the screening's column
    bitmaps (`fail_columns`, `known_columns`: one bitmap over the candidates per criterion): at step s
    (criterion c) the candidates still in review are a bitmap, those of them with c known are counted,
    those with c known and failed are removed at s, and the candidates never removed then go through
    the steps again on their true failures. Popcounts of a few k ANDs of n-bit bitmaps, no per-row
    pass.

    Also returns, per criterion, the candidates for whom it is known at prescreen (None without a
    chart model), from the same bitmaps.
    """
    order = screening.order
    k = len(order)
    if screening.known is None:
        pre = np.asarray(fl["stage"].to_numpy() == "prescreen")
        dropped = fl["dropped"].to_numpy().astype(np.int64)
        remaining = fl["remaining"].to_numpy().astype(np.int64)
        passed = int(remaining[pre][-1]) if pre.any() else screening.n
        return pl.DataFrame({"prescreen_pass": np.where(pre, remaining, 0),
                             "prescreen_fail": np.where(pre, dropped, 0),
                             "prescreen_unknown": np.where(pre, 0, passed).astype(np.int64),
                             "screen_fail": np.where(pre, 0, dropped)}), None
    fails = screening.fail_columns.view(np.uint64)
    known = screening.known_columns.view(np.uint64)
    alive = bits.valid_bitmap(screening.n).view(np.uint64)  # still in chart review
    judged = np.zeros(k, np.int64)
    pre_fail = np.zeros(k, np.int64)
    still = np.zeros(k, np.int64)
    for s, c in enumerate(order):
        still[s] = bits.popcount(alive)
        here = alive & known[c]  # still in review, criterion known
        judged[s] = bits.popcount(here)
        here &= fails[c]  # removed here: their first known failure in this order
        pre_fail[s] = bits.popcount(here)
        alive ^= here
    scr_fail = np.zeros(k, np.int64)  # passed chart review: removed at their first true failure
    for s, c in enumerate(order):
        here = alive & fails[c]
        scr_fail[s] = bits.popcount(here)
        alive ^= here
    known_count = np.array([bits.popcount(row) for row in known], dtype=np.int64)
    return pl.DataFrame({"prescreen_pass": judged - pre_fail, "prescreen_fail": pre_fail,
                         "prescreen_unknown": still - judged, "screen_fail": scr_fail}), known_count


def cofailure(pat: Patterns, ids: tuple[str, ...], single: np.ndarray | None = None) -> pl.DataFrame:
    """Every pair (i < j, protocol order): candidates failing both, and lift over independence.

    Counted exactly, pair by pair: each pattern failing two or more criteria adds its count to every
    pair of the criteria it fails (every pair listed at once from the pattern's failing criteria), one
    weighted histogram; the same integers as F^T diag(count) F, without a BLAS product."""
    n = float(pat.count.sum())
    k = len(ids)
    weights = pat.count.astype(np.float64)
    single = _counted(pat, weights) if single is None else single
    # every (pattern, criterion) failure, row-major: each pattern's criteria in ascending order (one
    # flat scan of the bool matrix: np.nonzero on 2-D and a gather of the multi-failure rows cost 5x);
    # a pattern failing fewer than two criteria has no partner, so adds no pair
    row, col = np.divmod(np.flatnonzero(pat.fails), max(k, 1))
    per_row = pat.failed  # criteria each pattern fails
    pos = np.arange(len(row)) - (np.cumsum(per_row) - per_row)[row]  # place among its pattern's
    partners = per_row[row] - 1 - pos  # later criteria of the same pattern: each pair (first, later) once
    first = np.repeat(np.arange(len(row)), partners)
    later = first + np.arange(len(first)) - np.repeat(np.cumsum(partners) - partners, partners) + 1
    both = np.bincount(col[first] * k + col[later], weights=weights[row[first]],
                       minlength=k * k).reshape(k, k)
    a, b = np.triu_indices(k, k=1)
    expected = single[a] * single[b] / max(n, 1.0)
    lift = np.divide(both[a, b], expected, out=np.full(len(a), np.nan), where=expected > 0)
    return pl.DataFrame(
        {
            "criterion_a": [ids[i] for i in a],
            "criterion_b": [ids[j] for j in b],
            "both_fail": both[a, b].round().astype(np.int64),
            "expected_if_independent": expected,
            "lift": lift,
        }
    ).with_columns(pl.col("lift").fill_nan(None))


@dataclass(frozen=True)
class Restrictiveness:
    summary: dict[str, Any]
    criteria: pl.DataFrame
    funnel: pl.DataFrame
    cofailure: pl.DataFrame
    sweeps: pl.DataFrame | None = None
    relaxation: pl.DataFrame | None = None
    shapley: np.ndarray = field(default_factory=lambda: np.zeros(0))


def analyse(
    screening: Screening,
    *,
    screener: Screener | None = None,
    frame: pl.DataFrame | None = None,
    bootstrap: int | None = None,
    rng: np.random.Generator | None = None,
    target_fraction: float | None = None,
    level: float = 0.95,
    on_sweeps: Callable[[pl.DataFrame], None] | None = None,
) -> Restrictiveness:
    """Restrictiveness figures of a screening; sweeps and the relaxation plan need the screener and
    the candidate frame that was screened.

    Intervals: percentile bootstrap over candidates (`bootstrap` replicates, default from the config,
    else 200; multinomial draws over the distinct patterns from `rng`, use
    `hn005_sim.rng.stream(seed, 0, "bootstrap")`). When distinct patterns x replicates exceeds
    RESAMPLE_LIMIT, the intervals are normal with the exact bootstrap variance (`normal_intervals`);
    summary["interval_method"] says which.

    The rows the sweeps and the relaxation plan share (`relax.shared_rows`, every rule they ask for
    evaluated) and then the sweeps' counts run in a worker thread while this thread groups the
    patterns and counts the other figures, then the relaxation plan here beside the sweeps' counts.
    Neither thread's figures depend on the other's (the shared rows' caches hold the same values
    whichever thread fills them first), so the results do not depend on timing or thread count.

    on_sweeps: called with the sweeps' frame (the one returned as `.sweeps`), in the worker thread, as
    soon as it exists, while the other figures are still computed (`run` queues the report's costliest
    chart there; issue 16, phase 5). An exception it raises is raised by this function.
    """
    ids, stages, kinds = screening.ids, screening.stages, screening.kinds
    prescreen = np.flatnonzero(stages == "prescreen")
    if bootstrap is None:
        bootstrap = screener.cfg.bootstrap_replicates if screener is not None else 200
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    # The Shapley values and the normal intervals are integer sums (no float BLAS product, whose last
    # bits follow OpenBLAS's thread split and whose threads wait on each other on a busy machine).
    sweeps = relaxation = plan = None
    with ThreadPoolExecutor(1) as pool:
        # the rows the sweeps and the relaxation plan share, with every rule they ask for evaluated
        # (mostly polars, which releases the GIL), then the sweeps' counts, in a thread while the
        # figures below are computed; the relaxation plan then runs here on the same rows beside the
        # sweeps' counts. Each part reads the screening only and computes the same way whatever runs
        # beside it, so the results do not depend on timing or thread count
        changes = screener is not None and frame is not None
        if changes:
            from hn005_sim.eligibility.relax import relaxation_plan, shared_rows, threshold_sweeps

            rows_later = pool.submit(shared_rows, screener, screening, frame)
            def sweeps_then_announce() -> pl.DataFrame | None:
                out = threshold_sweeps(screener, screening, frame, rows_later.result())
                if on_sweeps is not None and out is not None:
                    on_sweeps(out)
                return out

            sweeps_later = pool.submit(sweeps_then_announce)
        pat = screening.patterns
        n = int(pat.count.sum())
        normal = bootstrap > 0 and n > 0 and len(pat.count) * bootstrap > RESAMPLE_LIMIT
        fl = funnel(pat, screening.order, ids, stages)
        chart, known_count = _chart_counts(screening, fl)
        fl = fl.hstack(chart)
        table = by_failed(pat, pat.count)  # once, for the Shapley values and the normal intervals
        base = figures(pat, pat.count, prescreen, shapley=_over_failed(table), table=table)
        co = cofailure(pat, ids, base.fail)
        if changes:
            relaxation, plan = relaxation_plan(screener, screening, frame, target_fraction,
                                               rows_later.result())
            sweeps = sweeps_later.result()
    bands = (normal_intervals(pat, prescreen, float(special.ndtri(hi_q)), table)  # z quantile
             if normal else None)
    point = _rates(base)
    eligible = round(float(base.eligible))
    # the share not known at prescreen, from the chart funnel's counts (Screening computes the same)
    unknown_rate = (1.0 - known_count / n if known_count is not None and n > 0
                    else screening.unknown_at_prescreen_rate)
    drop_share = np.zeros(len(ids))
    drop_share[screening.order] = fl["dropped"].to_numpy() / max(n, 1)

    intervals: dict[str, list[float]] = {}
    per_crit: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    method = "none"
    if normal:
        method = "normal, exact bootstrap variance"
        for key in ("eligible_fraction", "prescreen_pass_fraction", "prescreen_unknown_fraction",
                    "screen_failure_rate"):
            intervals[key] = [float(bands[key][0]), float(bands[key][1])]
        for key in ("fail_rate", "sole_fail_rate", "shapley_share"):
            per_crit[key] = (bands[key][0], bands[key][1])
    elif bootstrap > 0 and n > 0:
        method = f"percentile bootstrap, {bootstrap} replicates"
        rng = rng if rng is not None else np.random.default_rng(0)
        draws = rng.multinomial(n, pat.count / n, size=bootstrap)
        boot = _rates(figures(pat, draws, prescreen))
        for key in ("eligible_fraction", "prescreen_pass_fraction", "prescreen_unknown_fraction",
                    "screen_failure_rate"):
            lo, hi = np.quantile(boot[key], [lo_q, hi_q])
            intervals[key] = [float(lo), float(hi)]
        for key in ("fail_rate", "sole_fail_rate", "shapley_share"):
            per_crit[key] = (np.quantile(boot[key], lo_q, axis=0), np.quantile(boot[key], hi_q, axis=0))
    else:
        for key in ("fail_rate", "sole_fail_rate", "shapley_share"):
            per_crit[key] = (np.full(len(ids), np.nan), np.full(len(ids), np.nan))

    crit = pl.DataFrame(
        {
            "criterion_id": list(ids),
            "kind": [str(k) for k in kinds],
            "stage": [str(s) for s in stages],
            "fail_rate": point["fail_rate"],
            "sole_fail_rate": point["sole_fail_rate"],
            "shapley": base.shapley,
            "shapley_share": point["shapley_share"],
            "funnel_drop": drop_share,
            "fail_rate_lo": per_crit["fail_rate"][0],
            "fail_rate_hi": per_crit["fail_rate"][1],
            "sole_fail_rate_lo": per_crit["sole_fail_rate"][0],
            "sole_fail_rate_hi": per_crit["sole_fail_rate"][1],
            "shapley_share_lo": per_crit["shapley_share"][0],
            "shapley_share_hi": per_crit["shapley_share"][1],
            "unknown_at_prescreen_rate": unknown_rate,
        }
    ).with_columns(pl.col("^.*_(lo|hi)$").fill_nan(None))

    summary: dict[str, Any] = {
        "patients": n,
        "eligible": eligible,
        "eligible_fraction": float(point["eligible_fraction"]),
        "excluded": n - eligible,
        "prescreen_pass_fraction": float(point["prescreen_pass_fraction"]),
        "prescreen_fail_fraction": 1.0 - float(point["prescreen_pass_fraction"]) if n else 0.0,
        "prescreen_unknown_fraction": float(point["prescreen_unknown_fraction"]),
        "screen_failure_rate": float(point["screen_failure_rate"]),
        "intervals": intervals,
        "interval_level": level,
        "interval_method": method,
        "bootstrap_replicates": bootstrap if method.startswith("percentile") else 0,
        "distinct_failure_patterns": len(pat.count),
    }
    if plan is not None:
        summary["relaxation_plan"] = plan
    return Restrictiveness(summary, crit, fl, co, sweeps, relaxation, base.shapley)

