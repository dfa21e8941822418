"""Discrete-event simulation of recruitment (simpy), one replicate at a time.

Flow of a candidate at a site (docs/recruitment_des.md):

    arrives -> pre-screen (chart review) -> consent? -> screening (waits for a slot when the site's
    screening capacity is full; takes `screening_days`; labs re-tested when it outlasts the lab window)
    -> eligible: withdraws before the first dose? else enrolled (first dose)
    -> not eligible: screened again after a delay (probability), else a screen failure

Recruitment stops, at every site, when the target is enrolled, or at the horizon. Consented candidates
still in screening then are `pending`, so for every replicate

    candidates = prescreen failures + no consent + screen failures + withdrawn + enrolled + pending.

Candidates are drawn and judged per site in batches (see candidates.py); the simpy processes only
handle time: arrivals, the screening slots, durations and the stop. Events are small immutable
records, turned into arrays at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import simpy

from hn005_sim.recruitment.candidates import CandidateBatch, CandidateSource
from hn005_sim.recruitment.config import MONTH_DAYS, RecruitmentConfig
from hn005_sim.recruitment.sites import Site, arrival_days, draw_sites, season_multiplier, site_stream

# event kinds
ARRIVED, PRESCREEN_FAIL, NO_CONSENT, SCREEN_START, RESCREEN, SCREEN_FAIL, WITHDRAWN, ENROLLED = range(8)
KIND_NAMES = ("arrived", "prescreen_fail", "no_consent", "screen_start", "rescreen", "screen_fail",
              "withdrawn", "enrolled")


class Event(NamedTuple):
    day: float
    site: int
    candidate: int  # index within the site's stream of candidates
    kind: int
    reason: int  # criterion index for failures, -1 otherwise


@dataclass(frozen=True)
class ReplicateRecord:
    """What one replicate hands to the Monte Carlo aggregate (small: arrays bounded by the target)."""

    replicate: int
    candidates: int
    prescreen_failures: int
    no_consent: int
    consented: int
    screened: int  # candidates who started screening
    screenings: int  # screening episodes, re-screens included
    retests: int  # lab re-tests because screening outlasted the lab window
    rescreens: int
    screen_failures: int
    withdrawn: int
    enrolled: int
    pending: int
    prescreen_reasons: np.ndarray  # (criteria,) int: failures attributed to each criterion
    screen_reasons: np.ndarray  # (criteria,) int
    enrol_day: np.ndarray  # (enrolled,) float, ascending
    enrol_site: np.ndarray  # (enrolled,) int
    enrol_bsa_m2: np.ndarray  # (enrolled,) float
    site_activation_day: np.ndarray  # (sites,) float, nan: never opened
    site_enrolled: np.ndarray  # (sites,) int
    time_to_target_day: float  # nan: not reached within the horizon
    sim_events: int  # simpy events scheduled (for the benchmark)
    supply: Any = None  # the supply model's record, when the scenario has one
    events: tuple[Event, ...] | None = field(default=None, repr=False)


class _Pool:
    """A site's candidates, drawn and judged in batches of `batch` as the site needs them."""

    def __init__(self, source: CandidateSource, cfg: RecruitmentConfig, seed: int, replicate: int,
                 site: int):
        self.source = source
        self.cfg = cfg
        self.batch = cfg.candidate_batch
        self.rng_pop = site_stream(seed, replicate, "population", site)
        self.rng_scr = site_stream(seed, replicate, "screening", site)
        self.n = 0
        self.cols: dict[str, list[np.ndarray]] = {}
        self.arr: dict[str, np.ndarray] = {}

    def _grow(self) -> None:
        b, cfg, rng = self.batch, self.cfg, self.rng_scr
        consent = rng.random(b) < cfg.consent.value
        duration = np.maximum(cfg.screening_days.sample(rng, b), 0.0)
        withdraw = rng.random(b) < cfg.withdrawal_before_dose.value
        if cfg.rescreen is not None:
            rescreen = rng.random(b) < cfg.rescreen.probability.value
            delay = np.maximum(cfg.rescreen.delay_days.sample(rng, b), 0.0)
            duration2 = np.maximum(cfg.screening_days.sample(rng, b), 0.0)
        else:
            rescreen, delay, duration2 = np.zeros(b, bool), np.zeros(b), np.zeros(b)
        retest = consent & (duration > cfg.lab_window_days.value)
        judged: CandidateBatch = self.source.judge(
            self.rng_pop, b, retest=retest, rescreen_if_fail=consent & rescreen
        )
        new = {
            "pre": judged.prescreen_pass, "pre_reason": judged.prescreen_reason,
            "ok": judged.screen_pass, "reason": judged.screen_reason,
            "ok2": judged.rescreen_pass, "reason2": judged.rescreen_reason,
            "retested": judged.retested, "bsa": judged.bsa_m2,
            "consent": consent, "duration": duration, "withdraw": withdraw,
            "rescreen": rescreen, "delay": delay, "duration2": duration2,
        }
        for k, v in new.items():
            self.cols.setdefault(k, []).append(np.asarray(v))
        self.arr = {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in self.cols.items()}
        self.n += b

    def ensure(self, k: int) -> dict[str, np.ndarray]:
        while k >= self.n:
            self._grow()
        return self.arr


class _State:
    def __init__(self, target: int):
        self.target = target
        self.enrolled = 0
        self.stopped = False
        self.pending = 0  # consented, not yet decided
        self.sim_events = 0
        self.log: list[Event] = []
        self.done: simpy.Event | None = None


def _site_process(env: simpy.Environment, st: _State, site: Site, arrivals: np.ndarray, pool: _Pool,
                  slots: simpy.Resource | None):
    log = st.log.append
    for k, day in enumerate(arrivals):
        st.sim_events += 1
        yield env.timeout(day - env.now)
        if st.stopped:
            return
        c = pool.ensure(k)
        log(Event(day, site.index, k, ARRIVED, -1))
        if not c["pre"][k]:
            log(Event(day, site.index, k, PRESCREEN_FAIL, int(c["pre_reason"][k])))
        elif not c["consent"][k]:
            log(Event(day, site.index, k, NO_CONSENT, -1))
        else:
            st.pending += 1
            st.sim_events += 1
            env.process(_screening(env, st, site, k, c, slots))


def _episode(env, st, site, k, duration, slots, kind):
    if slots is not None:
        st.sim_events += 1
        with slots.request() as req:
            yield req
            if st.stopped:
                return False
            st.log.append(Event(env.now, site.index, k, kind, -1))
            st.sim_events += 1
            yield env.timeout(duration)
    else:
        st.log.append(Event(env.now, site.index, k, kind, -1))
        st.sim_events += 1
        yield env.timeout(duration)
    return not st.stopped


def _screening(env: simpy.Environment, st: _State, site: Site, k: int, c: dict, slots):
    if not (yield from _episode(env, st, site, k, c["duration"][k], slots, SCREEN_START)):
        return
    ok, reason = bool(c["ok"][k]), int(c["reason"][k])
    if not ok and c["rescreen"][k]:
        st.sim_events += 1
        yield env.timeout(c["delay"][k])
        if st.stopped:
            return
        if not (yield from _episode(env, st, site, k, c["duration2"][k], slots, RESCREEN)):
            return
        ok, reason = bool(c["ok2"][k]), int(c["reason2"][k])
    st.pending -= 1
    if not ok:
        st.log.append(Event(env.now, site.index, k, SCREEN_FAIL, reason))
    elif c["withdraw"][k]:
        st.log.append(Event(env.now, site.index, k, WITHDRAWN, -1))
    else:
        st.log.append(Event(env.now, site.index, k, ENROLLED, -1))
        st.enrolled += 1
        if st.enrolled >= st.target:
            # stop everywhere now; candidates still in screening stay pending
            _stop(st)


def _stop(st: _State) -> None:
    if not st.stopped:
        st.stopped = True
        st.done.succeed()


def simulate_recruitment(
    scenario, source: CandidateSource, seed: int, replicate: int, *, keep_events: bool = False
) -> tuple[ReplicateRecord, list[Site]]:
    """Run one replicate of the recruitment DES; returns its record and its drawn sites."""
    cfg: RecruitmentConfig = scenario.recruitment
    target = scenario.trial.target_enrolled
    horizon = cfg.horizon_days
    sites = draw_sites(cfg, seed, replicate)
    season = season_multiplier(cfg, scenario.trial.start_date, int(np.ceil(horizon)) + 1)

    env = simpy.Environment()
    st = _State(target)
    st.done = env.event()
    pools = []
    for site in sites:
        arrivals = arrival_days(site, season, horizon, site_stream(seed, replicate, "arrivals", site.index))
        pool = _Pool(source, cfg, seed, replicate, site.index)
        pools.append(pool)
        if arrivals.size:
            slots = None if site.capacity is None else simpy.Resource(env, capacity=site.capacity)
            env.process(_site_process(env, st, site, arrivals, pool, slots))
            st.sim_events += 1
    # at the horizon recruitment stops as at the target: whoever is in screening stays pending
    env.timeout(horizon).callbacks.append(lambda _ev: _stop(st))
    env.run(until=st.done)
    return _record(st, sites, pools, replicate, len(source.reason_ids), target, keep_events), sites


def _record(st: _State, sites: list[Site], pools: list[_Pool], replicate: int, n_reasons: int, target: int,
            keep_events: bool) -> ReplicateRecord:
    if st.log:
        day = np.fromiter((e.day for e in st.log), float, len(st.log))
        site = np.fromiter((e.site for e in st.log), np.int64, len(st.log))
        cand = np.fromiter((e.candidate for e in st.log), np.int64, len(st.log))
        kind = np.fromiter((e.kind for e in st.log), np.int64, len(st.log))
        reason = np.fromiter((e.reason for e in st.log), np.int64, len(st.log))
    else:
        day = np.empty(0)
        site = cand = kind = reason = np.empty(0, np.int64)
    counts = np.bincount(kind, minlength=len(KIND_NAMES))
    pre = kind == PRESCREEN_FAIL
    scr = kind == SCREEN_FAIL
    enr = np.flatnonzero(kind == ENROLLED)
    order = np.argsort(day[enr], kind="stable")
    enr = enr[order]
    enrol_bsa = np.array([pools[s].arr["bsa"][c] for s, c in zip(site[enr], cand[enr], strict=True)], float)
    consented = int(counts[ARRIVED] - counts[PRESCREEN_FAIL] - counts[NO_CONSENT])
    retests = 0
    for s_idx, pool in enumerate(pools):
        started = cand[(kind == SCREEN_START) & (site == s_idx)]
        if started.size:
            retests += int(pool.arr["retested"][started].sum())
    enrolled = int(counts[ENROLLED])
    act = np.array([np.nan if s.activation_day is None else s.activation_day for s in sites], float)
    return ReplicateRecord(
        replicate=replicate,
        candidates=int(counts[ARRIVED]),
        prescreen_failures=int(counts[PRESCREEN_FAIL]),
        no_consent=int(counts[NO_CONSENT]),
        consented=consented,
        screened=int(counts[SCREEN_START]),
        screenings=int(counts[SCREEN_START] + counts[RESCREEN]),
        retests=retests,
        rescreens=int(counts[RESCREEN]),
        screen_failures=int(counts[SCREEN_FAIL]),
        withdrawn=int(counts[WITHDRAWN]),
        enrolled=enrolled,
        pending=st.pending,
        prescreen_reasons=np.bincount(reason[pre], minlength=n_reasons),
        screen_reasons=np.bincount(reason[scr], minlength=n_reasons),
        enrol_day=day[enr],
        enrol_site=site[enr],
        enrol_bsa_m2=enrol_bsa,
        site_activation_day=act,
        site_enrolled=np.bincount(site[enr], minlength=len(sites)),
        time_to_target_day=float(day[enr][target - 1]) if enrolled >= target else float("nan"),
        sim_events=st.sim_events,
        events=tuple(st.log) if keep_events else None,
    )


def month_of(day: np.ndarray | float) -> np.ndarray | float:
    return np.asarray(day) / MONTH_DAYS
