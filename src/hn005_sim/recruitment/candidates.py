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

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hn005_sim.eligibility.engine import pack_failures
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


def _column_mask(columns: np.ndarray, k: int) -> np.ndarray:
    """(ceil(k/64),) uint64: bit j of word c set for column 64c+j in `columns` (the engine's layout)."""
    mask = np.zeros((k + 63) // 64, dtype=np.uint64)
    for c in np.asarray(columns, dtype=np.int64).tolist():
        mask[c // 64] |= np.uint64(1) << np.uint64(c % 64)
    return mask


def _lowest_failure(words: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Index of the first failing criterion, in protocol order, among the columns of `mask`, from the
    packed failure words (n, w) (`Screening.words`; bit j of word c: fails criterion 64c+j); -1 when
    none fails. The lowest set bit of words & mask, isolated by x & -x, its index read from the
    exponent of that power of two (exact in float64)."""
    out = np.full(words.shape[0], -1, dtype=np.int64)
    for c in reversed(range(words.shape[1])):  # a lower word's bit comes first
        m = words[:, c] & mask[c]
        hit = np.flatnonzero(m)
        if hit.size:
            m = m[hit]
            low = m & (~m + np.uint64(1))
            out[hit] = 64 * c + np.frexp(low.astype(np.float64))[1] - 1
    return out


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
        k = len(self.reason_ids)
        self._pre_mask, self._scr_mask = _column_mask(self._pre_cols, k), _column_mask(self._scr_cols, k)
        from hn005_sim.eligibility.chart import ChartModel

        self._chart = ChartModel.build(getattr(scenario, "chart_review", None), self._screener)
        rec = getattr(scenario, "recruitment", None)
        self._regions = {r.name: r for r in (rec.regions if rec is not None else [])}
        self._probs: dict[str | None, np.ndarray] = {}  # `_region_probabilities`, per region

    def _region_probabilities(self, name: str | None) -> np.ndarray:
        """The chart model's unit probabilities at a site of region `name` (its site type and
        overrides), computed once per region: the same for every site and replicate (read-only)."""
        probs = self._probs.get(name)
        if probs is None:
            region = self._regions.get(name)
            probs = self._chart.probabilities(getattr(region, "site_type", None),
                                              getattr(region, "chart_known", None))
            probs.flags.writeable = False
            self._probs[name] = probs
        return probs

    def site_chart(self, seed: int, replicate: int, site):
        """The chart draws of one site (its region's site type and overrides); None without a
        [chart_review] model."""
        from hn005_sim.eligibility.chart import SiteChart

        if self._chart.cfg is None:
            return None
        return SiteChart(self._chart, self._region_probabilities(site.region),
                         self._chart.generators(seed, replicate, site.stream_key))

    def chart_keys(self, replicate: int, site) -> list[tuple[int, ...]]:
        """The spawn keys of the site's chart generators (none without a [chart_review] model), for
        `site_charts` to be handed generators seeded with other streams' (recruitment/seeding.py)."""
        return [] if self._chart.cfg is None else self._chart.unit_keys(replicate, site.stream_key)

    def site_charts(self, seed: int, replicate: int, sites, generators=None) -> list:
        """`site_chart` of each site, every site's chart generators seeded in one computation, or
        given (`generators`: per site, the generators of its `chart_keys`)."""
        from hn005_sim.eligibility.chart import SiteChart

        if self._chart.cfg is None:
            return [None] * len(sites)
        if generators is None:
            generators = self._chart.generators_many(seed, replicate, [site.stream_key for site in sites])
        return [SiteChart(self._chart, self._region_probabilities(site.region), g)
                for site, g in zip(sites, generators, strict=True)]

    def _verdict(self, s, known: np.ndarray | None = None, known_bits: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Eligible, and the first failing criterion not judged at prescreen (a chart-review one if
        none: a re-test moved it) of a Screening. `known_bits`: `known` packed (`pack_bits`), when the
        caller has it already."""
        fails = _fail_words(s)
        ok = np.asarray(s.eligible, dtype=bool).copy()
        if known is None:
            reason = _lowest_failure(fails, self._scr_mask)
        else:  # first among the criteria not known at prescreen: prescreen-stage ones, then the others
            open_ = fails & ~(pack_bits(known) if known_bits is None else known_bits)
            reason = _lowest_failure(open_, self._pre_mask)
            rest = np.flatnonzero(reason < 0)
            reason[rest] = _lowest_failure(open_[rest], self._scr_mask)
        # a failure the re-test moved into a chart-review criterion is still a screening failure
        out = np.where(ok, -1, reason)
        moved = np.flatnonzero(~ok & (reason < 0))
        if moved.size:
            out[moved] = _lowest_failure(fails[moved], self._pre_mask)
        return ok, out

    def judge(self, rng, n, *, retest, rescreen_if_fail, chart=None):
        return self.finish(self.prescreen([JudgeRequest(rng, n, retest, rescreen_if_fail, chart)]))[0]

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[CandidateBatch]:
        """`judge` of each request, the requests' criteria evaluated together (see `prescreen`)."""
        return self.finish(self.prescreen(requests))

    def prescreen(self, requests: Sequence[JudgeRequest]) -> list[Prescreened]:
        """First half of `judge` for several batches at once: each request's candidates drawn from its
        own generator, its chart from its own generators, and its re-measured labs drawn after them
        from its generator again, exactly as `judge` draws them one request at a time; the chart
        decisions and the criteria of all the requests are evaluated in one polars pass each (the
        rules are row-wise). The screening verdicts on the re-measured labs wait for `finish`, which
        evaluates every batch's new labs in one pass.

        The requests' candidates are drawn as one frame (`population.sample_many`: each generator
        makes the draws it makes alone) and so are their re-measured labs. Requests should not share
        a generator (the simulation's never do); those that do are drawn as before that path: each
        request's candidates in order, then each one's labs."""
        pop = self._pop
        distinct = len({id(r.rng) for r in requests}) == len(requests)
        drawn = None  # every request's candidates in one frame
        keeps: list[np.ndarray | None] = [None] * len(requests)  # the rows judged (None: all)
        if distinct and requests:
            keeps = [_rows_that_matter(r) for r in requests]
            total = sum(r.n for r in requests)
            if sum(r.n - k.size for r, k in zip(requests, keeps, strict=True) if k is not None) < \
                    UNJUDGED_SHARE * total:
                keeps = [None] * len(requests)  # too few rows left out to pay for picking the others
            drawn = pop.sample_many(self._pop_cfg, [(r.n, r.rng) for r in requests],
                                    keeps if any(k is not None for k in keeps) else None)
            bounds = np.cumsum([0] + [r.n if k is None else k.size
                                      for r, k in zip(requests, keeps, strict=True)])
            frames = [drawn.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds.tolist())]
        else:
            frames = [pop.sample(self._pop_cfg, r.n, r.rng) for r in requests]
        charts = [r.chart for r in requests]
        same_model = all(c is not None for c in charts) and len({id(c.model) for c in charts}) == 1
        # frames that do not stack, or charts of different models: one request at a time, as always
        whole = None
        if same_model or all(c is None for c in charts):
            whole = drawn if drawn is not None else _stack(frames)
        if whole is None:
            verdicts = [self._first_verdicts(self._screener.evaluate(f, c.draw(f) if c is not None else None))
                        for f, c in zip(frames, charts, strict=True)]
        else:
            known = None
            if same_model:
                unit_known = stacked_units(charts, [r.n for r in requests], keeps)
                if unit_known is not None:
                    model = charts[0].model
                    known = model.decide(whole, unit_known, model.criteria_known(unit_known))
            # the verdicts of every row at once, then cut back into the requests' batches
            every = self._first_verdicts(self._screener.evaluate(whole, known))
            bounds = np.cumsum([0] + [f.height for f in frames])
            verdicts = [tuple(None if a is None else a[lo:hi] for a in every)
                        for lo, hi in itertools.pairwise(bounds)]
        parts = []
        for r, verdict, keep in zip(requests, verdicts, keeps, strict=True):
            known, pre, pre_reason, ok, reason, unknown = verdict
            asked, again_asked = np.asarray(r.retest, dtype=bool), np.asarray(r.rescreen_if_fail, dtype=bool)
            if keep is not None:  # the rows judged, in order (keep holds every row either mask asks for)
                asked, again_asked = asked[keep], again_asked[keep]
            retest = asked & pre
            # labs re-tested because screening outlasted the window, and the new labs of a re-screen,
            # drawn for every candidate who would be re-screened and used only for those who fail
            first = np.flatnonzero(retest)
            again = np.flatnonzero(again_asked & pre)
            parts.append((known, pre, pre_reason, ok, reason, unknown, retest, first, again,
                          np.concatenate([first, again])))
        subs: list = [None] * len(requests)
        sub_of, sub_at = None, [0] * len(requests)
        if drawn is not None:
            # every request's re-measured labs in one frame, each generator drawing its rows' share
            have = [i for i, part in enumerate(parts) if part[-1].size]
            if have:
                rows = np.concatenate([parts[i][-1] + bounds[i] for i in have])
                sizes = [parts[i][-1].size for i in have]
                sub_of = pop.retest_labs(self._pop_cfg, drawn[rows],
                                         pop.Streams([requests[i].rng for i in have], sizes))
                for i, lo in zip(have, np.cumsum([0, *sizes]).tolist(), strict=False):
                    subs[i], sub_at[i] = sub_of.slice(lo, parts[i][-1].size), lo
        else:
            for i, (r, frame) in enumerate(zip(requests, frames, strict=True)):
                rows = parts[i][-1]
                subs[i] = pop.retest_labs(self._pop_cfg, frame[rows], r.rng) if rows.size else None
        out = []
        for i, frame in enumerate(frames):
            known, pre, pre_reason, ok, reason, unknown, retest, first, again, _ = parts[i]
            keep = keeps[i]
            if keep is not None:  # back to the whole batch's rows: those not judged pass nothing
                n = requests[i].n
                known = None if known is None else _spread(known, keep, n, False)
                pre, pre_reason = _spread(pre, keep, n, False), _spread(pre_reason, keep, n, -1)
                ok, reason = _spread(ok, keep, n, False), _spread(reason, keep, n, -1)
                unknown, retest = _spread(unknown, keep, n, False), _spread(retest, keep, n, False)
                first, again = keep[first], keep[again]
            out.append(Prescreened(frame, unknown, known, pre, pre_reason, ok, reason, retest, first, again,
                                   subs[i], sub_of if subs[i] is not None else None, sub_at[i],
                                   drawn, int(bounds[i]) if drawn is not None else 0, keep))
        return out

    def _first_verdicts(self, s) -> tuple:
        """(known, prescreen pass, its reason, screening pass and reason on the first labs, passes
        prescreen with a criterion undecided) of a Screening."""
        known = s.known
        fails = _fail_words(s)
        # on the packed words (Screening.prescreen_pass / prescreen_outcome, without the bool matrix)
        known_bits = None
        if known is None:
            judged = fails & self._pre_mask
            pre = ~judged.any(axis=1)
            unknown = np.zeros(pre.shape, dtype=bool)
        else:
            known_bits = pack_bits(known)  # bit set: known at prescreen
            judged = fails & known_bits
            pre = ~judged.any(axis=1)
            unknown = pre & (~known_bits & self._pre_mask).any(axis=1)
        pre_reason = np.where(pre, -1, _lowest_failure(judged, self._pre_mask))
        ok, reason = self._verdict(s, known, known_bits)
        return known, pre, pre_reason, ok, reason, unknown

    def finish(self, items: Sequence[Prescreened]) -> list[CandidateBatch]:
        """Second half of `judge`: the screening verdicts on the re-measured labs of every batch in
        one evaluation (one per batch when their frames do not stack), then each batch's verdicts.
        The re-measured labs of a `prescreen` call's batches are one frame (`Prescreened.sub_of`),
        evaluated whole when all its batches are here."""
        with_sub = [it for it in items if it.sub is not None]
        # the frames to evaluate, in order, and each batch's first row in them
        groups: dict[int, tuple[object, list[Prescreened]]] = {}
        for it in with_sub:
            parent = it.sub_of if it.sub_of is not None else it.sub
            groups.setdefault(id(parent), (parent, []))[1].append(it)
        frames, at, offset = [], {}, 0
        for parent, its in groups.values():
            if its[0].sub_of is not None and sum(it.sub.height for it in its) == parent.height:
                frames.append(parent)
                for it in its:
                    at[id(it)] = offset + it.sub_at
                offset += parent.height
            else:
                for it in its:
                    frames.append(it.sub)
                    at[id(it)] = offset
                    offset += it.sub.height
        knowns = [None if it.known is None else it.known[np.concatenate([it.first, it.again])]
                  for it in with_sub]
        whole = _stack(frames) if len(frames) > 1 else (frames[0] if frames else None)
        if whole is not None and len({k is None for k in knowns}) == 1:
            # the verdicts of every re-tested row at once, then cut back into the batches
            known = None
            if knowns[0] is not None:
                known = np.empty((whole.height, knowns[0].shape[1]), dtype=bool)
                for it, k in zip(with_sub, knowns, strict=True):
                    known[at[id(it)]:at[id(it)] + k.shape[0]] = k
            all_ok, all_reason = self._verdict(self._screener.evaluate(whole), known)
            verdicts = iter([(all_ok[at[id(it)]:at[id(it)] + it.sub.height],
                              all_reason[at[id(it)]:at[id(it)] + it.sub.height]) for it in with_sub])
        else:
            verdicts = iter([self._verdict(self._screener.evaluate(it.sub), k)
                             for it, k in zip(with_sub, knowns, strict=True)])
        out = []
        columns: dict[int, tuple] = {}  # per frame drawn, what the batches keep of it (read once)
        for it in items:
            ok, reason = it.ok.copy(), it.reason.copy()
            again_ok, again_reason = ok.copy(), reason.copy()
            if it.sub is not None:
                sub_ok, sub_reason = next(verdicts)
                f = it.first.size
                ok[it.first], reason[it.first] = sub_ok[:f], sub_reason[:f]
                again_ok[it.again], again_reason[it.again] = sub_ok[f:], sub_reason[f:]
            frame = it.frame if it.frame_of is None else it.frame_of
            kept = columns.get(id(frame))
            if kept is None:
                kept = columns[id(frame)] = _kept(frame)
            lo = 0 if it.frame_of is None else it.frame_at
            hi = lo + it.frame.height
            bsa, traits, covariates = kept
            if it.keep is not None:  # the rows judged, back in the whole batch (the others: NaN / False)
                n, keep = it.pre.size, it.keep
                bsa, traits, covariates = (
                    _spread(bsa[lo:hi], keep, n, np.nan),
                    {k: _spread(v[lo:hi], keep, n, np.nan if v.dtype.kind == "f" else False)
                     for k, v in traits.items()},
                    {k: _spread(v[lo:hi], keep, n, np.nan) for k, v in covariates.items()})
                lo, hi = 0, n
            out.append(CandidateBatch(
                prescreen_pass=it.pre,
                prescreen_reason=it.pre_reason,
                screen_pass=ok,
                screen_reason=reason,
                rescreen_pass=again_ok,
                rescreen_reason=again_reason,
                retested=it.retest,
                bsa_m2=bsa[lo:hi],
                prescreen_unknown=it.unknown,
                traits={k: v[lo:hi] for k, v in traits.items()},
                covariates={k: v[lo:hi] for k, v in covariates.items()},
            ))
        return out


@dataclass(frozen=True)
class JudgeRequest:
    """The arguments of one `CandidateSource.judge` call (a batch of one site's candidates)."""

    rng: np.random.Generator
    n: int
    retest: np.ndarray
    rescreen_if_fail: np.ndarray
    chart: object = None  # eligibility.chart.SiteChart, or None
    # the batch's first `rows` candidates can arrive at their site (None: all of them); the others are
    # drawn with the batch, so that the streams stay where they are, and judged only where the draws
    # after them need it (`_rows_that_matter`)
    rows: int | None = None


@dataclass(frozen=True)
class Prescreened:
    """A batch after `ScreenerSource.prescreen`: drawn, judged on its first labs, new labs drawn.

    `ok`/`reason` are the verdicts on the first labs (final for the candidates not in `first`);
    `sub` the re-measured labs of rows `first` then `again` (None when there are none)."""

    frame: object
    unknown: np.ndarray  # passes prescreen with a prescreen criterion undecided (chart review)
    known: np.ndarray | None
    pre: np.ndarray
    pre_reason: np.ndarray
    ok: np.ndarray
    reason: np.ndarray
    retest: np.ndarray
    first: np.ndarray
    again: np.ndarray
    sub: object
    sub_of: object = None  # the frame `sub` is a slice of (the re-measured labs of a prescreen call)
    sub_at: int = 0  # the first row of `sub` in `sub_of`
    frame_of: object = None  # the frame `frame` is a slice of (the candidates of a prescreen call)
    frame_at: int = 0  # the first row of `frame` in `frame_of`
    # the batch's rows `frame` holds (`_rows_that_matter`), None: all; the other fields are the batch's
    keep: np.ndarray | None = None


UNJUDGED_SHARE = 0.25
"""A prescreen call judges only the rows that matter (`_rows_that_matter`) when the others are at least
this share of its rows; below it every row is judged, as picking the kept rows out of each of the
~80 draws costs more than the arithmetic saved (baseline: a round's few left-out rows made it 8%
slower; network_south_china, ~40% of a round left out: 12% faster)."""


def _rows_that_matter(r: JudgeRequest) -> np.ndarray | None:
    """The rows of a request's batch to judge, ascending; None: all of them. Every candidate who can
    arrive (the first `r.rows`), and every later one whose labs would be re-measured (re-test or
    re-screen asked: whether they are drawn depends on their prescreen verdict, and their draws come
    before those of the re-screens after them). The others' values reach nothing: not the site's
    arrivals, not the generator's later draws (all of the batch is drawn, `population.Streams`' keep),
    not the re-measured labs."""
    if r.rows is None or r.rows >= r.n:
        return None
    keep = np.asarray(r.retest, dtype=bool) | np.asarray(r.rescreen_if_fail, dtype=bool)
    keep[: max(int(r.rows), 0)] = True
    return np.flatnonzero(keep)


def _spread(values: np.ndarray, keep: np.ndarray, n: int, fill) -> np.ndarray:
    """(n, ...) array holding `values` at rows `keep` and `fill` elsewhere, of values' dtype."""
    out = np.full((n, *values.shape[1:]), fill, dtype=values.dtype)
    out[keep] = values
    return out


def judge_many(source: CandidateSource, requests: Sequence[JudgeRequest]) -> list[CandidateBatch]:
    """`source.judge` of each request: in one evaluation where the source can (`ScreenerSource`),
    else one call per request, in order."""
    many = getattr(source, "judge_many", None)
    if many is not None:
        return many(requests)
    return [source.judge(r.rng, r.n, retest=r.retest, rescreen_if_fail=r.rescreen_if_fail,
                         **({"chart": r.chart} if r.chart is not None else {})) for r in requests]


def pack_bits(m: np.ndarray) -> np.ndarray:
    """(n, ceil(k/64)) uint64 words of an (n, k) bool matrix, bit j of word c set where column 64c+j
    is True: `eligibility.engine.pack_failures(~m)`, the same words (tests/recruitment/
    test_des_steps.py), packed as one flat run of bytes (each row padded to whole words) rather than
    row by row (about 1.7x faster on a round's 133,120 rows)."""
    m = np.asarray(m, dtype=bool)
    n, k = m.shape
    w = (k + 63) // 64
    if k == 64 * w:
        padded = np.ascontiguousarray(m)
    else:
        padded = np.zeros((n, 64 * w), dtype=bool)
        padded[:, :k] = m
    return np.packbits(padded.reshape(-1), bitorder="little").view("<u8").reshape(n, w).astype(np.uint64,
                                                                                                copy=False)


def _fail_words(s) -> np.ndarray:
    """A Screening's failure words (n, ceil(k/64)) uint64, as the engine packed them."""
    return s.words if s.words is not None else pack_failures(np.asarray(s.passes, dtype=bool))


def _stack(frames):
    """The frames one under the other, or None when their schemas differ (then each is evaluated
    alone: a relaxed concatenation could change a column's type and so a verdict)."""
    import polars as pl

    if not frames:
        return None
    if len(frames) == 1:
        return frames[0]
    schema = frames[0].schema
    if any(f.schema != schema for f in frames[1:]):
        return None
    return pl.concat(frames, how="vertical", rechunk=False)


def stacked_units(charts: Sequence, sizes: Sequence[int], keeps: Sequence | None = None) -> np.ndarray | None:
    """`SiteChart.draw_units(n)` of each chart (charts of one model) for its batch of n candidates,
    stacked: (sum of sizes, units) bool, the same draws in the same order (chart by chart, unit by
    unit), each unit's draws written into one contiguous row of a (units, rows) buffer, returned
    transposed (column-major: each unit's column contiguous, as `ChartModel.criteria_known` and
    `decide` read it); None without a [chart_review] model. `keeps`: per chart None or the rows of its
    batch to keep (ascending): every unit still draws the whole batch. tests/recruitment/
    test_des_steps.py compares it with the charts' own `draw_units`."""
    if not charts or charts[0].model.cfg is None:
        return None
    keeps = [None] * len(charts) if keeps is None else keeps
    rows = [int(n) if k is None else k.size for n, k in zip(sizes, keeps, strict=True)]
    buf = np.empty((len(charts[0].model.units), int(sum(rows))), dtype=bool)
    lo = 0
    for chart, n, keep, m in zip(charts, sizes, keeps, rows, strict=True):
        hi = lo + m
        for j, (gen, p) in enumerate(zip(chart.generators, chart.probabilities, strict=True)):
            u = gen.random(n)
            np.less(u if keep is None else u[keep], p, out=buf[j, lo:hi])
        lo = hi
    return buf.T


def _stacked_known(model, whole, units: list[np.ndarray]) -> np.ndarray:
    """`ChartModel.draw` of stacked frames from each frame's unit draws: the decisions are row-wise."""
    unit_known = np.concatenate(units) if len(units) > 1 else units[0]
    return model.decide(whole, unit_known, model.criteria_known(unit_known))


DOSING_COVARIATES = ("weight_kg", "crcl_ml_min")
"""Cohort columns the supply model doses per-kg and AUC (Calvert) drugs by (treatment/dosing.py)."""


def _kept(frame) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """What a judged batch keeps of its candidates' frame: BSA, the traits, the dosing covariates."""
    return (frame["bsa_m2"].to_numpy().astype(float), _traits(frame),
            {c: frame[c].to_numpy().astype(float) for c in DOSING_COVARIATES if c in frame.columns})


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
