"""The `[population]` section: every figure that describes an R/M NPC candidate, with its source.

A candidate is any recurrent or metastatic NPC patient a site sees who could be considered for
first-line systemic therapy, including those the trial turns away. The section is organised like the
generator (population/generate.py): demographics, disease history, laboratory values (sex-specific
marginals + named effects + a Gaussian copula for the residuals), reference intervals, thyroid,
cardiac, blood pressure, urine, infections, history flags, and the re-test (within-subject variation)
figures. Each distribution is a registry entry `{dist = ..., source = ...}`; each single figure a
`Figure` or `Probability`; effects are named figures so that a scenario can switch them off.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from hn005_sim.scenario.base import Figure, Probability, Strict
from hn005_sim.scenario.dists import Categorical, Dist, LogNormal, Normal, TruncNormal

LabDist = Annotated[Normal | LogNormal, Field(discriminator="dist")]
"""Copula marginals must have a closed-form quantile: normal (value = mean + sd z) or lognormal."""

BpDist = Annotated[Normal | TruncNormal, Field(discriminator="dist")]
"""Usual blood pressure: normal or truncated normal, drawn from a standard normal so SBP and DBP can be
correlated (population/generate.py, `_from_z`)."""

COPULA_LABS = (
    "hb_g_l", "wbc_10e9_l", "plt_10e9_l", "tbil_umol_l", "alt_u_l", "ast_u_l",
    "creatinine_umol_l", "inr", "aptt_s",
)
"""Labs whose residuals share the Gaussian copula, in the order the generator draws them."""

RETEST_LABS = (*COPULA_LABS, "tsh_miu_l", "ft3_pmol_l", "ft4_pmol_l")


def log_sd(d: Normal | LogNormal) -> float:
    """Spread on the scale the copula works on: sd for normal, sigma (log scale) for lognormal."""
    return d.sd if isinstance(d, Normal) else d._mu_sigma()[1]


class SexNormal(Strict):
    """Body size for men and for women: normal, so that height and weight can be correlated."""

    male: Normal
    female: Normal


class SexLab(Strict):
    """A lab's marginal for men and women (before effects); both normal or both lognormal."""

    male: LabDist
    female: LabDist

    @model_validator(mode="after")
    def _same_kind(self):
        if type(self.male) is not type(self.female):
            raise ValueError("male and female must use the same distribution (both normal or both lognormal)")
        return self


class SexFigure(Strict):
    male: Figure
    female: Figure


class CreatinineUln(Strict):
    """WS/T 404.5-2015 gives creatinine intervals by sex and age band (20-59, 60-79 years)."""

    male_under_60: Figure
    male_60_plus: Figure
    female_under_60: Figure
    female_60_plus: Figure


class Demographics(Strict):
    male: Probability
    age_years: Dist
    height_cm: SexNormal
    weight_kg: SexNormal
    height_weight_correlation: Figure = Field(description="within-sex correlation of height and weight")
    weight_loss_after_rt_fraction: Dist = Field(
        description="share of body weight a recurrent patient has still lost after radiotherapy")
    ecog: Categorical = Field(description="numeric values 0..3")
    menopause_age_years: Dist
    sterilised_female: Probability
    pregnant_given_potential: Probability
    contraception_refused: Probability

    _ecog = field_validator("ecog")(lambda d: _numbers(d, [0, 1, 2, 3]))

    @field_validator("height_weight_correlation")
    @classmethod
    def _corr(cls, f: Figure) -> Figure:
        if not -1 < f.value < 1:
            raise ValueError(f"value must be between -1 and 1, got {f.value}")
        return f


class CrtByStage(Strict):
    """Probability that a recurrent patient had chemoradiotherapy (else RT alone), by stage."""

    I: Probability  # noqa: E741 - AJCC stage names
    II: Probability
    III: Probability
    IVA: Probability


STAGES_CURATIVE = ("I", "II", "III", "IVA")
PATTERNS = ("local", "regional", "locoregional", "distant", "locoregional_distant")
ICI_TYPES = ("pd1", "pdl1", "ctla4", "bispecific")
"""Usual prior checkpoint-inhibitor types; a trial may add its own (e.g. its drug) in `prior_ici_type`."""
CONDITIONS = ("locoregional_only", "local_component", "distant", "recurrent", "de_novo")
"""Disease facts a declared conditional attribute may depend on (population/generate.py)."""
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ICI_PHASES = ("induction", "concurrent", "adjuvant")
RESPONSES = ("CR", "PR", "SD", "PD")


def _labels(d: Categorical, allowed: tuple[str, ...]) -> Categorical:
    if sorted(map(str, d.values)) != sorted(allowed) or not isinstance(d.values[0], str):
        raise ValueError(f"values must be exactly {list(allowed)} (any order), got {list(d.values)}")
    return d


def _numbers(d: Categorical, allowed: list[int]) -> Categorical:
    if isinstance(d.values[0], str) or sorted(d.values) != allowed:
        raise ValueError(f"values must be {allowed}, got {list(d.values)}")
    return d


def _ici_labels(d: Categorical) -> Categorical:
    labels = list(map(str, d.values))
    if isinstance(d.values[0], float) or len(set(labels)) != len(labels) or "none" in labels:
        raise ValueError(f"values must be distinct labels other than 'none', got {list(d.values)}")
    return d


class ConditionalFlag(Strict):
    """A trial-specific yes/no attribute whose probability depends on a disease fact (`given`)."""

    given: Literal["locoregional_only", "local_component", "distant", "recurrent", "de_novo"]
    p_given: Probability
    p_otherwise: Probability


def _attribute_names(d: dict) -> dict:
    bad = [k for k in d if not ATTRIBUTE_NAME.match(k)]
    if bad:
        raise ValueError(f"attribute names must be lower-case identifiers, got {bad}")
    return d


class Disease(Strict):
    de_novo_metastatic: Probability
    stage_at_diagnosis_recurrent: Categorical = Field(description="labels I, II, III, IVA")
    crt_by_stage: CrtByStage
    cisplatin_cumulative_mg_m2: Dist
    recurrence_interval_months: Dist
    presentation_delay_months: Dist = Field(description="recurrence found -> seen for first-line therapy")
    recurrence_pattern: Categorical
    measurable_disease: Probability
    liver_metastasis_given_distant: Probability
    cns_metastasis_given_distant: Probability
    salvageable_given_locoregional_only: Probability
    conditional_flags: dict[str, ConditionalFlag] = Field(
        default_factory=dict,
        description="trial-specific yes/no attributes drawn in the order written (cohort columns of the "
                    "same name), e.g. an investigator judgement that depends on where the disease is")
    prior_systemic_rm: Probability
    prior_ici_given_curative: Probability
    prior_ici_type: Categorical
    prior_ici_two_types: Probability
    prior_ici_phase: Categorical
    prior_ici_induction_response: Categorical
    induction_chemo_given_crt: Probability = Field(
        description="induction chemotherapy before CRT (III-IVA)")
    adjuvant_capecitabine_given_crt: Probability = Field(
        description="adjuvant (metronomic) capecitabine after CRT")
    adjuvant_planned_months: Dist = Field(description="planned duration of adjuvant capecitabine")

    _stage = field_validator("stage_at_diagnosis_recurrent")(lambda d: _labels(d, STAGES_CURATIVE))
    _pattern = field_validator("recurrence_pattern")(lambda d: _labels(d, PATTERNS))
    _ici_type = field_validator("prior_ici_type")(_ici_labels)
    _flag_names = field_validator("conditional_flags")(_attribute_names)
    _ici_phase = field_validator("prior_ici_phase")(lambda d: _labels(d, ICI_PHASES))
    _response = field_validator("prior_ici_induction_response")(lambda d: _labels(d, RESPONSES))


class Correlation(Strict):
    """Residual correlation of the copula labs; checked symmetric, unit-diagonal, positive definite."""

    labs: list[str]
    matrix: list[list[float]]
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _check(self):
        if sorted(self.labs) != sorted(COPULA_LABS) or len(self.labs) != len(COPULA_LABS):
            raise ValueError(f"labs must list each of {list(COPULA_LABS)} once, got {self.labs}")
        k = len(self.labs)
        if len(self.matrix) != k or any(len(row) != k for row in self.matrix):
            raise ValueError(f"matrix must be {k} x {k} (one row and column per lab)")
        m = np.asarray(self.matrix, dtype=float)
        if not np.allclose(np.diag(m), 1.0):
            raise ValueError("matrix must have 1 on the diagonal")
        if not np.allclose(m, m.T):
            raise ValueError("matrix must be symmetric")
        if np.any(np.abs(m) > 1):
            raise ValueError("matrix entries must be between -1 and 1")
        smallest = float(np.linalg.eigvalsh(m).min())
        if smallest <= 1e-10:
            raise ValueError(f"matrix must be positive definite, smallest eigenvalue is {smallest:.4g}")
        return self

    def ordered(self) -> np.ndarray:
        """The matrix with rows/columns in COPULA_LABS order."""
        idx = [self.labs.index(name) for name in COPULA_LABS]
        m = np.asarray(self.matrix, dtype=float)
        return m[np.ix_(idx, idx)]


class LabEffects(Strict):
    """Named effects on the lab marginals: multipliers act on the median (lognormal labs)."""

    hb_shift_ecog_2plus_g_l: Figure
    hb_shift_distant_g_l: Figure
    alt_multiplier_liver_metastasis: Figure
    ast_multiplier_liver_metastasis: Figure
    tbil_multiplier_liver_metastasis: Figure
    alt_multiplier_hbv_active: Figure
    creatinine_multiplier_per_100_mg_m2_cisplatin: Figure
    creatinine_multiplier_per_decade_over_45: Figure

    @model_validator(mode="after")
    def _positive(self):
        for name in type(self).model_fields:
            if name.startswith(("alt_", "ast_", "tbil_", "creatinine_")) and getattr(self, name).value <= 0:
                raise ValueError(f"{name}.value must be > 0 (a multiplier)")
        return self


class Labs(Strict):
    hb_g_l: SexLab
    wbc_10e9_l: SexLab
    plt_10e9_l: SexLab
    tbil_umol_l: SexLab
    alt_u_l: SexLab
    ast_u_l: SexLab
    creatinine_umol_l: SexLab
    inr: SexLab
    aptt_s: SexLab
    correlation: Correlation
    effects: LabEffects
    transfusion_14d: Probability
    gcsf_14d: Probability


class Reference(Strict):
    """Reference intervals (ULN/LLN) the laboratory reports beside each value."""

    tbil_uln_umol_l: SexFigure
    alt_uln_u_l: SexFigure
    ast_uln_u_l: SexFigure
    creatinine_uln_umol_l: CreatinineUln
    inr_uln: Figure
    aptt_uln_s: Figure
    tsh_uln_miu_l: Figure
    ft3_lln_pmol_l: Figure
    ft3_uln_pmol_l: Figure
    ft4_lln_pmol_l: Figure
    ft4_uln_pmol_l: Figure
    troponin_uln_ng_l: Figure
    ntprobnp_uln_pg_ml: Figure


class HypothyroidismCurve(Strict):
    """Cumulative incidence of hypothyroidism after RT: F(t) = plateau * (1 - exp(-(t/scale)^shape)).

    A Weibull with a plateau (not every irradiated thyroid fails), t in months since the end of RT.
    """

    plateau: float = Field(gt=0, le=1)
    shape: float = Field(gt=0)
    scale_months: float = Field(gt=0)
    source: str = Field(min_length=3)

    def cumulative(self, months):
        t = np.maximum(np.asarray(months, dtype=float), 0.0)
        return self.plateau * (1.0 - np.exp(-((t / self.scale_months) ** self.shape)))


class Thyroid(Strict):
    hypothyroidism_after_rt: HypothyroidismCurve
    on_replacement_given_hypothyroid: Probability
    overt_given_untreated: Probability
    tsh_euthyroid_miu_l: LogNormal
    tsh_on_replacement_miu_l: LogNormal
    tsh_untreated_excess_over_uln: LogNormal = Field(description="TSH = ULN x (1 + excess)")
    ft3_not_overt_pmol_l: LogNormal
    ft3_overt_pmol_l: LogNormal
    ft4_not_overt_pmol_l: LogNormal
    ft4_overt_pmol_l: LogNormal


class Cardiac(Strict):
    troponin_ng_l: LogNormal
    troponin_multiplier_per_decade_over_45: Figure
    ntprobnp_pg_ml: LogNormal
    ntprobnp_multiplier_per_decade_over_45: Figure
    qtc_ms: Normal
    qtc_shift_female_ms: Figure
    ecg_other_abnormal: Probability
    lvef_pct: Dist
    cardiac_event_6m: Probability
    arrhythmia_6m: Probability
    nyha_class: Categorical = Field(description="numeric values 1..4")

    _nyha = field_validator("nyha_class")(lambda d: _numbers(d, [1, 2, 3, 4]))


class BloodPressure(Strict):
    """Hypertension: logit P = logit(prevalence_at_50) + ln(odds_ratio_per_decade) * (age - 50) / 10."""

    hypertension_prevalence_at_50: Probability
    hypertension_odds_ratio_per_decade: Figure
    aware_given_hypertension: Probability = Field(
        description="known hypertension (history) among hypertensives")
    treated_given_aware: Probability
    drugs_given_treated: Categorical = Field(description="numeric values: number of drug classes")
    sbp_normotensive_mmhg: BpDist
    dbp_normotensive_mmhg: BpDist
    sbp_hypertensive_untreated_mmhg: BpDist
    dbp_hypertensive_untreated_mmhg: BpDist
    sbp_shift_treated_mmhg: Figure
    dbp_shift_treated_mmhg: Figure
    sbp_dbp_correlation: Figure = Field(description="between-person correlation of usual SBP and DBP")
    reading_sd_sbp_mmhg: Figure = Field(description="SD of one clinic reading around the usual SBP")
    reading_sd_dbp_mmhg: Figure = Field(description="SD of one clinic reading around the usual DBP")
    readings_averaged: Figure = Field(description="clinic readings averaged into the recorded pressure")

    @field_validator("sbp_dbp_correlation")
    @classmethod
    def _corr(cls, f: Figure) -> Figure:
        if not -1 < f.value < 1:
            raise ValueError(f"value must be between -1 and 1, got {f.value}")
        return f

    @field_validator("readings_averaged")
    @classmethod
    def _readings(cls, f: Figure) -> Figure:
        if f.value < 1 or f.value != int(f.value):
            raise ValueError(f"value must be a whole number >= 1, got {f.value}")
        return f

    @field_validator("reading_sd_sbp_mmhg", "reading_sd_dbp_mmhg")
    @classmethod
    def _sd(cls, f: Figure) -> Figure:
        if f.value < 0:
            raise ValueError(f"value must be >= 0, got {f.value}")
        return f


class Urine(Strict):
    dipstick: Categorical = Field(description="numeric values 0..4 (negative, +, ++, +++, ++++)")
    protein_24h_g_grade2: LogNormal
    protein_24h_g_grade3: LogNormal
    protein_24h_g_grade4: LogNormal

    _dipstick = field_validator("dipstick")(lambda d: _numbers(d, [0, 1, 2, 3, 4]))


class Infections(Strict):
    hbsag_positive: Probability
    hbv_dna_detectable_given_hbsag: Probability
    hbv_dna_copies_ml_detectable: Dist
    hbv_active_threshold_copies_ml: Figure
    hbv_antiviral_given_hbsag: Probability = Field(
        description="HBsAg carriers on nucleos(t)ide antiviral therapy at assessment")
    hbv_log10_reduction_on_antiviral: Dist = Field(description="log10 fall of HBV DNA on antiviral therapy")
    hcv_ab_positive: Probability
    hcv_rna_given_ab: Probability
    hiv_positive: Probability
    tp_positive: Probability
    cirrhosis_given_hbsag: Probability
    cirrhosis_otherwise: Probability
    active_tb_1y: Probability




class WithinSubjectCv(Strict):
    """Within-subject biological coefficient of variation (CVI, fraction) of each re-measured lab."""

    hb_g_l: Figure
    wbc_10e9_l: Figure
    plt_10e9_l: Figure
    tbil_umol_l: Figure
    alt_u_l: Figure
    ast_u_l: Figure
    creatinine_umol_l: Figure
    inr: Figure
    aptt_s: Figure
    tsh_miu_l: Figure
    ft3_pmol_l: Figure
    ft4_pmol_l: Figure
    urine_protein_24h_g: Figure

    @model_validator(mode="after")
    def _check(self):
        for name in type(self).model_fields:
            v = getattr(self, name).value
            if not 0 <= v < 1:
                raise ValueError(f"{name}.value must be a fraction in [0, 1), got {v}")
        return self

    def log_sd(self, name: str) -> float:
        """sd of log(value) for a lognormal with this CV: sqrt(ln(1 + CV^2))."""
        return math.sqrt(math.log1p(getattr(self, name).value ** 2))


class Retest(Strict):
    cv_within_subject: WithinSubjectCv
    dipstick_change: Probability = Field(description="chance the dipstick reads one grade up or down")


class PopulationConfig(Strict):
    demographics: Demographics
    disease: Disease
    labs: Labs
    reference: Reference
    thyroid: Thyroid
    cardiac: Cardiac
    blood_pressure: BloodPressure
    urine: Urine
    infections: Infections
    history: dict[str, Probability] = Field(
        description="yes/no history flags drawn independently in the order written (cohort columns of the "
                    "same name); a trial declares its own, e.g. recent exposure to its drug")
    retest: Retest

    _history_names = field_validator("history")(_attribute_names)

    def declared_attributes(self) -> tuple[str, ...]:
        """Cohort columns this population declares (conditional disease flags, history flags)."""
        return (*self.disease.conditional_flags, *self.history)

    @model_validator(mode="after")
    def _within_below_total(self):
        """Re-testing keeps each lab's distribution only if its within-subject variation is smaller than
        its spread in the population (the set point then varies between patients)."""
        cv = self.retest.cv_within_subject
        for name in COPULA_LABS:
            lab: SexLab = getattr(self.labs, name)
            for sex in ("male", "female"):
                d = getattr(lab, sex)
                within = cv.log_sd(name) if isinstance(d, LogNormal) else cv_value(cv, name) * d.mean_
                if within >= log_sd(d):
                    raise ValueError(
                        f"retest.cv_within_subject.{name}: within-subject variation ({within:.3g}) must be "
                        f"smaller than the population spread of labs.{name}.{sex} ({log_sd(d):.3g})"
                    )
        return self


def cv_value(cv: WithinSubjectCv, name: str) -> float:
    return getattr(cv, name).value
