"""`simulate`: an independent vectorised Monte Carlo of the planning model (`sites --method des`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hn005_sim.recruitment import analytic as A
from hn005_sim.rng import stream

# -------------------------------------------------------------------------------------- Monte Carlo


@dataclass(frozen=True)
class Simulated:
    """Monte Carlo estimates for each allocation (rows) of the same plan, common random numbers."""

    probability: np.ndarray
    standard_error: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    zero_enrolled_fraction: np.ndarray  # share of sites (that opened or not) enrolling no one
    time_to_target: np.ndarray  # months, for the LAST allocation; inf when not reached within 10 T
    replicates: int


def simulate(
    groups: Sequence[A.SiteGroup],
    allocations: np.ndarray,
    target: int,
    horizon: float,
    replicates: int,
    seed: int,
) -> Simulated:
    """Vectorised Monte Carlo of the Poisson-gamma plan, independent of the closed forms.

    For every replicate and site up to the largest allocation: rate ~ Gamma(a, b) (`sites` stream),
    start-up from the registry distribution's own sampler and never-open ~ Bernoulli, enrolments
    ~ Poisson(rate x exposure) and those that count ~ Binomial(enrolments, 1 - dropout) (`arrivals`
    stream). An allocation uses the first n_r sites of each region, so all allocations share the same
    draws (a site more never lowers a replicate's count). Time to target for the last allocation: the
    N-th event of a Poisson process with cumulative intensity L(t) = sum_i rate_i (1-d) E_i(t) is
    L^-1(Gamma(N, 1)) (time change), found by bisection.
    """
    allocs = np.atleast_2d(np.asarray(allocations, dtype=int))
    n_max = allocs.max(axis=0)
    r_sites, r_arr = stream(seed, 0, "sites"), stream(seed, 0, "arrivals")
    cum_counts, all_counts, rates, acts, starts = [], [], [], [], []
    for g, n in zip(groups, n_max, strict=True):
        shape = (replicates, int(n))
        if g.rate_variance == 0:
            lam = np.full(shape, g.rate_mean)
        else:
            a, b = A.gamma_params(g.rate_mean, g.rate_variance)
            lam = r_sites.gamma(a, 1 / b, shape)
        act = g.activation
        if act.dist is None:
            u = np.zeros(shape)
        else:
            u = act.dist.sample(r_sites, int(np.prod(shape))).reshape(shape) * act.scale
        u = np.where(r_sites.random(shape) < act.never_open, np.inf, u)
        exposure = act.exposure(u, horizon)
        counts = r_arr.poisson(lam * exposure)
        kept = r_arr.binomial(counts, 1 - g.dropout)
        all_counts.append(kept)
        cum_counts.append(
            np.concatenate([np.zeros((replicates, 1), dtype=np.int64), np.cumsum(kept, axis=1)], axis=1)
        )
        rates.append(lam * (1 - g.dropout))
        acts.append(act)
        starts.append(u)
    prob, se, mean, var, zero = [], [], [], [], []
    for row in allocs:
        total = sum(cc[:, n] for cc, n in zip(cum_counts, row, strict=True))
        ok = total >= target
        pr = float(ok.mean())
        prob.append(pr)
        se.append(math.sqrt(max(pr * (1 - pr), 0.25 / replicates) / replicates))
        mean.append(float(total.mean()))
        var.append(float(total.var(ddof=1)))
        z = [(k[:, :n] == 0).sum() for k, n in zip(all_counts, row, strict=True)]
        zero.append(float(sum(z) / max(1, replicates * int(row.sum()))))
    last = allocs[-1]
    need = r_arr.gamma(target, 1.0, replicates) if target > 0 else np.zeros(replicates)

    def intensity(t: np.ndarray) -> np.ndarray:
        out = np.zeros(replicates)
        for r, a, s, n in zip(rates, acts, starts, last, strict=True):
            if n:
                out += (r[:, :n] * _exposure_at(a, s[:, :n], t)).sum(axis=1)
        return out

    t_hi = np.full(replicates, 10 * horizon)
    reached = intensity(t_hi) >= need
    lo_t, hi_t = np.zeros(replicates), t_hi.copy()
    for _ in range(50):  # bisection to 10 T / 2^50 months
        mid = (lo_t + hi_t) / 2
        up = intensity(mid) >= need
        hi_t = np.where(up, mid, hi_t)
        lo_t = np.where(up, lo_t, mid)
    ttt = np.where(reached, hi_t, np.inf)
    return Simulated(
        np.array(prob), np.array(se), np.array(mean), np.array(var), np.array(zero), ttt, replicates
    )


def _exposure_at(act: A.Activation, start: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Exposure by per-replicate times t (column vector broadcast over sites)."""
    end = t[:, None] if act.close_month is None else np.minimum(t[:, None], act.close_month)
    d = np.maximum(end - np.maximum(start, 0.0), 0.0)
    r = act.ramp_up_months
    return d if r <= 0 else np.where(d >= r, d - r / 2, d * d / (2 * r))


