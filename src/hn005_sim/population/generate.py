"""Generate R/M NPC candidates: one vectorised pass, one row per candidate (docs/data_dictionary.md).

Draws happen in a fixed order from the one Generator passed in, so a seed gives the same cohort. Every
attribute is drawn for all n candidates and then masked where it does not apply, which keeps the stream
aligned (a scenario that changes one probability changes the candidates it must, not every draw after).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.special import ndtr, ndtri

from hn005_sim.population import labs as L
from hn005_sim.population.columns import Columns
from hn005_sim.population.config import (
    COPULA_LABS,
    ICI_PHASES,
    PATTERNS,
    RESPONSES,
    STAGES_CURATIVE,
    PopulationConfig,
)
from hn005_sim.population.memo import derived
from hn005_sim.population.streams import Streams
from hn005_sim.scenario.dists import Categorical, Normal, TruncNormal

STAGES = ("I", "II", "III", "IVA", "IVB")
CURATIVE = ("crt", "rt_alone", "none")
# membership by lookup (index -> in the set), as np.isin would answer it
_LOCAL_COMPONENT = np.isin(np.arange(len(PATTERNS)), [PATTERNS.index(p) for p in ("local", "locoregional",
                                                                                  "locoregional_distant")])
_ADVANCED = np.isin(np.arange(len(STAGES)), [STAGES.index("III"), STAGES.index("IVA")])


def _thresholds(d: Categorical) -> tuple[np.float32, tuple[np.float32, ...]]:
    """The total and the inner cumulative thresholds of a categorical's probabilities, single precision."""
    cum = np.cumsum(d.probs, dtype=np.float64)
    return np.float32(cum[-1]), tuple(np.float32(c) for c in cum[:-1])


def _category(d: Categorical, rng: np.random.Generator, n: int) -> np.ndarray:
    """Index of a categorical draw: count how many cumulative thresholds a uniform passes (a few
    vectorised comparisons are faster than a search for the handful of categories used here: 3-8
    categories, 1.2-3.6 ms against 8-15 ms per million; about equal at 1,024)."""
    total, inner = derived(d, "thresholds", lambda: _thresholds(d))
    u = rng.random(n, dtype=np.float32) * total
    idx = np.zeros(n, dtype=np.int64)
    for c in inner:
        idx += u >= c
    return idx


def _index(d: Categorical, labels: tuple[str, ...], rng: np.random.Generator, n: int) -> np.ndarray:
    """Index into `labels` of a categorical draw of labels."""
    order = derived(d, f"order{labels}", lambda: np.array([labels.index(str(v)) for v in d.values]))
    return order[_category(d, rng, n)]


def _numeric(d: Categorical, rng: np.random.Generator, n: int) -> np.ndarray:
    values = derived(d, "values", lambda: np.asarray(d.values, dtype=np.float64))
    return values[_category(d, rng, n)]


def _cdf_bounds(d: TruncNormal) -> tuple[float, float]:
    a, b = d._ab()
    return ndtr(a), ndtr(b)


def _flag(rng: np.random.Generator, n: int, p) -> np.ndarray:
    """True with probability p. Single-precision uniforms: resolution 6e-8, ample for these figures."""
    return rng.random(n, dtype=np.float32) < np.float32(p)


def _draw(d, rng: np.random.Generator, n: int) -> np.ndarray:
    """A registry distribution's sample; truncated normals by the same inverse-CDF as the registry but
    through scipy.special.ndtri directly (scipy.stats' ppf wrapper costs ~0.1 s per million)."""
    if isinstance(d, TruncNormal):
        lo, hi = derived(d, "cdf_bounds", lambda: _cdf_bounds(d))
        u = rng.uniform(lo, hi, n)
        return d.mean_ + d.sd * ndtri(u)
    return d.sample(rng, n)


def _from_z(d: Normal | TruncNormal, z: np.ndarray) -> np.ndarray:
    """The value of a normal or truncated normal at standard-normal draw z (inverse CDF through the
    truncated range), so that two such figures can share a Gaussian copula (SBP and DBP)."""
    if isinstance(d, TruncNormal):
        lo, hi = derived(d, "cdf_bounds", lambda: _cdf_bounds(d))
        return d.mean_ + d.sd * ndtri(lo + ndtr(z) * (hi - lo))
    return d.mean_ + d.sd * z


def sample(cfg: PopulationConfig, n: int, rng: np.random.Generator | Streams) -> pl.DataFrame:
    """n candidates as a polars DataFrame (columns: docs/columns_contract.md plus documented extras).

    `rng` may be a `Streams` of several generators (n their sizes added up): the frame is then the
    frames each generator gives alone, one after the other (`sample_many`)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = Columns()
    out.i64("patient_id", rng.patient_ids() if isinstance(rng, Streams) else np.arange(n, dtype=np.int64))

    # --- demographics and body size -------------------------------------------------------------
    d = cfg.demographics
    male = _flag(rng, n, d.male.value)
    age = _draw(d.age_years, rng, n)
    z_height, z_weight = rng.standard_normal(n), rng.standard_normal(n)
    r = d.height_weight_correlation.value
    h, w = d.height_cm, d.weight_kg
    height = np.where(male, h.male.mean_ + h.male.sd * z_height, h.female.mean_ + h.female.sd * z_height)
    z_w = r * z_height + np.sqrt(1 - r * r) * z_weight
    weight = np.where(male, w.male.mean_ + w.male.sd * z_w, w.female.mean_ + w.female.sd * z_w)
    # Physical floors (>= 3.5 SD below the means): keep BSA and clearance finite for extreme draws.
    height, weight = np.maximum(height, 130.0), np.maximum(weight, 30.0)
    ecog = _numeric(d.ecog, rng, n).astype(np.int64)
    menopause = _draw(d.menopause_age_years, rng, n)
    sterilised = _flag(rng, n, d.sterilised_female.value)
    potential = ~male & (age < menopause) & ~sterilised
    pregnant = potential & _flag(rng, n, d.pregnant_given_potential.value)
    refuses = (male | potential) & _flag(rng, n, d.contraception_refused.value)

    # --- disease history -------------------------------------------------------------------------
    s = cfg.disease
    de_novo = _flag(rng, n, s.de_novo_metastatic.value)
    recurrent = ~de_novo
    stage = np.where(de_novo, STAGES.index("IVB"), _index(s.stage_at_diagnosis_recurrent, STAGES, rng, n))
    p_crt = np.array([getattr(s.crt_by_stage, st).value for st in STAGES_CURATIVE] + [0.0])
    crt = recurrent & (rng.random(n) < p_crt[stage])
    curative = np.where(crt, 0, np.where(recurrent, 1, 2))
    cisplatin = _draw(s.cisplatin_cumulative_mg_m2, rng, n)
    # A recurrence cannot precede 18 years of age at first treatment: cap the interval's far tail there
    # (affects < 0.1% of draws with the baseline lognormal).
    interval = np.minimum(_draw(s.recurrence_interval_months, rng, n), np.maximum(age - 18.0, 1.0) * 12.0)
    delay = _draw(s.presentation_delay_months, rng, n)
    months_since_rt = interval + delay
    pattern = np.where(de_novo, PATTERNS.index("distant"), _index(s.recurrence_pattern, PATTERNS, rng, n))
    distant = (pattern == PATTERNS.index("distant")) | (pattern == PATTERNS.index("locoregional_distant"))
    locoregional_only = ~distant
    local_component = _LOCAL_COMPONENT[pattern]
    measurable = _flag(rng, n, s.measurable_disease.value)
    liver = distant & _flag(rng, n, s.liver_metastasis_given_distant.value)
    cns = distant & _flag(rng, n, s.cns_metastasis_given_distant.value)
    salvageable = locoregional_only & _flag(rng, n, s.salvageable_given_locoregional_only.value)
    facts = {"locoregional_only": locoregional_only, "local_component": local_component, "distant": distant,
             "recurrent": recurrent, "de_novo": de_novo}
    conditional = {}
    for name, f in s.conditional_flags.items():  # trial-specific attributes, in the order declared
        u = rng.random(n)
        conditional[name] = np.where(facts[f.given], u < f.p_given.value, u < f.p_otherwise.value)
    prior_rm = _flag(rng, n, s.prior_systemic_rm.value)
    had_ici = recurrent & _flag(rng, n, s.prior_ici_given_curative.value)
    ici_types = tuple(map(str, s.prior_ici_type.values))
    ici_type = _index(s.prior_ici_type, ici_types, rng, n)
    ici_two = _flag(rng, n, s.prior_ici_two_types.value)
    ici_phase = _index(s.prior_ici_phase, ICI_PHASES, rng, n)
    ici_response = _index(s.prior_ici_induction_response, RESPONSES, rng, n)
    induction = had_ici & (ici_phase == ICI_PHASES.index("induction"))
    progressed_6m = recurrent & (interval < 6.0)
    # Curative-phase chemotherapy around the chemoradiotherapy: induction (stage III-IVA; always with
    # an induction-phase ICI, which is given with chemotherapy) and adjuvant capecitabine, which starts
    # after radiotherapy and stops at a recurrence that comes first. The protocol's 6-month windows run
    # from the end of the whole curative treatment, adjuvant included (docs/data_dictionary.md).
    advanced = _ADVANCED[stage]
    induction_chemo = crt & advanced & (_flag(rng, n, s.induction_chemo_given_crt.value) | induction)
    adjuvant = crt & _flag(rng, n, s.adjuvant_capecitabine_given_crt.value)
    adjuvant_planned = _draw(s.adjuvant_planned_months, rng, n)
    adjuvant_months = np.where(adjuvant, np.minimum(adjuvant_planned, interval), 0.0)
    after_therapy = interval - adjuvant_months
    weight = weight * np.where(recurrent, 1.0 - _draw(d.weight_loss_after_rt_fraction, rng, n), 1.0)

    # --- infections (before labs: active HBV raises ALT) -----------------------------------------
    f = cfg.infections
    hbsag = _flag(rng, n, f.hbsag_positive.value)
    dna_detectable = _flag(rng, n, f.hbv_dna_detectable_given_hbsag.value)
    dna = np.where(dna_detectable, _draw(f.hbv_dna_copies_ml_detectable, rng, n), 0.0)
    # HBV DNA at assessment: carriers on nucleos(t)ide antivirals (prophylaxis given with chemotherapy or
    # immunotherapy) have their viral load lowered by the drawn number of logs; the protocol excludes
    # hepatitis B "not well-controlled after treatment", i.e. DNA still >= 10^4 at assessment.
    antiviral = hbsag & _flag(rng, n, f.hbv_antiviral_given_hbsag.value)
    dna = np.where(antiviral, dna * 10.0 ** -_draw(f.hbv_log10_reduction_on_antiviral, rng, n), dna)
    hbv_active = hbsag & (dna >= f.hbv_active_threshold_copies_ml.value)
    hcv_ab = _flag(rng, n, f.hcv_ab_positive.value)
    hcv_rna = _flag(rng, n, f.hcv_rna_given_ab.value)
    hiv = _flag(rng, n, f.hiv_positive.value)
    tp = _flag(rng, n, f.tp_positive.value)
    cirrhosis = rng.random(n) < np.where(hbsag, f.cirrhosis_given_hbsag.value, f.cirrhosis_otherwise.value)
    tb = _flag(rng, n, f.active_tb_1y.value)

    # --- laboratory values -----------------------------------------------------------------------
    cov = L.Covariates(male=male, age_years=age, ecog=ecog, distant=distant, liver_metastasis=liver,
                       hbv_active=hbv_active, cisplatin_mg_m2=np.where(crt, cisplatin, 0.0))
    z = L.copula_residuals(cfg, n, rng)
    lab = {name: L.from_z(cfg, name, z[i], cov) for i, name in enumerate(COPULA_LABS)}
    del z
    transfusion = _flag(rng, n, cfg.labs.transfusion_14d.value)
    gcsf = _flag(rng, n, cfg.labs.gcsf_14d.value)
    ref = cfg.reference
    crcl = L.cockcroft_gault(age, weight, lab["creatinine_umol_l"], male)

    # --- thyroid: RT-induced hypothyroidism rises with months since RT ------------------------------
    t = cfg.thyroid
    hypo = recurrent & (rng.random(n) < t.hypothyroidism_after_rt.cumulative(np.where(recurrent,
                                                                                      months_since_rt, 0)))
    on_replacement = hypo & _flag(rng, n, t.on_replacement_given_hypothyroid.value)
    untreated = hypo & ~on_replacement
    overt = untreated & _flag(rng, n, t.overt_given_untreated.value)
    tsh_uln = ref.tsh_uln_miu_l.value
    tsh = thyroid_tsh(cfg, rng.standard_normal(n), on_replacement, untreated)
    ft3, ft4 = free_hormones(cfg, rng, n, overt)
    tested = tsh > tsh_uln

    # --- cardiac -------------------------------------------------------------------------------------
    c = cfg.cardiac
    decades = (age - 45.0) / 10.0
    troponin = _draw(c.troponin_ng_l, rng, n) * c.troponin_multiplier_per_decade_over_45.value ** decades
    ntprobnp = _draw(c.ntprobnp_pg_ml, rng, n) * c.ntprobnp_multiplier_per_decade_over_45.value ** decades
    qtc = _draw(c.qtc_ms, rng, n) + np.where(male, 0.0, c.qtc_shift_female_ms.value)
    ecg_other = _flag(rng, n, c.ecg_other_abnormal.value)
    arrhythmia = _flag(rng, n, c.arrhythmia_6m.value)
    ecg_abnormal = (qtc >= 480.0) | ecg_other | arrhythmia
    echo = (troponin > ref.troponin_uln_ng_l.value) | (ntprobnp > ref.ntprobnp_uln_pg_ml.value) | ecg_abnormal
    lvef = _draw(c.lvef_pct, rng, n)
    cardiac_event = _flag(rng, n, c.cardiac_event_6m.value)
    nyha = _numeric(c.nyha_class, rng, n).astype(np.int64)

    # --- blood pressure ------------------------------------------------------------------------------
    b = cfg.blood_pressure
    p50 = b.hypertension_prevalence_at_50.value
    logit = np.log(p50 / (1 - p50)) + np.log(b.hypertension_odds_ratio_per_decade.value) * (age - 50) / 10
    hypertension = rng.random(n) < 1 / (1 + np.exp(-logit))
    aware = hypertension & _flag(rng, n, b.aware_given_hypertension.value)  # "hypertension history"
    treated = aware & _flag(rng, n, b.treated_given_aware.value)
    drugs = np.where(treated, _numeric(b.drugs_given_treated, rng, n), 0).astype(np.int64)
    sbp, dbp = blood_pressure(cfg, hypertension, treated, rng.standard_normal((4, n)))

    # --- urine -----------------------------------------------------------------------------------------
    dipstick = _numeric(cfg.urine.dipstick, rng, n).astype(np.int64)
    protein_24h = urine_24h(cfg, dipstick, rng.standard_normal(n))

    # --- history flags -----------------------------------------------------------------------------
    hist = {name: _flag(rng, n, p.value) for name, p in cfg.history.items()}

    # --- assemble, contract order first ------------------------------------------------------------
    out.text("sex", ("F", "M"), male.astype(np.int64))
    out.f64("age_years", age)
    out.f64("height_cm", height)
    out.f64("weight_kg", weight)
    out.f64("bsa_m2", L.mosteller_bsa(height, weight))
    out.i64("ecog", ecog)
    out.flag("childbearing_potential", potential)
    out.flag("pregnant", pregnant)
    out.flag("contraception_refused", refuses)
    out.text("stage_at_diagnosis", STAGES, stage)
    out.flag("de_novo_metastatic", de_novo)
    out.text("curative_treatment", CURATIVE, curative)
    out.f64("cisplatin_cumulative_mg_m2", cisplatin, crt)
    out.f64("months_since_rt", months_since_rt, recurrent)
    out.f64("recurrence_interval_months", interval, recurrent)
    out.text("recurrence_pattern", PATTERNS, pattern)
    out.flag("measurable_disease", measurable)
    out.flag("liver_metastasis", liver)
    out.flag("cns_metastasis", cns)
    out.flag("locally_salvageable", salvageable)
    for name, v in conditional.items():
        out.flag(name, v)
    out.flag("prior_systemic_rm", prior_rm)
    out.text("prior_ici", ("none", *ici_types), np.where(had_ici, ici_type + 1, 0))
    out.i64("prior_ici_types", np.where(had_ici, 1 + ici_two, 0).astype(np.int64))
    out.text("prior_ici_phase", ICI_PHASES, ici_phase, had_ici)
    out.text("prior_ici_best_response", RESPONSES, ici_response, induction)
    out.flag("progression_within_6m_of_rt", progressed_6m)
    out.flag("induction_chemotherapy", induction_chemo)
    out.flag("adjuvant_capecitabine", adjuvant)
    out.f64("adjuvant_months", adjuvant_months, adjuvant)
    out.f64("recurrence_after_therapy_months", after_therapy, recurrent)
    out.flag("prior_capecitabine", adjuvant)
    out.f64("hb_g_l", lab["hb_g_l"])
    out.f64("wbc_10e9_l", lab["wbc_10e9_l"])
    out.f64("plt_10e9_l", lab["plt_10e9_l"])
    out.flag("transfusion_14d", transfusion)
    out.flag("gcsf_14d", gcsf)
    out.f64("tbil_umol_l", lab["tbil_umol_l"])
    out.f64("tbil_uln_umol_l", np.where(
        male, ref.tbil_uln_umol_l.male.value, ref.tbil_uln_umol_l.female.value))
    out.f64("alt_u_l", lab["alt_u_l"])
    out.f64("alt_uln_u_l", np.where(
        male, ref.alt_uln_u_l.male.value, ref.alt_uln_u_l.female.value))
    out.f64("ast_u_l", lab["ast_u_l"])
    out.f64("ast_uln_u_l", np.where(
        male, ref.ast_uln_u_l.male.value, ref.ast_uln_u_l.female.value))
    out.f64("creatinine_umol_l", lab["creatinine_umol_l"])
    out.f64("creatinine_uln_umol_l", L.creatinine_uln(cfg, male, age))
    out.f64("crcl_ml_min", crcl)
    out.f64("inr", lab["inr"])
    out.f64("inr_uln", np.full(n, float(ref.inr_uln.value)))
    out.f64("aptt_s", lab["aptt_s"])
    out.f64("aptt_uln_s", np.full(n, float(ref.aptt_uln_s.value)))
    out.f64("tsh_miu_l", tsh)
    out.f64("tsh_uln_miu_l", np.full(n, float(tsh_uln)))
    out.f64("ft3_pmol_l", ft3, tested)
    out.f64("ft4_pmol_l", ft4, tested)
    for key in ("ft3_lln_pmol_l", "ft3_uln_pmol_l", "ft4_lln_pmol_l", "ft4_uln_pmol_l"):
        out.f64(key, np.full(n, float(getattr(ref, key).value)))
    out.flag("hypothyroid_on_replacement", on_replacement)
    out.f64("troponin_ng_l", troponin)
    out.f64("troponin_uln_ng_l", np.full(n, float(ref.troponin_uln_ng_l.value)))
    out.f64("ntprobnp_pg_ml", ntprobnp)
    out.f64("ntprobnp_uln_pg_ml", np.full(n, float(ref.ntprobnp_uln_pg_ml.value)))
    out.flag("ecg_abnormal", ecg_abnormal)
    out.f64("qtc_ms", qtc)
    out.f64("lvef_pct", lvef, echo)
    out.flag("cardiac_event_6m", cardiac_event)
    out.flag("arrhythmia_6m", arrhythmia)
    out.i64("nyha_class", nyha)
    out.flag("hypertension", hypertension)
    out.flag("hypertension_history", aware)
    out.i64("antihypertensive_drugs", drugs)
    out.f64("sbp_mmhg", sbp)
    out.f64("dbp_mmhg", dbp)
    out.i64("urine_protein_dipstick", dipstick)
    out.f64("urine_protein_24h_g", protein_24h, dipstick >= 2)
    out.flag("hbsag_positive", hbsag)
    out.f64("hbv_dna_copies_ml", dna, hbsag)
    out.flag("hbv_antiviral", antiviral)
    out.flag("hcv_ab_positive", hcv_ab)
    out.flag_or_null("hcv_rna_positive", hcv_rna, hcv_ab)
    out.flag("hiv_positive", hiv)
    out.flag("tp_positive", tp)
    out.flag("liver_cirrhosis", cirrhosis)
    out.flag("active_tb_1y", tb)
    for name, v in hist.items():
        out.flag(name, v)
    # extras (documented in docs/data_dictionary.md)
    out.flag("distant_metastasis", distant)
    out.flag("hypothyroidism_rt", hypo)
    out.flag("overt_hypothyroidism", overt)
    return out.frame()


def sample_many(cfg: PopulationConfig, batches: Sequence[tuple[int, np.random.Generator]],
                keep: Sequence[np.ndarray | None] | None = None) -> pl.DataFrame:
    """`sample(cfg, n, rng)` of each (n, rng), the frames one under the other, made as one frame (each
    generator makes the draws it makes alone; population/streams.py). No two batches may share a
    generator. `keep`: per batch None (every row) or the ascending rows of its frame to return, the
    generator drawing the whole batch all the same (`Streams`' keep): the rows `sample` gives them."""
    sizes = [int(n) for n, _ in batches]
    if any(n < 0 for n in sizes):
        raise ValueError(f"n must be >= 0, got {min(sizes)}")
    streams = Streams([rng for _, rng in batches], sizes, keep)
    return sample(cfg, streams.n, streams)


def blood_pressure(cfg: PopulationConfig, hypertension: np.ndarray, treated: np.ndarray,
                   z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recorded SBP and DBP, mmHg, from four standard-normal rows z: usual pressures through a Gaussian
    copula with correlation `sbp_dbp_correlation` (rows 0, 1), then the mean of `readings_averaged`
    clinic readings, each with independent reading error (rows 2, 3 carry the mean error, whose SD is
    the reading SD / sqrt(readings)). Treated hypertensives are shifted by the treatment effect."""
    b = cfg.blood_pressure
    r = b.sbp_dbp_correlation.value
    z_s, z_d = z[0], r * z[0] + np.sqrt(1.0 - r * r) * z[1]
    sbp = np.where(hypertension, _from_z(b.sbp_hypertensive_untreated_mmhg, z_s)
                   + np.where(treated, b.sbp_shift_treated_mmhg.value, 0.0),
                   _from_z(b.sbp_normotensive_mmhg, z_s))
    dbp = np.where(hypertension, _from_z(b.dbp_hypertensive_untreated_mmhg, z_d)
                   + np.where(treated, b.dbp_shift_treated_mmhg.value, 0.0),
                   _from_z(b.dbp_normotensive_mmhg, z_d))
    k = np.sqrt(b.readings_averaged.value)
    return sbp + b.reading_sd_sbp_mmhg.value / k * z[2], dbp + b.reading_sd_dbp_mmhg.value / k * z[3]


def thyroid_tsh(cfg: PopulationConfig, z: np.ndarray, on_replacement: np.ndarray,
                untreated: np.ndarray) -> np.ndarray:
    """TSH, mIU/L, from a standard-normal draw: euthyroid or on replacement, lognormal; untreated
    hypothyroid, ULN x (1 + lognormal excess) so it is always above the ULN."""
    t = cfg.thyroid
    (mu_e, s_e), (mu_r, s_r), (mu_x, s_x) = (t.tsh_euthyroid_miu_l._mu_sigma(),
                                             t.tsh_on_replacement_miu_l._mu_sigma(),
                                             t.tsh_untreated_excess_over_uln._mu_sigma())
    uln = cfg.reference.tsh_uln_miu_l.value
    return np.where(untreated, uln * (1 + np.exp(mu_x + s_x * z)),
                    np.where(on_replacement, np.exp(mu_r + s_r * z), np.exp(mu_e + s_e * z)))


def tsh_residual(cfg: PopulationConfig, tsh: np.ndarray, on_replacement: np.ndarray,
                 untreated: np.ndarray) -> np.ndarray:
    """Inverse of thyroid_tsh."""
    t = cfg.thyroid
    (mu_e, s_e), (mu_r, s_r), (mu_x, s_x) = (t.tsh_euthyroid_miu_l._mu_sigma(),
                                             t.tsh_on_replacement_miu_l._mu_sigma(),
                                             t.tsh_untreated_excess_over_uln._mu_sigma())
    uln = cfg.reference.tsh_uln_miu_l.value
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.log(np.maximum(tsh / uln - 1, 1e-300))
        return np.where(untreated, (excess - mu_x) / s_x,
                        np.where(on_replacement, (np.log(tsh) - mu_r) / s_r, (np.log(tsh) - mu_e) / s_e))


def tsh_spread(cfg: PopulationConfig, on_replacement: np.ndarray, untreated: np.ndarray) -> np.ndarray:
    """sigma (log scale) of the TSH distribution each patient's value was drawn from."""
    t = cfg.thyroid
    return np.where(untreated, t.tsh_untreated_excess_over_uln._mu_sigma()[1],
                    np.where(on_replacement, t.tsh_on_replacement_miu_l._mu_sigma()[1],
                             t.tsh_euthyroid_miu_l._mu_sigma()[1]))


def free_hormones(cfg: PopulationConfig, rng: np.random.Generator, n: int,
                  overt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FT3 and FT4, pmol/L, for everyone (the caller keeps them only where TSH > ULN)."""
    t = cfg.thyroid
    z3, z4 = rng.standard_normal(n), rng.standard_normal(n)
    (m3, s3), (m3o, s3o) = t.ft3_not_overt_pmol_l._mu_sigma(), t.ft3_overt_pmol_l._mu_sigma()
    (m4, s4), (m4o, s4o) = t.ft4_not_overt_pmol_l._mu_sigma(), t.ft4_overt_pmol_l._mu_sigma()
    ft3 = np.where(overt, np.exp(m3o + s3o * z3), np.exp(m3 + s3 * z3))
    ft4 = np.where(overt, np.exp(m4o + s4o * z4), np.exp(m4 + s4 * z4))
    return ft3, ft4


def urine_24h(cfg: PopulationConfig, dipstick: np.ndarray, z: np.ndarray) -> np.ndarray:
    """24-hour urine protein, g, by dipstick grade (NaN below ++, where the test is not done)."""
    u = cfg.urine
    out = np.full(dipstick.shape, np.nan)
    for grade, d in ((2, u.protein_24h_g_grade2), (3, u.protein_24h_g_grade3), (4, u.protein_24h_g_grade4)):
        mu, sigma = d._mu_sigma()
        sel = dipstick == grade
        out[sel] = np.exp(mu + sigma * z[sel])
    return out
