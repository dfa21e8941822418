"""Paired differences between scenarios run with common random numbers (`compare`, `sweep`).

Scenarios run with the same seed and number of replicates share their random streams replicate by
replicate (hn005_sim.rng: a stream is a function of seed, replicate and purpose), so replicate i of
scenario B differs from replicate i of scenario A only by the change between them. The difference of a
key figure is therefore judged on the per-replicate *paired* differences, which cancel most of the
noise the two figures share:

- figures that are means over replicates (probabilities, fractions, mean patient-days): the mean of
  the per-replicate differences d_i = b_i - a_i, with the normal interval mean +- z * sd(d) / sqrt(n)
  (z for CONFIDENCE, sd with n - 1); identical scenarios give d_i = 0, so 0 with a zero-width interval;
- quantile figures (median months to target, packs to make at P95, ...): the difference of the two
  quantiles, with a paired bootstrap: BOOTSTRAP_RESAMPLES resamples of the replicate indices (the same
  indices for both scenarios), from a generator seeded with BOOTSTRAP_SEED, and the central CONFIDENCE
  share of the resampled differences. A quantile that lands on a run which never reached the target is
  undefined (as in summary.json); when more than the interval's tail share of resamples are undefined
  the interval is left empty.

A difference is *within noise* when its interval covers 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hn005_sim.recruitment.config import MONTH_DAYS

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20230901
RATE_BINS = 10_000  # as montecarlo.RATE_BINS: the screen-failure rate is binned before its quantiles


@dataclass(frozen=True)
class Figure:
    key: str  # dotted summary key
    series: str  # per-replicate series it is computed from
    q: float | None  # None: mean over replicates; else the quantile


def _z() -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + CONFIDENCE / 2))


class ReplicateFigures:
    """Per-replicate values of the key figures of one scenario's run, in replicate order.

    Pass the instance as `run_scenario(..., on_record=figures)`; it reads each ReplicateRecord the way
    montecarlo.Aggregate does, so the figures computed here equal summary.json's.
    """

    def __init__(self, target: int, deadline_months: float):
        self.target = int(target)
        self.deadline_day = float(deadline_months) * MONTH_DAYS
        self.series: dict[str, list[float]] = {}
        self.drugs: list[str] = []
        self.n = 0

    def _put(self, name: str, value: float) -> None:
        self.series.setdefault(name, []).append(float(value))

    def __call__(self, rec: Any) -> None:
        t = self.target
        by_deadline = min(int(np.searchsorted(rec.enrol_day, self.deadline_day, side="right")), t)
        self._put("reached_by_deadline", by_deadline >= t)
        self._put("enrolled_by_deadline", by_deadline)
        ttt = rec.time_to_target_day
        reached = ttt is not None and math.isfinite(ttt)
        self._put("ttt_months", ttt / MONTH_DAYS if reached else math.inf)
        self._put("ttt_reached", reached)
        self._put("screened", rec.screened)
        decided = rec.screen_failures + rec.withdrawn + rec.enrolled
        rate = rec.screen_failures / decided if decided > 0 else 0.0
        self._put("screen_failure_rate", round(rate * RATE_BINS) / RATE_BINS)
        sites = np.asarray(rec.site_enrolled)
        self._put("sites_zero", float((sites == 0).mean()) if sites.size else 0.0)
        sup = getattr(rec, "supply", None)
        if sup is not None:
            waste = sup.wasted_expiry + sup.wasted_returns
            for d in dict.fromkeys(sup.drugs):
                if d not in self.drugs:
                    self.drugs.append(d)
                self._put(f"{d}.stockout", sup.stockout(d))
                self._put(f"{d}.missed", sup.stockout(d, sup.missed_events))
                self._put(f"{d}.out_of_stock", sup.stockout(d, sup.out_of_stock_events))
                self._put(f"{d}.manufacture", sup.drug_total(sup.released, d))
                self._put(f"{d}.waste", round(sup.drug_total(waste, d) * 1000) / 1000)
                self._put(f"{d}.days_without", round(sup.patient_days_without[d] * 1000) / 1000)
        self.n += 1

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=float) for k, v in self.series.items()}

    def figures(self) -> list[Figure]:
        out = [Figure("prob_target_by_deadline", "reached_by_deadline", None)]
        out += [Figure(f"time_to_target_months.p{p}", "ttt_months", p / 100) for p in (10, 50, 90)]
        out.append(Figure("time_to_target_months.reached_fraction", "ttt_reached", None))
        for name in ("enrolled_by_deadline", "screened", "screen_failure_rate"):
            out += [Figure(f"{name}.p{p}", name, p / 100) for p in (10, 50, 90)]
        out.append(Figure("sites_zero_enrolled_fraction", "sites_zero", None))
        for d in self.drugs:
            out += [Figure(f"supply.{d}.stockout_probability", f"{d}.stockout", None),
                    Figure(f"supply.{d}.missed_dispensing_probability", f"{d}.missed", None),
                    Figure(f"supply.{d}.out_of_stock_probability", f"{d}.out_of_stock", None),
                    Figure(f"supply.{d}.units_p50", f"{d}.manufacture", 0.5),
                    Figure(f"supply.{d}.units_p90", f"{d}.manufacture", 0.9),
                    Figure(f"supply.{d}.units_p95", f"{d}.manufacture", 0.95),
                    Figure(f"supply.{d}.waste_p50", f"{d}.waste", 0.5),
                    Figure(f"supply.{d}.patient_days_without_drug_mean", f"{d}.days_without", None)]
        return out


def quantile_sorted(xs: np.ndarray, q: float) -> np.ndarray:
    """numpy's linear quantile along the last axis of sorted values, undefined (nan) where it needs a
    value that is infinite (a run that never reached the target), as summary.json's quantiles are."""
    n = xs.shape[-1]
    h = (n - 1) * q
    lo = math.floor(h)
    frac = h - lo
    x_lo = xs[..., lo]
    if frac == 0:
        out = x_lo.astype(float)
    else:
        x_hi = xs[..., min(lo + 1, n - 1)]
        with np.errstate(invalid="ignore"):
            out = x_lo + frac * (x_hi - x_lo)
    return np.where(np.isfinite(out), out, np.nan)


def statistic(values: np.ndarray, q: float | None) -> float | None:
    if values.size == 0:
        return None
    if q is None:
        return float(values.mean())
    v = float(quantile_sorted(np.sort(values), q))
    return None if math.isnan(v) else v


@dataclass(frozen=True)
class Difference:
    key: str
    difference: float | None  # B - A
    low: float | None
    high: float | None
    method: str  # "paired mean", "paired bootstrap", or why there is no interval

    @property
    def within_noise(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low <= 0.0 <= self.high


def paired_mean(a: np.ndarray, b: np.ndarray) -> tuple[float, float | None, float | None]:
    d = b - a
    m = float(d.mean())
    if d.size < 2:
        return m, None, None
    half = _z() * float(d.std(ddof=1)) / math.sqrt(d.size)
    return m, m - half, m + half


def paired_bootstrap(a: np.ndarray, b: np.ndarray, q: float, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> tuple[float | None, float | None, float | None]:
    """(Q(b) - Q(a), low, high): the same resampled replicate indices for both scenarios."""
    qa, qb = statistic(a, q), statistic(b, q)
    diff = None if qa is None or qb is None else qb - qa
    n = a.size
    if n < 2:
        return diff, None, None
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = (quantile_sorted(np.sort(b[idx], axis=1), q)
                           - quantile_sorted(np.sort(a[idx], axis=1), q))
    tail = (1 - CONFIDENCE) / 2
    ok = out[np.isfinite(out)]
    if ok.size < (1 - tail) * resamples:
        return diff, None, None
    # resamples whose quantile is undefined (fewer than the tail share) are left out
    low, high = np.quantile(ok, [tail, 1 - tail])
    return diff, float(low), float(high)


def differences(first: ReplicateFigures, other: ReplicateFigures) -> dict[str, Difference]:
    """Every key figure of `other` minus `first`, with its paired interval."""
    if first.n != other.n:
        raise ValueError(f"paired differences need the same replicates ({first.n} vs {other.n})")
    fa, fb = first.arrays(), other.arrays()
    keys = {f.key: f for f in first.figures()}
    out: dict[str, Difference] = {}
    for fig in other.figures():
        if fig.key not in keys or fig.series not in fa or fig.series not in fb:
            continue
        a, b = fa[fig.series], fb[fig.series]
        if fig.q is None:
            d, lo, hi = paired_mean(a, b)
            method = "paired mean"
        else:
            d, lo, hi = paired_bootstrap(a, b, fig.q)
            method = "paired bootstrap"
        if lo is None:
            method += ": no interval (too few replicates, or the figure is undefined in many resamples)"
        out[fig.key] = Difference(fig.key, d, lo, hi, method)
    return out


def point_difference(key: str, first: dict[str, float], other: dict[str, float]) -> Difference:
    """The difference of two summaries' figures without per-replicate values (an output folder)."""
    a, b = first.get(key), other.get(key)
    d = None if a is None or b is None else b - a
    return Difference(key, d, None, None, "no interval: an output folder has no per-replicate figures")


def check_paired(inputs: dict[str, dict[str, Any]], what: str = "inputs") -> str | None:
    """Why the inputs cannot be paired (different seeds or replicates), or None when they can."""
    problems = []
    for field in ("seed", "replicates"):
        seen = {n: s.get(field) for n, s in inputs.items() if s.get(field) is not None}
        if len(set(seen.values())) > 1:
            problems.append(f"{field} (" + ", ".join(f"{n}: {int(v)}" for n, v in seen.items()) + ")")
    if not problems:
        return None
    return (f"{what} differ in " + " and ".join(problems) + ": their replicates do not share random numbers, "
            "so differences between them carry both runs' noise")


def signed(value: float | None, fmt: Callable[[float], str]) -> str:
    if value is None:
        return "—"
    text = fmt(abs(value))
    return ("+" if value > 0 else "−" if value < 0 else "") + text


# ---------------------------------------------------------------------------------------------------
# users' words for every figure a comparison shows

_PARTS = {
    "funnel_mean": "per run, mean",
    "enrolled_baseline": "enrolled patients",
    "baseline": "eligible candidates",
    "sites_needed": "sites needed (analytic)",
    "intervals": "interval",
    "supply": "",
}
_WORDS = {
    "seed": "Random seed",
    "replicates": "Runs (replicates)",
    "target_enrolled": "Target enrolment (patients)",
    "deadline_months": "Deadline (months)",
    "horizon_months": "Simulated horizon (months)",
    "time_to_target_months.mean": "Months to reach the target (mean of the runs that reach it)",
    "enrolled_by_deadline.p90": "Patients enrolled by the deadline (90th percentile)",
    "screened.p10": "Candidates screened (10th percentile)",
    "screened.p90": "Candidates screened (90th percentile)",
    "screen_failure_rate.p10": "Screen failure rate (10th percentile)",
    "screen_failure_rate.p90": "Screen failure rate (90th percentile)",
    "cycles_per_replicate_mean": "Treatment cycles per run (mean)",
}
_SUPPLY = {
    "units_p50": ("packs to make (median)", "int"),
    "units_p90": ("packs to make (90th percentile)", "int"),
    "units_p95": ("packs to make (95th percentile)", "int"),
    "stockout_probability": ("runs with a failed dispensing (any stock-out)", "pct"),
    "missed_dispensing_probability": ("runs with a dispensing missed at a site (stock upstream)", "pct"),
    "out_of_stock_probability": ("runs out of stock (none upstream)", "pct"),
    "waste_p50": ("packs wasted (median)", "num"),
    "waste_packs_p50": ("packs wasted (median)", "num"),
    "waste_packs_mean": ("packs wasted (mean)", "num"),
    "dispensed_p50": ("packs dispensed (median)", "int"),
    "dispensed_packs_mean": ("packs dispensed (mean)", "num"),
    "manufacture_packs_mean": ("packs to make (mean)", "num"),
    "patient_days_without_drug_mean": ("patient-days without drug (mean)", "num"),
}
_INTS = {"seed", "replicates", "target_enrolled", "patients"}


def figure_label(key: str) -> str:
    """A summary key in users' words: 'supply.anlotinib.units_p95' -> 'anlotinib: packs to make (95th
    percentile)'; keys without a written label read as words (no underscores)."""
    from hn005_sim.report.tables import KEY_FIGURES

    labels = {k: label for k, label, _ in KEY_FIGURES}
    if key in labels:
        return labels[key]
    if key in _WORDS:
        return _WORDS[key]
    parts = key.split(".")
    if parts[0] == "supply" and len(parts) == 3 and parts[2] in _SUPPLY:
        return f"{parts[1]}: {_SUPPLY[parts[2]][0]}"
    words = [_PARTS.get(p, p) for p in parts]
    text = " · ".join(w.replace("_", " ") for w in words if w)
    return text[:1].upper() + text[1:]


def figure_kind(key: str) -> str:
    """'pct', 'int' or 'num': how the figure is formatted (one way for every percentage)."""
    from hn005_sim.report.tables import KEY_FIGURES

    kinds = {k: kind for k, _, kind in KEY_FIGURES}
    if key in kinds:
        return kinds[key]
    parts = key.split(".")
    last = parts[-1]
    if parts[0] == "supply" and len(parts) == 3 and last in _SUPPLY:
        return _SUPPLY[last][1]
    if last in _INTS:
        return "int"
    if (last.endswith(("_probability", "_fraction", "fraction")) or last.startswith("prob_")
            or (parts[0] == "screen_failure_rate")):
        return "pct"
    return "num"


def format_difference(d: Difference, kind: str) -> str:
    """'+2.5 pp (−0.4 to +5.4), within noise': percentage figures differ in percentage points."""
    from hn005_sim.report.tables import format_figure

    if d.difference is None:
        return "—"

    def one(v: float) -> str:
        if kind == "pct":
            return f"{100 * v:.1f} pp"
        return format_figure(float(v), "num")

    text = signed(d.difference, one)
    if d.low is not None and d.high is not None:
        text += f" ({signed(d.low, one)} to {signed(d.high, one)})"
        text += ", within noise" if d.within_noise else ""
    return text
