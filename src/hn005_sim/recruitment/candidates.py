"""Candidate sources: draw a batch of candidates and judge them, all at once.

The simulation never judges one patient at a time: each site keeps a pool of candidates drawn and
judged in batches (`RecruitmentConfig.candidate_batch`), and the simpy processes only read the
pre-computed verdicts as candidates arrive. Two sources:

- `ScreenerSource`: the population model draws the candidates and the criteria engine judges them;
  labs are re-measured (`population.retest_labs`) for those whose screening outlasts the lab window
  and for those screened again, and the criteria re-evaluated on the new values.
- `FunnelSource`: fixed pass probabilities (`[recruitment.funnel]`), for planning from published
  screen-failure rates and for checks against closed forms.

Failure reasons are the first failing criterion of the candidate's stage, in protocol order, so the
reasons of a stage add up to its failures. With a `[chart_review]` model (eligibility/chart.py) the
prescreen judges each criterion on the values in the site's chart: a prescreen failure is the first
criterion that fails on known values, a screening failure the first failing criterion that was not
judged at prescreen (prescreen-stage criteria first, then screening-stage ones, each in protocol order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hn005_sim.eligibility.chart import UNKNOWN
from hn005_sim.recruitment.config import Funnel
from hn005_sim.scenario.errors import ConfigError


@dataclass(frozen=True)
class CandidateBatch:
    """Verdicts for n candidates; reasons index `CandidateSource.reason_ids`, -1 when none."""

    prescreen_pass: np.ndarray  # (n,) bool: passes the chart-review criteria
    prescreen_reason: np.ndarray  # (n,) int
    screen_pass: np.ndarray  # (n,) bool: passes screening (on re-tested labs where asked)
    screen_reason: np.ndarray  # (n,) int
    rescreen_pass: np.ndarray  # (n,) bool: passes when screened again with new labs (where asked)
    rescreen_reason: np.ndarray  # (n,) int
    retested: np.ndarray  # (n,) bool: labs were re-measured because screening outlasted the window
    bsa_m2: np.ndarray  # (n,) float
    # (n,) bool: passes prescreen with a prescreen criterion not judged (a value not in the chart)
    prescreen_unknown: np.ndarray | None = None
    # baseline characteristics kept for the enrolled (TRAITS), when the source draws real candidates
    traits: dict[str, np.ndarray] = field(default_factory=dict)
    # dosing covariates beyond BSA (weight_kg, crcl_ml_min) for per-kg and AUC doses, when drawn
    covariates: dict[str, np.ndarray] = field(default_factory=dict)


# The enrolled patients' baseline characteristics the report sets beside published trials:
# name -> (cohort column, how to read it). "value": the number itself; otherwise the column equals it.
TRAITS: dict[str, tuple[str, object]] = {
    "age_years": ("age_years", "value"),
    "female": ("sex", "F"),
    "ecog0": ("ecog", 0),
    "de_novo_metastatic": ("de_novo_metastatic", True),
    "liver_metastasis": ("liver_metastasis", True),
    "hbsag_positive": ("hbsag_positive", True),
}


class CandidateSource(Protocol):
    reason_ids: tuple[str, ...]
    reason_stages: tuple[str, ...]

    def judge(
        self, rng: np.random.Generator, n: int, *, retest: np.ndarray, rescreen_if_fail: np.ndarray,
        chart=None,
    ) -> CandidateBatch:
        """Draw n candidates and judge them.

        retest: (n,) bool, labs re-measured before the decision (screening outlasted the lab window).
        rescreen_if_fail: (n,) bool, screened again with new labs if they fail screening.
        chart: the site's `eligibility.chart.SiteChart` (what its charts hold at prescreen), or None.
        """
        ...


class FunnelSource:
    """Candidates pass pre-screening and screening with fixed, independent probabilities.

    A re-test or a re-screen is a fresh, independent draw with the same screening probability.
    """

    reason_ids = ("funnel_prescreen", "funnel_screening")
    reason_stages = ("prescreen", "screening")

    def __init__(self, funnel: Funnel):
        self.p_pre = funnel.prescreen_pass.value
        self.p_screen = funnel.screen_pass.value
        self.bsa = funnel.bsa_m2

    def judge(self, rng, n, *, retest, rescreen_if_fail, chart=None):
        # one row of uniforms per candidate, so candidate k's verdicts do not depend on the others
        u = rng.random((n, 4))
        pre = u[:, 0] < self.p_pre
        first = np.where(retest, u[:, 3], u[:, 1]) < self.p_screen
        again = u[:, 2] < self.p_screen
        bsa = self.bsa.sample(rng, n)
        return CandidateBatch(
            prescreen_pass=pre,
            prescreen_reason=np.where(pre, -1, 0),
            screen_pass=first,
            screen_reason=np.where(first, -1, 1),
            rescreen_pass=again,
            rescreen_reason=np.where(again, -1, 1),
            retested=np.asarray(retest, dtype=bool) & pre,
            bsa_m2=bsa,
        )


def _first_failure(passes: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Index (into all criteria) of the first failing criterion among `columns`; -1 when none fails."""
    if columns.size == 0:
        return np.full(passes.shape[0], -1)
    fails = ~passes[:, columns]
    first = np.argmax(fails, axis=1)
    return np.where(fails.any(axis=1), columns[first], -1)


class ScreenerSource:
    """Population model + criteria engine (both vectorised over the batch)."""

    def __init__(self, scenario):
        try:
            from hn005_sim import eligibility, population
        except ImportError as exc:  # a stage not installed in this tree
            raise ConfigError.one(
                scenario.name, "recruitment",
                f"the population and criteria models are needed to judge candidates ({exc}); "
                "give [recruitment.funnel] probabilities instead",
            ) from None
        pop_cfg = getattr(scenario, "population", None)
        crit_cfg = getattr(scenario, "criteria", None)
        if pop_cfg is None or crit_cfg is None:
            raise ConfigError.one(
                scenario.name, "recruitment",
                "judging candidates needs [population] and [criteria] sections, "
                "or [recruitment.funnel] probabilities",
            )
        self._pop = population
        self._pop_cfg = pop_cfg
        probe = population.sample(pop_cfg, 2, np.random.default_rng(0))
        self._screener = eligibility.compile_criteria(crit_cfg, probe.schema)
        self.reason_ids = tuple(str(i) for i in self._screener.ids)
        self.reason_stages = tuple(str(s) for s in self._screener.stages)
        stages = np.asarray(self.reason_stages)
        self._pre_cols = np.flatnonzero(stages == "prescreen")
        self._scr_cols = np.flatnonzero(stages != "prescreen")
        self._order = np.concatenate([self._pre_cols, self._scr_cols])
        from hn005_sim.eligibility.chart import ChartModel

        self._chart = ChartModel.build(getattr(scenario, "chart_review", None), self._screener)
        rec = getattr(scenario, "recruitment", None)
        self._regions = {r.name: r for r in (rec.regions if rec is not None else [])}

    def site_chart(self, seed: int, replicate: int, site):
        """The chart draws of one site (its region's site type and overrides); None without a
        [chart_review] model."""
        from hn005_sim.eligibility.chart import SiteChart

        if self._chart.cfg is None:
            return None
        region = self._regions.get(site.region)
        probs = self._chart.probabilities(getattr(region, "site_type", None),
                                          getattr(region, "chart_known", None))
        return SiteChart(self._chart, probs, self._chart.generators(seed, replicate, site.stream_key))

    def _verdict(self, s, known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Eligible, and the first failing criterion not judged at prescreen (a chart-review one if
        none: a re-test moved it) of a Screening."""
        passes = np.asarray(s.passes, dtype=bool)
        ok = np.asarray(s.eligible, dtype=bool).copy()
        if known is None:
            reason = _first_failure(passes, self._scr_cols)
        else:
            reason = _first_failure(passes | known, self._order)
        # a failure the re-test moved into a chart-review criterion is still a screening failure
        reason = np.where(ok, -1, np.where(reason >= 0, reason, _first_failure(passes, self._pre_cols)))
        return ok, reason

    def judge(self, rng, n, *, retest, rescreen_if_fail, chart=None):
        pop = self._pop
        frame = pop.sample(self._pop_cfg, n, rng)
        known = chart.draw(frame) if chart is not None else None
        s = self._screener.evaluate(frame, known)
        pre = np.asarray(s.prescreen_pass, dtype=bool)
        passes = np.asarray(s.passes, dtype=bool)
        judged_passes = passes if known is None else passes | ~known
        pre_reason = np.where(pre, -1, _first_failure(judged_passes, self._pre_cols))
        ok, reason = self._verdict(s, known)
        retest = np.asarray(retest, dtype=bool) & pre
        again_ok, again_reason = ok.copy(), reason.copy()
        # one re-measurement and one evaluation for both groups (polars has a fixed cost per call):
        # labs re-tested because screening outlasted the window, and the new labs of a re-screen,
        # drawn for every candidate who would be re-screened and used only for those who fail
        first = np.flatnonzero(retest)
        again = np.flatnonzero(np.asarray(rescreen_if_fail, dtype=bool) & pre)
        if first.size or again.size:
            rows = np.concatenate([first, again])
            sub = pop.retest_labs(self._pop_cfg, frame[rows], rng)
            sub_ok, sub_reason = self._verdict(self._screener.evaluate(sub),
                                               None if known is None else known[rows])
            ok[first], reason[first] = sub_ok[: first.size], sub_reason[: first.size]
            again_ok[again], again_reason[again] = sub_ok[first.size:], sub_reason[first.size:]
        return CandidateBatch(
            prescreen_pass=pre,
            prescreen_reason=pre_reason,
            screen_pass=ok,
            screen_reason=reason,
            rescreen_pass=again_ok,
            rescreen_reason=again_reason,
            retested=retest,
            bsa_m2=frame["bsa_m2"].to_numpy().astype(float),
            prescreen_unknown=np.asarray(s.prescreen_outcome == UNKNOWN),
            traits=_traits(frame),
            covariates={c: frame[c].to_numpy().astype(float)
                        for c in DOSING_COVARIATES if c in frame.columns},
        )


DOSING_COVARIATES = ("weight_kg", "crcl_ml_min")
"""Cohort columns the supply model doses per-kg and AUC (Calvert) drugs by (treatment/dosing.py)."""


def _traits(frame) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, (column, reading) in TRAITS.items():
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy()
        out[name] = values.astype(float) if reading == "value" else (values == reading)
    return out


def candidate_source(scenario) -> CandidateSource:
    """The funnel probabilities when the scenario gives them, else population + criteria."""
    rec = scenario.recruitment
    if rec is not None and rec.funnel is not None:
        return FunnelSource(rec.funnel)
    return ScreenerSource(scenario)
