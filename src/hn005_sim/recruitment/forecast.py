"""Re-forecast a running trial from what its sites have enrolled so far (Bayesian Poisson-gamma).

Model (Anisimov & Fedorov, Stat Med 2007;26:4958; Mountain & Sherlock, Biometrics 2022;78:636):
the counted enrolment rate of a site of region r is lambda ~ Gamma(a_r, b_r), a_r = m^2/v, b_r = m/v,
with m and v the region's rate mean and variance after dropout (m(1-d), v(1-d)^2). A site that has
been open for t_i months (exposure: less half a ramp-up) and enrolled k_i has the posterior

    lambda_i | k_i ~ Gamma(a_r + k_i, b_r + t_i)                   (gamma-Poisson conjugacy)

and its count over the next e months is negative binomial NB(a_r + k_i, (b_r + t_i)/(b_r + t_i + e)).
A site that has not opened by the forecast month T0 keeps the prior and its start-up law conditioned on
not having opened yet: U | U > T0 (or never, with probability never_open / (never_open + (1 -
never_open) P(U > T0))). Sites are independent, so the enrolments still to come by T0 + h have the
PGF  prod_i G_i(z; h), evaluated by the exact FFT of analytic.py (its SiteGroup / Activation / Evaluator,
one group per observed site). With R = target - enrolled so far:

    P(target by the deadline D) = P(S(D - T0) >= R),  P(time to target <= T0 + h) = P(S(h) >= R).

One site open, no others: the remaining time to R is a gamma-mixed Erlang, tau = G_R / lambda, so
(tau a') / (b' R) ~ F(2R, 2a') with a' = a + k, b' = b + t (`one_site_remaining_time`); a test checks
that the FFT inversion gives the same quantiles.

`refit_prior` re-estimates a region's (a, b) from its open sites by maximum likelihood of the
negative-binomial marginal k_i ~ NB(a, b/(b + t_i)) when at least `MIN_REFIT_SITES` are open.
`additional_sites` finds the fewest (cheapest, with costs) new sites per region, opening after their
start-up from T0 with the region's prior, that bring P(target by deadline) up to p (planning.optimise
on the exact probability). Time in months (30.4375 days) since the trial started.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import integrate, optimize, special, stats

from hn005_sim.recruitment import analytic as A
from hn005_sim.recruitment import planning as P
from hn005_sim.scenario import dists as D

MIN_REFIT_SITES = 5
"""Open sites a region needs before --refit re-estimates its prior (two parameters from k_i, t_i)."""
TIME_PROBS = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
TIME_KEYS = ("p05", "p10", "p25", "p50", "p75", "p90", "p95")
COUNT_PROBS = (0.05, 0.10, 0.50, 0.90, 0.95)
COUNT_KEYS = ("p05", "p10", "p50", "p90", "p95")
BEHIND, AHEAD = 0.9, 0.1
"""A site is flagged `behind` when P(its rate < the plan's) >= 0.9, `ahead` when <= 0.1."""
OUTCOMES = ("prescreen_fail", "no_consent", "screen_fail", "withdrawn", "enrolled")


class ObservedError(ValueError):
    """A problem in the observed or log file (one line naming the file, row and column)."""


# ------------------------------------------------------------------------------------ observed files


@dataclass(frozen=True)
class ObservedSite:
    site: str
    region: str
    opened_month: float | None  # None: not open yet
    enrolled: int
    screened: int | None = None
    screen_failed: int | None = None


@dataclass(frozen=True)
class LogRow:
    site: str
    month: float
    outcome: str
    criterion: str | None


def _rows(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> list[tuple[int, dict]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ObservedError(f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ObservedError(f"{name}: cannot be read as UTF-8 text ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise ObservedError(f"{name}: empty; expected a header row with columns {', '.join(required)}")
    missing = [c for c in required if c not in header]
    if missing:
        raise ObservedError(
            f"{name}: missing column {missing[0]!r}; expected columns {', '.join(required)}"
            + (f" (optional: {', '.join(optional)})" if optional else "")
        )
    unknown = [c for c in header if c not in (*required, *optional)]
    if unknown:
        raise ObservedError(
            f"{name}: unknown column {unknown[0]!r}; expected {', '.join((*required, *optional))}"
        )
    out = []
    for i, row in enumerate(reader, start=2):  # row 1 is the header
        if None in row:
            raise ObservedError(f"{name}: row {i}: more fields than the header's {len(header)}")
        clean = {k.strip(): (v or "").strip() for k, v in row.items()}
        if not any(clean.values()):
            continue
        out.append((i, clean))
    if not out:
        raise ObservedError(f"{name}: no data rows; expected one row per site")
    return out


def _number(
    name: str, i: int, col: str, text: str, *, whole: bool, low: float = 0.0, high: float = P.MAX_MONTHS
) -> float:
    kind = "a whole number" if whole else "a number"
    what = f"expected {kind} from {low:g} to {high:,g}"
    try:
        v = float(text)
    except ValueError:
        raise ObservedError(f"{name}: row {i}, column {col!r}: {what}, got {text!r}") from None
    if not math.isfinite(v) or v < low or v > high or (whole and v != int(v)):
        raise ObservedError(f"{name}: row {i}, column {col!r}: {what}, got {text!r}")
    return int(v) if whole else v


def read_observed(path: str | Path, regions: Sequence[str], as_of: float) -> list[ObservedSite]:
    """The observed file, one row per site: site, region, opened_month, enrolled, optional screened."""
    path = Path(path)
    name = str(path)
    rows = _rows(path, ("site", "region", "opened_month", "enrolled"), ("screened", "screen_failed"))
    out: list[ObservedSite] = []
    seen: dict[str, int] = {}
    for i, r in rows:
        site = r["site"]
        if not site:
            raise ObservedError(f"{name}: row {i}, column 'site': expected a site name, got an empty cell")
        if site in seen:
            raise ObservedError(
                f"{name}: row {i}, column 'site': {site!r} is listed twice (also row {seen[site]})"
            )
        seen[site] = i
        if r["region"] not in regions:
            raise ObservedError(
                f"{name}: row {i}, column 'region': expected one of {', '.join(regions)}, got {r['region']!r}"
            )
        opened = None
        if r["opened_month"] != "":
            opened = _number(name, i, "opened_month", r["opened_month"], whole=False)
            if opened > as_of:
                raise ObservedError(
                    f"{name}: row {i}, column 'opened_month': expected a month <= --as-of {as_of:g} "
                    "(or empty "
                    f"for a site not open yet), got {r['opened_month']!r}"
                )
        enrolled = _number(name, i, "enrolled", r["enrolled"], whole=True, high=P.MAX_TARGET)
        if opened is None and enrolled:
            raise ObservedError(
                f"{name}: row {i}, column 'enrolled': expected 0 for a site not open yet "
                "(empty opened_month), "
                f"got {r['enrolled']!r}"
            )
        extra: dict[str, int | None] = {}
        for col in ("screened", "screen_failed"):
            text = r.get(col, "")
            extra[col] = None if text == "" else int(_number(name, i, col, text, whole=True, high=10**9))
        if extra["screened"] is not None and extra["screened"] < enrolled:
            raise ObservedError(
                f"{name}: row {i}, column 'screened': expected at least the {enrolled} enrolled, "
                f"got {r['screened']!r}"
            )
        sc, sf = extra["screened"], extra["screen_failed"]
        if sf is not None and sc is not None and sf > sc - enrolled:
            raise ObservedError(
                f"{name}: row {i}, column 'screen_failed': expected at most screened - enrolled = "
                f"{sc - enrolled}, got {r['screen_failed']!r}"
            )
        out.append(ObservedSite(site, r["region"], opened, int(enrolled), sc, sf))
    return out


def observed_screening(observed: Sequence[ObservedSite]) -> dict[str, Any] | None:
    """Totals of the optional `screened` / `screen_failed` columns over the sites that give both, and the
    screen-failure share (posterior mean under a uniform Beta(1, 1) prior); None when no site gives them."""
    rows = [s for s in observed if s.screened is not None and s.screen_failed is not None]
    if not rows:
        return None
    screened = sum(s.screened for s in rows)
    failed = sum(s.screen_failed for s in rows)
    return {
        "sites_reporting": len(rows),
        "screened": screened,
        "screen_failed": failed,
        "screen_failure_rate": (failed + 1) / (screened + 2),
        "per_site": {s.site: {"screened": s.screened, "screen_failed": s.screen_failed} for s in rows},
    }


def read_log(path: str | Path, sites: Sequence[str], as_of: float) -> list[LogRow]:
    """The candidate log: one row per candidate (site, month, outcome[, criterion])."""
    path = Path(path)
    name = str(path)
    rows = _rows(path, ("site", "month", "outcome"), ("criterion",))
    known = set(sites)
    out = []
    for i, r in rows:
        if r["site"] not in known:
            raise ObservedError(
                f"{name}: row {i}, column 'site': expected a site of the observed file, got {r['site']!r}"
            )
        month = _number(name, i, "month", r["month"], whole=False)
        if month > as_of:
            raise ObservedError(
                f"{name}: row {i}, column 'month': expected a month <= --as-of {as_of:g}, got {r['month']!r}"
            )
        if r["outcome"] not in OUTCOMES:
            raise ObservedError(
                f"{name}: row {i}, column 'outcome': expected one of {', '.join(OUTCOMES)}, "
                f"got {r['outcome']!r}"
            )
        crit = r.get("criterion") or None
        if crit is not None and r["outcome"] not in ("prescreen_fail", "screen_fail"):
            raise ObservedError(
                f"{name}: row {i}, column 'criterion': expected empty for outcome {r['outcome']!r} "
                "(criteria are for "
                f"prescreen_fail and screen_fail), got {crit!r}"
            )
        out.append(LogRow(r["site"], month, r["outcome"], crit))
    return out


def check_log_against_observed(
    log: Sequence[LogRow], observed: Sequence[ObservedSite], log_name: str
) -> None:
    """Each site's enrolled in the log must equal its `enrolled` in the observed file."""
    counts: dict[str, int] = {}
    for row in log:
        if row.outcome == "enrolled":
            counts[row.site] = counts.get(row.site, 0) + 1
    for s in observed:
        if counts.get(s.site, 0) != s.enrolled:
            raise ObservedError(
                f"{log_name}: site {s.site!r}: expected {s.enrolled} rows with outcome 'enrolled' "
                "(the observed "
                f"file's count), got {counts.get(s.site, 0)}"
            )


def funnel_from_log(log: Sequence[LogRow]) -> dict[str, Any]:
    """Stage pass shares from the log (posterior means under uniform Beta(1, 1) priors) and failure shares."""
    n = {o: sum(r.outcome == o for r in log) for o in OUTCOMES}
    total = len(log)
    after_pre = total - n["prescreen_fail"]
    after_consent = after_pre - n["no_consent"]
    after_screen = after_consent - n["screen_fail"]

    def share(passed: int, of: int) -> float:
        return (passed + 1) / (of + 2)

    crit: dict[str, dict[str, int]] = {}
    for r in log:
        if r.criterion is not None:
            crit.setdefault(r.outcome, {}).setdefault(r.criterion, 0)
            crit[r.outcome][r.criterion] += 1
    shares = {
        stage: {c: k / max(1, n[stage]) for c, k in sorted(d.items(), key=lambda kv: -kv[1])}
        for stage, d in crit.items()
    }
    return {
        "candidates": total,
        "counts": n,
        "prescreen_pass": share(after_pre, total),
        "consent": share(after_consent, after_pre),
        "screen_pass": share(after_screen, after_consent),
        "no_withdrawal": share(n["enrolled"], after_screen),
        "enrol_probability": share(n["enrolled"], total),
        "criterion_failure_shares": shares,
        "prior": "uniform Beta(1, 1) on each stage's pass probability; figures are posterior means",
    }


def observed_curve(
    log: Sequence[LogRow] | None, observed: Sequence[ObservedSite], as_of: float
) -> list[dict]:
    """Cumulative enrolled by month up to --as-of: from the log's enrolment months when given, else the
    two points known from the observed file (0 at month 0, the total at --as-of)."""
    total = sum(s.enrolled for s in observed)
    if not log:
        return [{"month": 0.0, "enrolled": 0}, {"month": float(as_of), "enrolled": total}]
    months = sorted(r.month for r in log if r.outcome == "enrolled")
    grid = [float(m) for m in range(0, math.floor(as_of) + 1)]
    if grid[-1] < as_of:
        grid.append(float(as_of))
    return [{"month": m, "enrolled": int(np.searchsorted(months, m, side="right"))} for m in grid]


# -------------------------------------------------------------------------------------- activation laws


@dataclass(frozen=True)
class Continuing(A.Activation):
    """A site open since `opened` (months since start): its exposure from `as_of` to as_of + horizon."""

    opened: float = 0.0
    as_of: float = 0.0

    def _compute_nodes(self, horizon: float) -> tuple[np.ndarray, np.ndarray]:
        u = np.array([self.opened])
        e = self.exposure(u, self.as_of + horizon) - self.exposure(u, self.as_of)
        return np.maximum(e, 0.0), np.array([1.0])


def _tail_nodes(dist, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x and weights w with sum w f(x) = E[f(min(X, hi)); X > lo] (X in the law's own unit)."""
    atoms = A._atoms(dist)
    if atoms is not None:
        v, p = atoms
        keep = v > lo
        return np.minimum(v[keep], hi), p[keep]
    if isinstance(dist, D.Piecewise):
        xs, ws = [], []
        total = sum(dist.probs)
        for a, b, p in zip(dist.breaks[:-1], dist.breaks[1:], dist.probs, strict=True):
            x, w = _tail_nodes(D.Uniform(dist="uniform", low=a, high=b), lo, hi)
            xs.append(x)
            ws.append(w * p / total)
        return np.concatenate(xs), np.concatenate(ws)
    law = A._law(dist)
    if law is None:
        raise TypeError(f"no quadrature for start-up distribution {type(dist).__name__}")
    if hi > lo:
        x, w = A._gauss_in_probability(law, lo, hi, 6)
    else:
        x, w = np.empty(0), np.empty(0)
    return np.concatenate([x, [hi]]), np.concatenate([w, [float(law.sf(max(hi, lo)))]])


@dataclass(frozen=True)
class NotYetOpen(A.Activation):
    """A selected site not open by `as_of`: start-up U | U > as_of (or never); exposure after as_of.

    When the start-up law leaves no chance of opening later (e.g. a constant already passed) and
    never_open is 0, the site is taken to open at `as_of` itself (late, but about to open).
    """

    as_of: float = 0.0

    def conditional_never_open(self) -> float:
        later = self._later_mass()
        denom = self.never_open + (1 - self.never_open) * later
        return 0.0 if denom <= 0 else self.never_open / denom

    def _later_mass(self) -> float:
        if self.dist is None:
            return 0.0
        _, w = _tail_nodes(self.dist, self.as_of / self.scale, self.as_of / self.scale)
        return float(w.sum())

    def _compute_nodes(self, horizon: float) -> tuple[np.ndarray, np.ndarray]:
        t0, end = self.as_of, self.as_of + horizon
        if self.close_month is not None:
            end = min(end, self.close_month)
        later = self._later_mass()
        denom = self.never_open + (1 - self.never_open) * later
        if denom <= 0:  # should have opened already: opens now
            return self.exposure(np.array([t0]), t0 + horizon), np.array([1.0])
        x, w = (
            _tail_nodes(self.dist, t0 / self.scale, max(end, t0) / self.scale)
            if self.dist is not None
            else (np.empty(0), np.empty(0))
        )
        e = self.exposure(x * self.scale, t0 + horizon)
        w = w * (1 - self.never_open) / denom
        return np.concatenate([e, [0.0]]), np.concatenate([w, [self.never_open / denom]])

    def sample_start(self, rng: np.random.Generator) -> float | None:
        """One draw of the opening month (absolute) given not open by as_of; None: never opens."""
        if rng.random() < self.conditional_never_open():
            return None
        if self.dist is None or self._later_mass() <= 0:
            return self.as_of
        lo = self.as_of / self.scale
        atoms = A._atoms(self.dist)
        if atoms is not None:
            v, p = atoms
            keep = v > lo
            pk = p[keep] / p[keep].sum()
            return float(rng.choice(v[keep], p=pk)) * self.scale
        law = A._law(self.dist)
        if law is not None:
            f_lo = float(law.cdf(lo))
            return float(law.ppf(f_lo + rng.random() * (1 - f_lo))) * self.scale
        for _ in range(100_000):  # piecewise: rejection from the law's own sampler
            x = float(self.dist.sample(rng, 1)[0])
            if x > lo:
                return x * self.scale
        return self.as_of


def shifted(act: A.Activation, as_of: float) -> A.Activation:
    """A new site selected at `as_of`: its start-up counts from as_of (closing month made relative)."""
    close = None if act.close_month is None else max(act.close_month - as_of, 0.0)
    return A.Activation(act.dist, act.scale, act.never_open, act.ramp_up_months, close)


# ------------------------------------------------------------------------------------------- priors


@dataclass(frozen=True)
class Prior:
    """A region's prior on the counted rate: Gamma(shape, rate); variance 0 = a known rate."""

    region: str
    mean: float  # counted (after dropout) enrolments per site per month
    variance: float
    activation: A.Activation
    dropout: float
    plan_mean: float  # the plan's rate_mean (before dropout), for the flag and the report
    refit: dict[str, Any] | None = None

    @property
    def plan_counted(self) -> float:
        """The plan's rate after dropout (what `prob_rate_below_plan` compares with)."""
        return self.plan_mean * (1 - self.dropout)

    @property
    def shape_rate(self) -> tuple[float, float]:
        return A.gamma_params(self.mean, self.variance)


def priors_from_plan(plan: P.Plan) -> dict[str, Prior]:
    out = {}
    for r, g in zip(plan.regions, P.site_groups(plan), strict=True):
        out[r.name] = Prior(
            r.name, g.effective_mean, g.effective_variance, g.activation, r.dropout, r.rate_mean
        )
    return out


def nb_loglik(a: float, b: float, k: np.ndarray, t: np.ndarray) -> float:
    """Log-likelihood of counts k_i ~ NB(a, b / (b + t_i)) (Poisson-gamma marginal)."""
    return float(
        np.sum(
            special.gammaln(a + k)
            - special.gammaln(a)
            - special.gammaln(k + 1)
            + a * np.log(b / (b + t))
            + k * np.log(t / (b + t))
        )
    )


def refit_prior(k: np.ndarray, t: np.ndarray) -> tuple[float, float, bool]:
    """Maximum-likelihood (a, b) of k_i ~ NB(a, b/(b + t_i)); returns (mean, variance, at_poisson_limit).

    The likelihood is maximised over (log a, log m) with m = a/b the mean rate. When the counts show no
    more spread than Poisson the maximum is at a -> infinity; a is capped at 1e6 (variance ~ 0).
    """
    k = np.asarray(k, dtype=float)
    t = np.asarray(t, dtype=float)
    m0 = max(k.sum() / t.sum(), 1e-6)

    def neg(x):
        a, m = math.exp(x[0]), math.exp(x[1])
        return -nb_loglik(a, a / m, k, t)

    best = None
    for la in (-1.0, 1.0, 3.0):
        res = optimize.minimize(
            neg,
            [la, math.log(m0)],
            method="L-BFGS-B",
            bounds=[(-6.0, math.log(1e6)), (math.log(m0) - 8, math.log(m0) + 8)],
        )
        if best is None or res.fun < best.fun:
            best = res
    a, m = math.exp(best.x[0]), math.exp(best.x[1])
    return m, m * m / a, best.x[0] >= math.log(1e6) - 1e-3


# ------------------------------------------------------------------------------------------ forecast


@dataclass(frozen=True)
class SiteState:
    """One observed site: its posterior (or prior) and its future exposure law."""

    site: str
    region: str
    enrolled: int
    months_open: float  # exposure by as_of (months at full rate)
    shape: float  # posterior gamma shape (inf when the rate is known)
    rate: float
    mean: float
    sd: float
    prob_rate_below_plan: float | None
    flag: str
    group: A.SiteGroup
    opened_month: float | None


@dataclass
class Forecast:
    """The posterior state of a running trial and its exact predictive distribution."""

    as_of: float
    target: int
    deadline: float
    enrolled: int
    sites: list[SiteState]
    priors: dict[str, Prior]
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def remaining(self) -> int:
        return max(self.target - self.enrolled, 0)

    @property
    def groups(self) -> list[A.SiteGroup]:
        return [s.group for s in self.sites if s.group.sites]

    def prob_by(self, month: float, groups: Sequence[A.SiteGroup] | None = None) -> float:
        """P(enrolled >= target by `month`)."""
        g = self.groups if groups is None else list(groups)
        if self.remaining == 0:
            return 1.0
        h = month - self.as_of
        if h <= 0 or not g:
            return 0.0
        return A.success_probability(g, self.remaining, h)

    def count_quantiles(self, month: float, probs: Sequence[float]) -> tuple[list[int], float]:
        """Quantiles and mean of cumulative enrolled by `month` (enrolled so far + the exact pmf)."""
        h = month - self.as_of
        if h <= 0 or not self.groups:
            return [self.enrolled] * len(probs), float(self.enrolled)
        q = A.enrolled_quantiles(self.groups, h, probs)
        mean, _ = A.moments(self.groups, h)
        return [self.enrolled + int(x) for x in q], self.enrolled + mean

    def reaches_surely(self) -> bool:
        """Whether the target is reached with probability 1 eventually (some site has a positive rate
        and opens surely: an open site)."""
        return self.remaining == 0 or any(s.opened_month is not None for s in self.sites)

    def time_quantiles(
        self, probs: Sequence[float] = TIME_PROBS, max_months: float = 600.0
    ) -> list[float | None]:
        """Months since start by which the target is reached with probability q (None: not by max)."""
        if self.remaining == 0:
            return [self.as_of for _ in probs]
        groups = self.groups
        if not groups:
            return [None for _ in probs]
        one = [s for s in self.sites if s.group.sites]
        if (
            len(one) == 1
            and isinstance(one[0].group.activation, Continuing)
            and one[0].group.activation.ramp_up_months == 0
            and one[0].group.activation.close_month is None
        ):
            s = one[0]
            if math.isinf(s.shape):  # a known rate: Erlang
                rel = stats.gamma.ppf(np.asarray(probs), self.remaining, scale=1 / s.mean)
            else:
                rel = one_site_remaining_time(s.shape, s.rate, self.remaining, probs)
            return [self.as_of + float(x) for x in rel]
        rel = A.time_to_target_quantiles(groups, self.remaining, probs, max_months=max_months)
        return [None if x is None else self.as_of + x for x in rel]

    def time_mean(self, upper_hint: float | None = None) -> float | None:
        """E[time to target] = as_of + integral of P(not reached by as_of + h) dh; None when infinite."""
        if self.remaining == 0:
            return self.as_of
        if not self.reaches_surely():
            return None
        one = [s for s in self.sites if s.group.sites]
        if (
            len(one) == 1
            and isinstance(one[0].group.activation, Continuing)
            and one[0].group.activation.ramp_up_months == 0
            and one[0].group.activation.close_month is None
        ):
            s = one[0]
            if s.shape <= 1:
                return None  # E[1/lambda] is infinite for a posterior shape <= 1
            if math.isinf(s.shape):
                return self.as_of + self.remaining / s.mean
            return self.as_of + self.remaining * s.rate / (s.shape - 1)
        groups = self.groups
        hi = upper_hint if upper_hint is not None else 60.0
        while 1 - A.success_probability(groups, self.remaining, hi) > 1e-7 and hi < 6000:
            hi *= 2
        if hi >= 6000:
            return None
        val, _ = integrate.quad(
            lambda h: 1 - A.success_probability(groups, self.remaining, h),
            0,
            hi,
            limit=200,
            epsabs=1e-4,
            epsrel=1e-6,
        )
        return self.as_of + float(val)


def one_site_remaining_time(shape: float, rate: float, remaining: int, probs: Sequence[float]) -> np.ndarray:
    """Quantiles of the time (months) one site with rate ~ Gamma(shape, rate) takes to enrol `remaining`:
    tau = G_R / lambda, so tau shape / (rate R) ~ F(2R, 2 shape) (a gamma-mixed Erlang). Vectorised in
    shape, rate and remaining (broadcast against probs)."""
    q = np.asarray(probs, dtype=float)
    shape = np.asarray(shape, dtype=float)
    rate = np.asarray(rate, dtype=float)
    r = np.asarray(remaining, dtype=float)
    return stats.f.ppf(q, 2 * r, 2 * shape) * rate * r / shape


def _state(obs: ObservedSite, prior: Prior, as_of: float) -> SiteState:
    act = prior.activation
    if obs.opened_month is None:
        opened = None
        exposure = 0.0
        k = 0
        future = NotYetOpen(
            act.dist, act.scale, act.never_open, act.ramp_up_months, act.close_month, as_of=as_of
        )
    else:
        opened = obs.opened_month
        exposure = float(act.exposure(np.array([opened]), as_of)[0])
        k = obs.enrolled
        future = Continuing(None, 1.0, 0.0, act.ramp_up_months, act.close_month, opened=opened, as_of=as_of)
    if prior.variance == 0:
        shape, rate = math.inf, math.inf
        mean, var = prior.mean, 0.0
        below = None
    else:
        a, b = prior.shape_rate
        shape, rate = a + k, b + exposure
        mean, var = shape / rate, shape / rate**2
        # the plan's counted rate (not a --refit prior's): is the site below what was planned?
        below = (
            float(stats.gamma.cdf(prior.plan_counted, shape, scale=1 / rate)) if opened is not None else None
        )
    if opened is None:
        flag = "not open"
    elif below is None:
        flag = "on plan"
    elif below >= BEHIND:
        flag = "behind"
    elif below <= AHEAD:
        flag = "ahead"
    else:
        flag = "on plan"
    group = A.SiteGroup(1, mean, var, 0.0, future, obs.site)
    return SiteState(
        obs.site,
        obs.region,
        obs.enrolled,
        exposure,
        shape,
        rate,
        mean,
        math.sqrt(var),
        below,
        flag,
        group,
        opened,
    )


def build(plan: P.Plan, observed: Sequence[ObservedSite], as_of: float, refit: bool = False) -> Forecast:
    """The trial's state at `as_of` (months since start), with priors from the plan (refitted on request)."""
    priors = priors_from_plan(plan)
    if refit:
        new = {}
        for name, pr in priors.items():
            open_ = [s for s in observed if s.region == name and s.opened_month is not None]
            t = np.array([float(pr.activation.exposure(np.array([s.opened_month]), as_of)[0]) for s in open_])
            k = np.array([s.enrolled for s in open_], dtype=float)
            keep = t > 0
            info: dict[str, Any] = {
                "open_sites": int(keep.sum()),
                "min_sites": MIN_REFIT_SITES,
                "prior_rate_mean": pr.mean,
                "prior_rate_variance": pr.variance,
            }
            if keep.sum() >= MIN_REFIT_SITES:
                m, v, poisson = refit_prior(k[keep], t[keep])
                info.update(
                    refitted=True,
                    rate_mean=m,
                    rate_variance=v,
                    poisson_limit=poisson,
                    log_likelihood=nb_loglik(m * m / v, m / v, k[keep], t[keep]),
                )
                new[name] = Prior(name, m, v, pr.activation, pr.dropout, pr.plan_mean, info)
            else:
                info.update(
                    refitted=False,
                    reason=f"{int(keep.sum())} open sites with exposure; refit needs {MIN_REFIT_SITES}",
                )
                new[name] = Prior(name, pr.mean, pr.variance, pr.activation, pr.dropout, pr.plan_mean, info)
        priors = new
    states = [_state(o, priors[o.region], as_of) for o in observed]
    return Forecast(
        as_of, plan.target, plan.duration_months, sum(o.enrolled for o in observed), states, priors
    )


# --------------------------------------------------------------------------------- additional sites


def additional_sites(
    fc: Forecast,
    plan: P.Plan,
    observed: Sequence[ObservedSite],
    probability: float,
    max_evaluations: int = 200_000,
) -> dict[str, Any]:
    """Fewest (cheapest, with costs) new sites per region, selected at as_of and opening after the
    region's start-up, for P(target by the deadline) >= probability."""
    names = [r.name for r in plan.regions]
    h = fc.deadline - fc.as_of
    current = fc.prob_by(fc.deadline)
    new_groups = []
    for name in names:
        pr = fc.priors[name]
        act = shifted(pr.activation, fc.as_of)
        new_groups.append(A.SiteGroup(1, pr.mean, pr.variance, 0.0, act, name))
    n_obs = {n: sum(o.region == n for o in observed) for n in names}
    hi = np.array([max(0, r.bounds[1] - n_obs[r.name]) for r in plan.regions], dtype=int)
    lo = np.zeros(len(names), dtype=int)
    costs = []
    for r, g in zip(plan.regions, new_groups, strict=True):
        months = g.activation.mean_months_open(h)
        e, w = g.activation.nodes(h)
        enrol = r.rate_mean * float(w @ e)
        costs.append(r.cost_startup + r.cost_per_month * months + r.cost_per_patient * enrol)
    c = np.array(costs)
    out: dict[str, Any] = {
        "probability_now": current,
        "required_probability": probability,
        "bounds": dict(zip(names, (int(x) for x in hi), strict=True)),
    }
    if fc.remaining == 0 or current >= probability:
        out.update(
            additional_sites=dict.fromkeys(names, 0), feasible=True, probability=current, expected_cost=0.0
        )
        return out
    if h <= 0 or hi.sum() == 0:
        out.update(
            additional_sites=dict.fromkeys(names, 0),
            feasible=False,
            probability=current,
            expected_cost=0.0,
            why="no region may add sites (the plan's bounds)" if h > 0 else "the deadline has passed",
        )
        return out
    existing = fc.groups
    k = len(existing)
    ev = A.Evaluator(
        tuple(existing) + tuple(new_groups), fc.remaining, h, (1,) * k + tuple(int(x) for x in hi)
    )
    ones = np.ones(k)

    def prob(alloc: np.ndarray) -> np.ndarray:
        a = np.atleast_2d(alloc)
        return ev.probability(np.hstack([np.repeat(ones[None, :], a.shape[0], axis=0), a]))

    mu = np.array([g.site_moments(h)[0] for g in new_groups])
    res = P.optimise(prob, lo, hi, c, np.maximum(mu, 1e-12), probability, max_evaluations)
    out.update(
        additional_sites=dict(zip(names, (int(x) for x in res.allocation), strict=True)),
        feasible=bool(res.feasible),
        probability=float(res.probability),
        expected_cost=float(c @ res.allocation) if c.any() else None,
        cost_per_new_site=dict(zip(names, (float(x) for x in c), strict=True)),
        proved_optimal=bool(res.proved_optimal),
    )
    if not res.feasible:
        out["why"] = "even the most sites the plan allows fall short of the required probability"
    return out


# -------------------------------------------------------------------------------- the whole answer


def _round(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def analytic_answer(fc: Forecast) -> dict[str, Any]:
    """time_to_target_months, prob_target_by_deadline, enrolled_by_deadline (exact)."""
    tq = fc.time_quantiles()
    hint = None if tq[-1] is None else max(tq[-1] - fc.as_of, 1.0) * 2
    mean = fc.time_mean(hint)
    cq, cmean = fc.count_quantiles(fc.deadline, COUNT_PROBS)
    return {
        "time_to_target_months": {
            **dict(zip(TIME_KEYS, (_round(x) for x in tq), strict=True)),
            "mean": _round(mean),
        },
        "prob_target_by_deadline": fc.prob_by(fc.deadline),
        "enrolled_by_deadline": {**dict(zip(COUNT_KEYS, cq, strict=True)), "mean": cmean},
    }


CURVE_PROBS = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
CURVE_COLUMNS = [
    "month",
    "p05",
    "p10",
    "p25",
    "p50",
    "p75",
    "p90",
    "p95",
    "mean",
    "prob_target_reached",
    "method",
]


def curve_months(fc: Forecast, t95: float | None) -> list[float]:
    """Whole months from as_of (itself first) to the later of the deadline and the p95 time to target
    (at most 120 months past as_of)."""
    end = fc.deadline if t95 is None else max(fc.deadline, t95)
    end = min(end, fc.as_of + 120)
    months = [float(fc.as_of)] + [float(m) for m in range(math.floor(fc.as_of) + 1, math.ceil(end) + 1)]
    return months


def analytic_curve(fc: Forecast, months: Sequence[float]) -> list[list[Any]]:
    rows = []
    for m in months:
        q, mean = fc.count_quantiles(m, CURVE_PROBS)
        rows.append([m, *q, round(mean, 4), fc.prob_by(m), "analytic"])
    return rows


def site_rows(fc: Forecast) -> list[dict[str, Any]]:
    """summary.json `sites`: ranked by posterior mean rate (highest first), sites not open last."""
    rows = []
    for s in fc.sites:
        rows.append(
            {
                "site": s.site,
                "region": s.region,
                "enrolled": s.enrolled,
                "months_open": round(s.months_open, 4),
                "posterior_rate_mean": s.mean,
                "posterior_rate_sd": s.sd,
                "prob_rate_below_plan": s.prob_rate_below_plan,
                "flag": s.flag,
            }
        )
    rows.sort(key=lambda r: (r["flag"] == "not open", -r["posterior_rate_mean"], r["site"]))
    return rows
