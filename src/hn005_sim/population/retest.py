"""Re-measure the time-varying labs, as when screening runs past the protocol's 7-day lab window.

A measured value is a patient's set point plus within-subject variation (biological CVI). On the
scale where a lab's population distribution is normal (log scale for lognormal labs), write its
residual z = (b + w) / sigma, b the set point's deviation (variance sigma_b^2) and w the day's
variation (variance sigma_w^2, from the CVI). A second measurement shares b and draws a new w, so
z' | z ~ Normal(r z, 1 - r^2) with r = 1 - sigma_w^2 / sigma^2 (the test-retest correlation). This keeps
each lab's population distribution unchanged (z' is standard normal) and regresses extreme values
towards the patient's covariate-adjusted mean, as repeat measurements do (Fraser, Biological
Variation, AACC Press 2001; CVI figures in population.toml, retest.cv_within_subject).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from hn005_sim.population import labs as L
from hn005_sim.population.columns import Columns, filled
from hn005_sim.population.config import COPULA_LABS, PopulationConfig
from hn005_sim.population.generate import free_hormones, thyroid_tsh, tsh_residual, tsh_spread, urine_24h
from hn005_sim.population.streams import Streams
from hn005_sim.scenario.dists import LogNormal


def _r(within: np.ndarray | float, spread: np.ndarray | float) -> np.ndarray:
    return 1.0 - (np.asarray(within) / np.asarray(spread)) ** 2


def _step(z: np.ndarray, r: np.ndarray, eta: np.ndarray) -> np.ndarray:
    return r * z + np.sqrt(np.maximum(1.0 - r * r, 0.0)) * eta


def _covariates(cfg: PopulationConfig, frame: pl.DataFrame) -> L.Covariates:
    def col(name):
        return frame.get_column(name).to_numpy()

    dna = filled(frame.get_column("hbv_dna_copies_ml"), 0.0)
    return L.Covariates(
        male=col("sex") == "M",
        age_years=col("age_years"),
        ecog=col("ecog"),
        distant=col("distant_metastasis"),
        liver_metastasis=col("liver_metastasis"),
        hbv_active=col("hbsag_positive") & (dna >= cfg.infections.hbv_active_threshold_copies_ml.value),
        cisplatin_mg_m2=filled(frame.get_column("cisplatin_cumulative_mg_m2"), 0.0),
    )


def retest_labs(cfg: PopulationConfig, frame: pl.DataFrame, rng: np.random.Generator | Streams
                ) -> pl.DataFrame:
    """The same candidates with Hb, WBC, PLT, bilirubin, ALT, AST, creatinine, INR, APTT, TSH, FT3/FT4
    and urine protein re-measured; clearance, the FT3/FT4 nulls and the 24-hour urine rule recomputed.
    Everything else (history, ULNs, cardiac tests) is unchanged.

    `rng` may be a `Streams` (population/streams.py) whose sizes add up to frame.height: the rows of
    each generator's batch, one batch after the other, re-measured as that generator alone would."""
    n = frame.height
    cov = _covariates(cfg, frame)
    cv = cfg.retest.cv_within_subject
    out = Columns()

    # Copula labs: the day's variation is drawn with the same residual correlation as the first test,
    # so cross-lab correlation is preserved when the labs' r are equal (and nearly so otherwise).
    eta = L.copula_residuals(cfg, n, rng)
    for i, name in enumerate(COPULA_LABS):
        lab = getattr(cfg.labs, name)
        value = frame.get_column(name).to_numpy()
        params = L.lab_params(cfg, name, cov)
        _, loc, spread = params[:3]
        within = cv.log_sd(name) if isinstance(lab.male, LogNormal) else getattr(cv, name).value * loc
        z = L.to_z(cfg, name, value, cov, params)
        new = L.from_z(cfg, name, _step(z, _r(within, spread), eta[i]), cov, params)
        out.f64(name, new)
        if name == "creatinine_umol_l":
            creatinine = new
    weight = frame.get_column("weight_kg").to_numpy()
    out.f64("crcl_ml_min", L.cockcroft_gault(cov.age_years, weight, creatinine, cov.male))

    # TSH within the patient's thyroid state; FT3/FT4 re-measured where present, drawn where newly needed.
    on_repl = frame.get_column("hypothyroid_on_replacement").to_numpy()
    overt = frame.get_column("overt_hypothyroidism").to_numpy()
    untreated = frame.get_column("hypothyroidism_rt").to_numpy() & ~on_repl
    tsh = frame.get_column("tsh_miu_l").to_numpy()
    r_tsh = _r(cv.log_sd("tsh_miu_l"), tsh_spread(cfg, on_repl, untreated))
    tsh_new = thyroid_tsh(cfg, _step(tsh_residual(cfg, tsh, on_repl, untreated), r_tsh,
                                     rng.standard_normal(n)), on_repl, untreated)
    out.f64("tsh_miu_l", tsh_new)
    tested = tsh_new > frame.get_column("tsh_uln_miu_l").to_numpy()
    fresh3, fresh4 = free_hormones(cfg, rng, n, overt)
    t = cfg.thyroid
    for name, fresh, normal, low in (("ft3_pmol_l", fresh3, t.ft3_not_overt_pmol_l, t.ft3_overt_pmol_l),
                                     ("ft4_pmol_l", fresh4, t.ft4_not_overt_pmol_l, t.ft4_overt_pmol_l)):
        old = filled(frame.get_column(name), np.nan)
        (mu_n, s_n), (mu_o, s_o) = normal._mu_sigma(), low._mu_sigma()
        mu, sigma = np.where(overt, mu_o, mu_n), np.where(overt, s_o, s_n)
        with np.errstate(invalid="ignore"):
            z = (np.log(old) - mu) / sigma
        again = np.exp(mu + sigma * _step(z, _r(cv.log_sd(name), sigma), rng.standard_normal(n)))
        value = np.where(np.isnan(old), fresh, again)
        out.f64(name, value, tested)

    # Urine: the dipstick may read a grade up or down; 24-h protein only at ++ or more.
    dip = frame.get_column("urine_protein_dipstick").to_numpy()
    move = rng.random(n) < cfg.retest.dipstick_change.value
    step = np.where(rng.random(n) < 0.5, -1, 1)
    dip_new = np.clip(dip + np.where(move, step, 0), 0, 4).astype(np.int64)
    old24 = filled(frame.get_column("urine_protein_24h_g"), np.nan)
    fresh24 = urine_24h(cfg, dip_new, rng.standard_normal(n))
    jitter = np.exp(cv.log_sd("urine_protein_24h_g") * rng.standard_normal(n)
                    - cv.log_sd("urine_protein_24h_g") ** 2 / 2)
    same = (dip_new == dip) & ~np.isnan(old24)
    out.i64("urine_protein_dipstick", dip_new)
    out.f64("urine_protein_24h_g", np.where(same, old24 * jitter, fresh24), dip_new >= 2)
    return out.replacing(frame)
