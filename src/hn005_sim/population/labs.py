"""Laboratory values: sex-specific marginals, named effects, residuals through a Gaussian copula.

A lab value is `base(z) * multiplier + shift`, where z is the patient's standard-normal residual
(correlated across labs by the configured correlation matrix), `base` the sex-specific marginal's
quantile function (normal: mean + sd z; lognormal: exp(mu + sigma z)), `multiplier` the product of the
named multiplicative effects that apply to the patient (liver metastasis, active HBV, cisplatin dose,
age) and `shift` the sum of additive ones (ECOG 2+, distant disease on Hb). Because every step has a
closed-form inverse, a re-test can recover z from a value and re-measure it (population/retest.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hn005_sim.population.config import COPULA_LABS, PopulationConfig, SexLab
from hn005_sim.population.memo import derived
from hn005_sim.population.streams import Streams, join
from hn005_sim.scenario.dists import LogNormal

MG_DL_PER_UMOL_L = 1 / 88.4
"""Creatinine: 1 mg/dL = 88.4 µmol/L."""


@dataclass(frozen=True)
class Covariates:
    """What the lab effects depend on, one array per patient attribute."""

    male: np.ndarray
    age_years: np.ndarray
    ecog: np.ndarray
    distant: np.ndarray
    liver_metastasis: np.ndarray
    hbv_active: np.ndarray
    cisplatin_mg_m2: np.ndarray  # 0 when no chemoradiotherapy


def _by_sex(male: np.ndarray, m: float, f: float) -> np.ndarray:
    return np.where(male, m, f)


def marginal_params(lab: SexLab, male: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray]:
    """(is_lognormal, location, scale) per patient: mean/sd, or mu/sigma on the log scale."""
    if isinstance(lab.male, LogNormal):
        (mm, sm), (mf, sf) = lab.male._mu_sigma(), lab.female._mu_sigma()  # type: ignore[union-attr]
        return True, _by_sex(male, mm, mf), _by_sex(male, sm, sf)
    return False, _by_sex(male, lab.male.mean_, lab.female.mean_), _by_sex(male, lab.male.sd, lab.female.sd)


def effects(cfg: PopulationConfig, name: str, cov: Covariates) -> tuple[np.ndarray | float, ...]:
    """(multiplier, shift) of one lab for each patient, from the named effects in labs.effects."""
    e = cfg.labs.effects
    mult: np.ndarray | float = 1.0
    shift: np.ndarray | float = 0.0
    if name == "hb_g_l":
        shift = np.where(cov.ecog >= 2, e.hb_shift_ecog_2plus_g_l.value, 0.0) + np.where(
            cov.distant, e.hb_shift_distant_g_l.value, 0.0)
    elif name == "alt_u_l":
        mult = np.where(cov.liver_metastasis, e.alt_multiplier_liver_metastasis.value, 1.0) * np.where(
            cov.hbv_active, e.alt_multiplier_hbv_active.value, 1.0)
    elif name == "ast_u_l":
        mult = np.where(cov.liver_metastasis, e.ast_multiplier_liver_metastasis.value, 1.0)
    elif name == "tbil_umol_l":
        mult = np.where(cov.liver_metastasis, e.tbil_multiplier_liver_metastasis.value, 1.0)
    elif name == "creatinine_umol_l":
        # Creatinine rises with age (WS/T 404.5 gives a higher interval at 60-79) and with cumulative
        # cisplatin (tubular injury; BMC Cancer 2020 10.1186/s12885-020-07024-8), both log-linear here.
        mult = e.creatinine_multiplier_per_100_mg_m2_cisplatin.value ** (cov.cisplatin_mg_m2 / 100.0) * (
            e.creatinine_multiplier_per_decade_over_45.value ** ((cov.age_years - 45.0) / 10.0))
    return mult, shift


def lab_params(cfg: PopulationConfig, name: str, cov: Covariates) -> tuple:
    """(is_lognormal, location, scale, multiplier, shift) of one lab for each patient: what from_z and
    to_z need, computed once when a caller uses both (a re-test)."""
    return (*marginal_params(getattr(cfg.labs, name), cov.male), *effects(cfg, name, cov))


def from_z(cfg: PopulationConfig, name: str, z: np.ndarray, cov: Covariates,
           params: tuple | None = None) -> np.ndarray:
    """Lab value from its standard-normal residual z (`params`: lab_params(cfg, name, cov), if known)."""
    lognormal, loc, scale, mult, shift = lab_params(cfg, name, cov) if params is None else params
    base = np.exp(loc + scale * z) if lognormal else loc + scale * z
    return base * mult + shift


def to_z(cfg: PopulationConfig, name: str, value: np.ndarray, cov: Covariates,
         params: tuple | None = None) -> np.ndarray:
    """Inverse of from_z: the residual that produced a value."""
    lognormal, loc, scale, mult, shift = lab_params(cfg, name, cov) if params is None else params
    base = (value - shift) / mult
    return (np.log(base) - loc) / scale if lognormal else (base - loc) / scale


def copula_residuals(cfg: PopulationConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """k x n standard-normal residuals with the configured correlation (rows in COPULA_LABS order;
    row-major so each lab's row is contiguous): Z = chol(R) @ E, E iid standard normal."""
    corr = cfg.labs.correlation
    chol = derived(corr, "cholesky", lambda: np.linalg.cholesky(corr.ordered()))
    if isinstance(rng, Streams):  # each generator's block by its own product, as when drawn alone
        blocks = [chol @ e for e in rng.parts("standard_normal", (len(COPULA_LABS), n))]
        return rng.kept(blocks[0] if len(blocks) == 1 else join(blocks))
    return chol @ rng.standard_normal((len(COPULA_LABS), n))


def cockcroft_gault(age_years, weight_kg, creatinine_umol_l, male) -> np.ndarray:
    """Creatinine clearance, mL/min (Cockcroft & Gault, Nephron 1976;16:31), actual body weight:
    (140 - age) x weight / (72 x Scr[mg/dL]), x 0.85 for women."""
    scr_mg_dl = np.asarray(creatinine_umol_l) * MG_DL_PER_UMOL_L
    crcl = (140.0 - np.asarray(age_years)) * np.asarray(weight_kg) / (72.0 * scr_mg_dl)
    return np.where(male, crcl, 0.85 * crcl)


def mosteller_bsa(height_cm, weight_kg) -> np.ndarray:
    """Body-surface area, m^2 (Mosteller, N Engl J Med 1987;317:1098): sqrt(height_cm x weight_kg / 3600)."""
    return np.sqrt(np.asarray(height_cm) * np.asarray(weight_kg) / 3600.0)


def creatinine_uln(cfg: PopulationConfig, male: np.ndarray, age_years: np.ndarray) -> np.ndarray:
    u = cfg.reference.creatinine_uln_umol_l
    old = age_years >= 60
    return np.where(
        male,
        np.where(old, u.male_60_plus.value, u.male_under_60.value),
        np.where(old, u.female_60_plus.value, u.female_under_60.value),
    )
