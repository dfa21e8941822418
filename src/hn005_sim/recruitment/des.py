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
handle time: arrivals of consenting candidates, the screening slots, durations and the stop. Arrivals
that end at pre-screening or consent wait on nothing, so they are not simulated one by one but
logged after the run for every arrival before the stop (same trace, about a quarter of the simpy
events). Events are small immutable records, turned into arrays at the end.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any, NamedTuple

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT, Initialize

from hn005_sim.recruitment.candidates import CandidateBatch, CandidateSource, JudgeRequest, judge_many
from hn005_sim.recruitment.config import MONTH_DAYS, RecruitmentConfig
from hn005_sim.recruitment.seeding import generators
from hn005_sim.recruitment.sites import Site, arrival_days, draw_sites, season_multiplier, site_stream
from hn005_sim.rng import STREAMS

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
    enrol_traits: dict[str, np.ndarray] = field(default_factory=dict)  # candidates.TRAITS, (enrolled,) each
    enrol_covariates: dict[str, np.ndarray] = field(default_factory=dict)  # dosing covariates beyond BSA
    events: tuple[Event, ...] | None = field(default=None, repr=False)
    prescreen_unknown: int = 0  # candidates passing prescreen with a value not in the chart (chart review)


# the columns a consenting candidate's screening reads, in the order of `_screening`'s tuple
_FOLLOW = ("duration", "ok", "reason", "rescreen", "delay", "duration2", "ok2", "reason2", "withdraw")


class _Pool:
    """A site's candidates, drawn and judged in batches of `batch`.

    The batches the site certainly reaches are judged before the simulation, with every other site's
    (`_prejudge`: one evaluation of the criteria per round instead of two per batch); any further
    batch is drawn and judged when the site reaches it (`ensure`). Either way each batch is drawn
    from the site's streams in the same order, so the candidates and verdicts are the same. `n` counts
    the candidates of the batches the site has reached (what the run reports on), `drawn` those judged.
    """

    def __init__(self, source: CandidateSource, cfg: RecruitmentConfig, seed: int, replicate: int,
                 site: int | tuple[int, ...], chart=None, rngs=None):
        self.source = source
        self.cfg = cfg
        self.batch = cfg.candidate_batch
        # rngs: the site's population and screening streams, made already (`_seed`)
        self.rng_pop, self.rng_scr = rngs if rngs is not None else (
            site_stream(seed, replicate, "population", site), site_stream(seed, replicate, "screening", site))
        self.chart = chart  # eligibility.chart.SiteChart: what this site's charts hold at prescreen
        self.n = 0
        self.drawn = 0
        self.cols: dict[str, list[np.ndarray]] = {}
        self.arr: dict[str, np.ndarray] = {}
        self.consenting: list[list[int]] = []  # per batch, indices of candidates who consent
        self.follow: list[list[tuple]] = []  # per batch, their `_FOLLOW` values (Python scalars)
        self.scr: list[dict[str, np.ndarray]] = []  # per batch, the screening stream's draws
        self.requested = 0  # batches handed to the source (judged, or being judged by `_prejudge`)
        self.arrived: int | None = None  # the site's arrivals within the horizon, when known
        self.bound_days: dict[int, tuple] = {}  # `_stop_bound`'s per batch: (stage, days or None)

    def draw_screening(self) -> dict[str, np.ndarray]:
        """The screening stream's draws of the next batch (consent, durations, withdrawal, re-screen),
        in the order the batches are drawn (they come before the batch is judged, from their own stream)."""
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
        scr = {"consent": consent, "duration": duration, "withdraw": withdraw,
               "rescreen": rescreen, "delay": delay, "duration2": duration2}
        self.scr.append(scr)
        return scr

    def next_request(self) -> JudgeRequest:
        """The judge call of the next batch not handed to the source yet (its screening draws made
        if not yet)."""
        while len(self.scr) <= self.requested:
            self.draw_screening()
        j = self.requested
        scr = self.scr[j]
        self.requested += 1
        consent = scr["consent"]
        retest = consent & (scr["duration"] > self.cfg.lab_window_days.value)
        # the batch's candidates who can arrive (the site's last batch is cut by the horizon)
        rows = None if not JUDGED_TO_ARRIVALS or self.arrived is None else self.arrived - j * self.batch
        return JudgeRequest(self.rng_pop, self.batch, retest, consent & scr["rescreen"], self.chart,
                            rows if rows is not None and rows < self.batch else None)

    def add(self, judged: CandidateBatch) -> None:
        """Append the next batch, judged (from `next_request`)."""
        b = self.batch
        scr = self.scr[self.drawn // b]
        new = {
            "pre": judged.prescreen_pass, "pre_reason": judged.prescreen_reason,
            "ok": judged.screen_pass, "reason": judged.screen_reason,
            "ok2": judged.rescreen_pass, "reason2": judged.rescreen_reason,
            "retested": judged.retested, "bsa": judged.bsa_m2,
            "pre_unknown": (np.zeros(b, bool) if judged.prescreen_unknown is None
                            else judged.prescreen_unknown),
            **{f"trait:{k}": v for k, v in judged.traits.items()},
            **{f"cov:{k}": v for k, v in judged.covariates.items()},
            **scr,
        }
        for k, v in new.items():
            self.cols.setdefault(k, []).append(np.asarray(v))
        # the candidates who go on to screening: the only ones the simulation has to follow in time
        idx = np.flatnonzero(judged.prescreen_pass & scr["consent"])
        self.consenting.append((idx + self.drawn).tolist())
        # and what their screening needs, as Python values (one conversion per column and batch, not
        # a numpy scalar per candidate and value): `_screening`'s tuple, in `_FOLLOW` order
        self.follow.append(list(zip(*(np.asarray(new[key])[idx].tolist() for key in _FOLLOW), strict=True)))
        self.drawn += b

    def _grow(self) -> None:
        """Draw and judge the next batch on its own (a batch `_prejudge` did not judge)."""
        r = self.next_request()
        self.add(judge_many(self.source, [r])[0])
        self._concat()

    def _concat(self) -> None:
        self.arr = {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in self.cols.items()}

    def ensure(self, k: int) -> dict[str, np.ndarray]:
        """The columns, with candidate k's batch drawn; the site has reached that batch."""
        while k >= self.drawn:
            self._grow()
        self.n = max(self.n, (k // self.batch + 1) * self.batch)
        return self.arr


JUDGED_TO_ARRIVALS = True
"""A site's last batch (the one its arrivals to the horizon end in) is judged only as far as anything
can read it: its candidates who can arrive, and the later ones whose labs would be re-measured
(`candidates._rows_that_matter`); every candidate of the batch is still drawn, so each stream makes the
draws it made before. The others were judged and never read (only candidates who arrive are followed,
counted or recorded). False: every candidate of every batch judged, the path tests/recruitment/
test_judged_to_arrivals.py compares with."""


def _prejudge(source: CandidateSource, reps: list[_Replicate]) -> None:
    """Judge, before the simulation and all sites together, the batches the sites certainly reach.

    Every site with arrivals reaches its first batch (its process asks for it at day 0). A site asks
    for batch j once it has passed the last consenting candidate of batch j-1, so batch j is judged
    here only if that candidate arrives before a lower bound of the stop day: the horizon, or the
    earliest day by which `target` candidates could be enrolled (arrival plus screening time of every
    candidate who could still be enrolled: consenting, not withdrawing, and, once judged, passing
    pre-screening and not failing screening for good). Later batches are judged when a site reaches
    them (`_Pool.ensure`), as before. Judging a batch the site does not reach would change no output
    (`_Pool.n` counts reached batches) but would cost time: hence the bound.

    Rounds: a site's batch j+1 is drawn after its batch j's re-tested labs (the same stream), so a
    round judges at most one batch per site, every site's in one evaluation; the verdicts on re-tested
    labs of all the rounds are evaluated together at the end (`ScreenerSource.finish`). Several
    replicates (`simulate_recruitment_many`) are judged together the same way: their streams are
    their own, each replicate has its own stop-day bound."""
    staged = callable(getattr(source, "prescreen", None)) and callable(getattr(source, "finish", None))
    # every site of every replicate, as (replicate, site index)
    where = [(rep, i) for rep in reps for i in range(len(rep.pools))]
    for rep in reps:
        rep.need = [-(-a.size // p.batch) for a, p in zip(rep.arrivals_of, rep.pools, strict=True)]
        rep.items = [[] for _ in rep.pools]  # per site, its prescreened batches in order
        rep.ask = [0.0] * len(rep.pools)  # the day the site asks for its next batch
    while True:
        bound = {id(rep): _stop_bound(rep) if staged and any(rep.items) else np.inf for rep in reps}
        todo = [(rep, i) for rep, i in where
                if rep.pools[i].requested < rep.need[i]
                and (rep.pools[i].requested == 0 or rep.ask[i] < bound[id(rep)])]
        if not todo:
            blocked = any(rep.pools[i].requested < rep.need[i] and rep.ask[i] < rep.horizon
                          for rep, i in where)
            if not (staged and blocked and _finish(source, reps, where)):
                break
            continue  # the bound again, on the verdicts of the re-tested labs
        requests = [rep.pools[i].next_request() for rep, i in todo]
        if not staged:  # a source judged one call per batch (the funnel): the first batches only
            for (rep, i), judged in zip(todo, judge_many(source, requests), strict=True):
                rep.pools[i].add(judged)
            break
        for (rep, i), it in zip(todo, source.prescreen(requests), strict=True):
            pool, j = rep.pools[i], len(rep.items[i])
            rep.items[i].append(it)
            lo, n = j * pool.batch, rep.arrivals_of[i].size
            consenting = np.flatnonzero(it.pre & pool.scr[j]["consent"])
            consenting = consenting[consenting + lo < n]
            if consenting.size:
                rep.ask[i] = float(rep.clocks[i][lo + consenting[-1]])
    if staged:
        _finish(source, reps, where)
    for rep in reps:
        rep.items = None  # the frames: no longer needed
        for p in rep.pools:
            if p.drawn:
                p._concat()


def _finish(source, reps: list[_Replicate], where) -> bool:
    """The screening verdicts on re-tested labs of every batch prescreened and not finished, in one
    evaluation, the batches then added to their pools (in order); False when there were none."""
    flat = [(rep.pools[i], it) for rep, i in where
            for it in rep.items[i][rep.pools[i].drawn // rep.pools[i].batch:]]
    if not flat:
        return False
    for (pool, _), judged in zip(flat, source.finish([it for _, it in flat]), strict=True):
        pool.add(judged)
    return True


def _stop_bound(rep: _Replicate) -> float:
    """A lower bound of the day the replicate's recruitment stops: the horizon, or the target-th
    earliest day a candidate could be enrolled (no enrolment comes before arrival plus screening
    time)."""
    pools, items, arrivals_of, clocks, need = rep.pools, rep.items, rep.arrivals_of, rep.clocks, rep.need
    target, horizon = rep.target, rep.horizon
    days = []
    for i, pool in enumerate(pools):
        n, b = arrivals_of[i].size, pool.batch
        while len(pool.scr) < need[i]:  # the batches it may draw: their screening draws come first
            pool.draw_screening()
        cache = pool.bound_days
        for j in range(need[i]):
            # 2: judged to the end, 1: judged on the first labs, 0: not judged; a batch's days change
            # only with its stage, so they are computed again only then (rounds ask for it again)
            stage = 2 if j < pool.drawn // b else 1 if j < len(items[i]) else 0
            hit = cache.get(j)
            if hit is not None and hit[0] == stage:
                if hit[1] is not None:
                    days.append(hit[1])
                continue
            cache[j] = (stage, None)
            scr = pool.scr[j]
            could = scr["consent"] & ~scr["withdraw"]
            day = None
            if stage == 2:  # judged to the end: enrolled after one screening, or two
                ok, again = pool.cols["ok"][j], scr["rescreen"] & pool.cols["ok2"][j]
                could = could & pool.cols["pre"][j] & (ok | again)
                day = ok
            elif stage == 1:  # judged on the first labs: the re-tested may pass
                it = items[i][j]
                could = could & it.pre & (it.ok | it.retest | scr["rescreen"])
            k = np.flatnonzero(could[: n - j * b])
            if k.size:
                first = clocks[i][j * b + k] + scr["duration"][k]
                if day is not None:  # arrival + screening (+ delay + the second screening)
                    first = np.where(day[k], first, first + scr["delay"][k] + scr["duration2"][k])
                days.append(first)
                cache[j] = (stage, first)
    if target <= 0:
        return 0.0
    every = np.concatenate(days) if days else np.empty(0)
    if every.size < target:
        return float(horizon)
    return float(min(horizon, np.partition(every, target - 1)[target - 1]))


class _State:
    def __init__(self, target: int):
        self.target = target
        self.enrolled = 0
        self.stopped = False
        self.pending = 0  # consented, not yet decided
        self.sim_events = 0
        self.log: list[tuple] = []  # Event fields as plain tuples (cheaper to make), arrays at the end
        self.done: simpy.Event | None = None
        self.stop_day = np.inf  # when recruitment stopped (target or horizon)


def _site_process(env: simpy.Environment, st: _State, site: Site, arrivals: np.ndarray, clock: np.ndarray,
                  pool: _Pool, slots: _Slots | None):
    """Follows in time only the candidates who consent (pre-screen passed): the others are decided
    on arrival and nothing waits on them, so they are logged after the run (`_arrivals_log`) for
    every arrival before the stop. Saves a simpy event per such arrival (88% of them in the baseline).
    A batch's consenting candidates' days, clock times and screening values are Python scalars
    (converted per batch), so the loop indexes no numpy array."""
    n = arrivals.size
    b, s, log = pool.batch, site.index, st.log.append
    batch = 0
    while batch * b < n:
        pool.ensure(batch * b)
        ks = pool.consenting[batch]
        m = bisect_left(ks, n)  # ascending: those that arrive within the site's arrivals
        if m < len(ks):
            ks = ks[:m]
        if ks:
            # follow[batch] may run past the arrivals (the last batch): zip stops with ks
            for k, day, t, f in zip(ks, arrivals[ks].tolist(), clock[ks].tolist(), pool.follow[batch],
                                    strict=False):
                st.sim_events += 1
                yield _At(env, t)
                if st.stopped:
                    return
                log((day, s, k, ARRIVED, -1))
                st.pending += 1
                st.sim_events += 1
                _Proc(env, _screening(env, st, s, k, f, slots))
        batch += 1


def _site_clock(arrivals: np.ndarray) -> np.ndarray:
    """The simulation clock at each arrival as a process waiting `day - now` from arrival to arrival
    computes it (c_k = c_{k-1} + (d_k - c_{k-1}), which can be an ulp off d_k): kept so that results
    do not depend on which arrivals the simulation follows. Vectorised where the previous clock equals
    its day (nearly always), stepped one by one after the rare ulp misses."""
    d = np.asarray(arrivals, dtype=float)
    c = d.copy()  # c_0 = 0 + (d_0 - 0) = d_0
    c[1:] = d[:-1] + (d[1:] - d[:-1])
    for j in np.flatnonzero(c != d).tolist():
        while j + 1 < d.size and c[j] != d[j]:
            c[j + 1] = c[j] + (d[j + 1] - c[j])
            j += 1
    return c


class _At(simpy.events.Event):
    """An event processed at the absolute time `t` (>= now). simpy 4 schedules only by delay, and
    now + (t - now) can miss t by an ulp whatever the delay; this pushes onto the event queue exactly
    as `Environment.schedule` does (simpy 4.1: `_queue`, `_eid`), with the time given."""

    _value = None  # succeeded with no value, as a Timeout: class attributes, one store less each
    _ok = True

    def __init__(self, env: simpy.Environment, t: float):
        self.env = env
        self.callbacks = []
        heappush(env._queue, (t, NORMAL, next(env._eid), self))


class _Proc(simpy.Process):
    """simpy's Process, resumed with less ceremony: the same events (the Initialize scheduled at its
    creation, the process itself scheduled when its generator returns), the same callbacks in the same
    order. A step sends the event's value and registers on the next event; what the DES never does
    (a failed event, an event already processed) goes to simpy's own `_resume`, and an exception in a
    generator propagates at once (simpy would fail the process, then crash the run with it)."""

    def __init__(self, env: simpy.Environment, generator):
        self.env = env
        self.callbacks = []
        self._generator = generator
        # simpy's Initialize(env, self), its set-up inlined: resumes the process now, before the
        # events of the same time (URGENT)
        init = self._target = Initialize.__new__(Initialize)
        init.env, init.callbacks, init._value, init._ok = env, [self._resume], None, True
        heappush(env._queue, (env._now, URGENT, next(env._eid), init))

    def _resume(self, event: simpy.Event) -> None:
        if not event._ok:
            simpy.Process._resume(self, event)
            return
        env = self.env
        env._active_proc = self
        try:
            event = self._generator.send(event._value)
        except StopIteration as e:
            self._ok = True
            self._value = e.args[0] if e.args else None
            heappush(env._queue, (env._now, NORMAL, next(env._eid), self))  # env.schedule(self)
            event = None
        else:
            if event.callbacks is None:  # already processed: simpy goes on with its value
                simpy.Process._resume(self, event)
                return
            event.callbacks.append(self._resume)
        self._target = event
        env._active_proc = None


def _run_until(env: simpy.Environment, done: simpy.Event) -> None:
    """`env.run(until=done)` as simpy 4.1's `run` and `step` do it, in one loop: pop the next event,
    set the clock, run its callbacks, crash on a failure nobody handled, until `done` has been
    processed. The same events in the same order (and the same pushed at the end), without a method
    call and a try per event and the StopSimulation exception."""
    queue = env._queue
    while done.callbacks is not None:  # None once `done` has been processed
        if not queue:
            raise RuntimeError("no scheduled events left but recruitment did not stop")
        env._now, _, _, event = heappop(queue)
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            raise event._value
    # simpy's run stops in `done`'s callbacks and schedules `done` again (priority -1) with the
    # callbacks left: the environment is left as simpy leaves it (and its event counter too)
    done.callbacks = []
    heappush(queue, (env._now, -1, next(env._eid), done))


class _Slots:
    """A site's screening slots: a counting semaphore, first come first served, like a simpy
    Resource, but a free slot is taken without an event (the Resource schedules a request and a
    release event per screening)."""

    __slots__ = ("free", "waiting")

    def __init__(self, capacity: int):
        self.free = capacity
        self.waiting: deque[simpy.Event] = deque()

    def release(self) -> None:
        if self.waiting:
            self.waiting.popleft().succeed()  # the slot passes to the first in line
        else:
            self.free += 1


def _screening(env: simpy.Environment, st: _State, s: int, k: int, f: tuple, slots):
    """Candidate k of site s from consent to a decision: a screening episode (waiting for a slot when
    the site has a capacity), if it fails and the candidate is screened again a delay and a second
    episode, then the decision. `f`: the candidate's `_FOLLOW` values. A duration is scheduled as
    simpy's Timeout schedules it (at now + duration: `_At`, the same queue entry without the
    Timeout's set-up)."""
    duration, ok, reason, rescreen, delay, duration2, ok2, reason2, withdraw = f
    log = st.log.append
    kind = SCREEN_START
    while True:  # one episode, or two
        if slots is not None:
            if slots.free:
                slots.free -= 1
            else:
                st.sim_events += 1
                turn = env.event()
                slots.waiting.append(turn)
                yield turn
                if st.stopped:
                    slots.release()
                    return
            log((env._now, s, k, kind, -1))
            st.sim_events += 1
            yield _At(env, env._now + duration)
            slots.release()
        else:
            log((env._now, s, k, kind, -1))
            st.sim_events += 1
            yield _At(env, env._now + duration)
        if st.stopped:
            return
        if ok or not rescreen or kind == RESCREEN:
            break
        st.sim_events += 1
        yield _At(env, env._now + delay)
        if st.stopped:
            return
        kind, duration, ok, reason = RESCREEN, duration2, ok2, reason2
    st.pending -= 1
    if not ok:
        log((env._now, s, k, SCREEN_FAIL, reason))
    elif withdraw:
        log((env._now, s, k, WITHDRAWN, -1))
    else:
        log((env._now, s, k, ENROLLED, -1))
        st.enrolled += 1
        if st.enrolled >= st.target:
            # stop everywhere now; candidates still in screening stay pending
            _stop(st, env._now)


STEPPED = True
"""Follow the candidates in time with `_SiteSteps` and `_ScreeningSteps` (callbacks; the default) instead of
the generator processes `_site_process` and `_screening` run by `_Proc`: the same queue entries
(time, priority, event counter) pushed in the same order, the same log; tests/recruitment/
test_des_steps.py compares the two paths."""


class _SiteSteps:
    """`_site_process` as callbacks on its own queue entries: the object is its event (one pending at a
    time: its Initialize, then each consenting candidate's arrival, then its end), pushed exactly where
    `_Proc` pushes the process's events, so that `_run_until` processes the same entries in the same
    order. Saves `_Proc._resume` and a generator resumption per event."""

    __slots__ = ("b", "batch", "callbacks", "cur", "env", "n", "pool", "s", "slots", "st", "times", "todo")
    _ok = True  # processed as a succeeded event (`_run_until` reads these)
    _value = None

    def __init__(self, env: simpy.Environment, st: _State, site: Site, arrivals: np.ndarray,
                 clock: np.ndarray, pool: _Pool, slots: _Slots | None):
        self.env, self.st, self.s, self.pool, self.slots = env, st, site.index, pool, slots
        self.times, self.n, self.b = (arrivals, clock), arrivals.size, pool.batch
        self.batch, self.todo, self.cur = 0, None, None
        # the process's Initialize: resumes it now, before the events of the same time (URGENT)
        self.callbacks = [self._advance]
        heappush(env._queue, (env._now, URGENT, next(env._eid), self))

    def _advance(self, _event=None) -> None:
        """Schedule the next consenting candidate's arrival (drawing the site's next batch when it
        gets there, as `_site_process` does), or end."""
        todo = self.todo
        while True:
            if todo is not None:
                for item in todo:
                    self.cur = item
                    self.st.sim_events += 1
                    self.callbacks = [self._arrive]
                    env = self.env
                    heappush(env._queue, (item[2], NORMAL, next(env._eid), self))
                    return
            batch, b, n = self.batch, self.b, self.n
            if batch * b >= n:
                break
            pool = self.pool
            pool.ensure(batch * b)
            ks = pool.consenting[batch]
            m = bisect_left(ks, n)  # ascending: those that arrive within the site's arrivals
            if m < len(ks):
                ks = ks[:m]
            arrivals, clock = self.times
            todo = self.todo = iter(zip(ks, arrivals[ks].tolist(), clock[ks].tolist(), pool.follow[batch],
                                        strict=False)) if ks else None
            self.batch = batch + 1
        self._end()

    def _arrive(self, _event) -> None:
        st = self.st
        if st.stopped:
            self._end()
            return
        k, day, _t, f = self.cur
        st.log.append((day, self.s, k, ARRIVED, -1))
        st.pending += 1
        st.sim_events += 1
        _ScreeningSteps(self.env, st, self.s, k, f, self.slots)
        self._advance()

    def _end(self) -> None:
        """The process's end: its own event, processed with nobody waiting on it."""
        env = self.env
        self.callbacks = []
        heappush(env._queue, (env._now, NORMAL, next(env._eid), self))


class _ScreeningSteps:
    """`_screening` as callbacks, its events its own as `_SiteSteps`'s: Initialize, the wait for a slot
    (`succeed`, called by `_Slots.release`, pushes it as simpy's Event.succeed does), the screening
    durations and the re-screen delay, the end."""

    __slots__ = ("callbacks", "duration", "env", "f", "k", "kind", "ok", "reason", "s", "slots", "st")
    _ok = True
    _value = None

    def __init__(self, env: simpy.Environment, st: _State, s: int, k: int, f: tuple, slots: _Slots | None):
        self.env, self.st, self.s, self.k, self.f, self.slots = env, st, s, k, f, slots
        self.kind, self.duration, self.ok, self.reason = SCREEN_START, f[0], f[1], f[2]
        self.callbacks = [self._begin]
        heappush(env._queue, (env._now, URGENT, next(env._eid), self))

    def _begin(self, _event=None) -> None:
        """An episode: a free slot (or none needed) and the screening starts now, else the candidate
        waits in line for one."""
        slots, st = self.slots, self.st
        if slots is not None:
            if slots.free:
                slots.free -= 1
            else:
                st.sim_events += 1
                self.callbacks = [self._granted]
                slots.waiting.append(self)
                return
        env = self.env
        st.log.append((env._now, self.s, self.k, self.kind, -1))
        st.sim_events += 1
        self.callbacks = [self._screened]
        heappush(env._queue, (env._now + self.duration, NORMAL, next(env._eid), self))

    def succeed(self) -> None:
        """A slot passes to this candidate: scheduled now, as simpy's Event.succeed schedules."""
        env = self.env
        heappush(env._queue, (env._now, NORMAL, next(env._eid), self))

    def _granted(self, _event) -> None:
        st, env = self.st, self.env
        if st.stopped:
            self.slots.release()
            self.callbacks = []  # the end
            heappush(env._queue, (env._now, NORMAL, next(env._eid), self))
            return
        st.log.append((env._now, self.s, self.k, self.kind, -1))
        st.sim_events += 1
        self.callbacks = [self._screened]
        heappush(env._queue, (env._now + self.duration, NORMAL, next(env._eid), self))

    def _screened(self, _event) -> None:
        """The episode's end: the decision, or the delay before the candidate is screened again; the
        process's end event pushed last, as the generator's return pushes it."""
        if self.slots is not None:
            self.slots.release()
        st, env, f = self.st, self.env, self.f
        if not st.stopped:
            if not (self.ok or not f[3] or self.kind == RESCREEN):
                st.sim_events += 1
                self.callbacks = [self._again]
                heappush(env._queue, (env._now + f[4], NORMAL, next(env._eid), self))
                return
            st.pending -= 1
            if not self.ok:
                st.log.append((env._now, self.s, self.k, SCREEN_FAIL, self.reason))
            elif f[8]:
                st.log.append((env._now, self.s, self.k, WITHDRAWN, -1))
            else:
                st.log.append((env._now, self.s, self.k, ENROLLED, -1))
                st.enrolled += 1
                if st.enrolled >= st.target:
                    # stop everywhere now; candidates still in screening stay pending
                    _stop(st, env._now)
        self.callbacks = []  # the end
        heappush(env._queue, (env._now, NORMAL, next(env._eid), self))

    def _again(self, _event) -> None:
        if self.st.stopped:
            env = self.env
            self.callbacks = []  # the end
            heappush(env._queue, (env._now, NORMAL, next(env._eid), self))
            return
        f = self.f
        self.kind, self.duration, self.ok, self.reason = RESCREEN, f[5], f[6], f[7]
        self._begin()


def _stop(st: _State, now: float) -> None:
    if not st.stopped:
        st.stopped = True
        st.stop_day = now
        st.done.succeed()


_SEASONS: dict[tuple[int, object, int], tuple[RecruitmentConfig, np.ndarray]] = {}


def _season(cfg: RecruitmentConfig, start, n_days: int) -> np.ndarray:
    """season_multiplier, computed once per (config, start, days): it is the same for every replicate."""
    key = (id(cfg), start, n_days)
    hit = _SEASONS.get(key)
    if hit is None or hit[0] is not cfg:  # the config is kept in the entry, so its id is not reused
        if len(_SEASONS) > 64:
            _SEASONS.clear()
        mult = season_multiplier(cfg, start, n_days)
        mult.flags.writeable = False  # shared by every replicate
        hit = _SEASONS[key] = (cfg, mult)
    return hit[1]


@dataclass
class _Replicate:
    """One replicate between its set-up and its run: sites, arrivals, pools and the simpy processes."""

    replicate: int
    target: int
    horizon: float
    sites: list[Site]
    env: simpy.Environment
    st: _State
    pools: list[_Pool]
    arrivals_of: list[np.ndarray]
    clocks: list[np.ndarray]
    need: list[int] | None = None
    items: list[list] | None = None
    ask: list[float] | None = None


_SITE_STREAMS = ("arrivals", "population", "screening")


def _seed(source: CandidateSource, seed: int, replicates: list[tuple[int, list[Site]]]) -> list[tuple]:
    """Per (replicate, sites): its sites' arrival, population and screening streams (3 per site, in
    that order) and, when the source has chart generators (`chart_keys`), each site's, all seeded in
    one computation (recruitment/seeding.py: the generators `site_stream` and the chart model make)."""
    chart_keys = getattr(source, "chart_keys", None)
    keys, shape = [], []
    for replicate, sites in replicates:
        for site in sites:
            keys += [(replicate, STREAMS.index(name), *site.stream_key) for name in _SITE_STREAMS]
        per_site = [chart_keys(replicate, site) if chart_keys is not None else [] for site in sites]
        for k in per_site:
            keys += k
        shape.append((len(sites), [len(k) for k in per_site]))
    gens = iter(generators(seed, keys))
    out = []
    for n_sites, per_site in shape:
        streams = [next(gens) for _ in range(len(_SITE_STREAMS) * n_sites)]
        charts = [[next(gens) for _ in range(n)] for n in per_site]
        out.append((streams, charts if chart_keys is not None else None))
    return out


def _set_up(scenario, source: CandidateSource, seed: int, replicate: int,
            sites: list[Site] | None, seeded: tuple | None = None) -> _Replicate:
    """One replicate before its judging and run; `seeded`: its streams from `_seed` (made if None)."""
    cfg: RecruitmentConfig = scenario.recruitment
    target = scenario.trial.target_enrolled
    horizon = cfg.horizon_days
    if sites is None:
        sites = draw_sites(cfg, seed, replicate)
    season = _season(cfg, scenario.trial.start_date, int(np.ceil(horizon)) + 1)

    env = simpy.Environment()
    st = _State(target)
    st.done = env.event()
    pools = []
    arrivals_of, clocks = [], []
    # every site's arrival, population and screening streams, and its chart's, seeded together
    streams, chart_gens = seeded if seeded is not None else _seed(source, seed, [(replicate, sites)])[0]
    site_charts = getattr(source, "site_charts", None)
    site_chart = getattr(source, "site_chart", None)
    if chart_gens is not None and site_charts is not None:
        charts = site_charts(seed, replicate, sites, chart_gens)
    else:
        charts = [site_chart(seed, replicate, site) if site_chart is not None else None for site in sites]
    for i, site in enumerate(sites):
        rng_arrivals, rng_pop, rng_scr = streams[3 * i:3 * i + 3]
        arrivals = arrival_days(site, season, horizon, rng_arrivals)
        arrivals_of.append(arrivals)
        clocks.append(_site_clock(arrivals))
        pool = _Pool(source, cfg, seed, replicate, site.stream_key, charts[i], (rng_pop, rng_scr))
        pool.arrived = arrivals.size
        pools.append(pool)
        if arrivals.size:
            slots = None if site.capacity is None else _Slots(site.capacity)
            if STEPPED:
                _SiteSteps(env, st, site, arrivals, clocks[-1], pool, slots)
            else:
                _Proc(env, _site_process(env, st, site, arrivals, clocks[-1], pool, slots))
            st.sim_events += 1
    return _Replicate(replicate, target, horizon, sites, env, st, pools, arrivals_of, clocks)


def _run(rep: _Replicate, n_reasons: int, keep_events: bool) -> tuple[ReplicateRecord, list[Site]]:
    env, st, horizon = rep.env, rep.st, rep.horizon
    # at the horizon recruitment stops as at the target: whoever is in screening stays pending
    env.timeout(horizon).callbacks.append(lambda _ev: _stop(st, horizon))
    _run_until(env, st.done)
    if not keep_events and COUNTED:
        return _counted_record(st, rep, n_reasons), rep.sites
    log = _arrivals_log(st, rep.pools, rep.arrivals_of, rep.clocks)
    rec = _record(st, log, rep.sites, rep.pools, rep.replicate, n_reasons, rep.target, keep_events)
    return rec, rep.sites


def simulate_recruitment(
    scenario, source: CandidateSource, seed: int, replicate: int, *, keep_events: bool = False,
    sites: list[Site] | None = None,
) -> tuple[ReplicateRecord, list[Site]]:
    """Run one replicate of the recruitment DES; returns its record and its drawn sites.

    `sites` replaces the sites drawn from the config (`draw_sites`), e.g. a running trial's sites with
    their observed opening and posterior rates (recruitment/forecast_des.py); their `index` must be
    their position in the list. None (the default) draws them as always.
    """
    rep = _set_up(scenario, source, seed, replicate, sites)
    _prejudge(source, [rep])
    return _run(rep, len(source.reason_ids), keep_events)


JUDGED_TOGETHER = 50
"""Replicates at most whose candidates `simulate_recruitment_many` judges together (a worker's task:
montecarlo.run_batch), while their drawn candidates (about 0.4 MB a batch of 1,024) wait for the
round's one evaluation; `JUDGED_SITES` bounds the group by its sites. Measured before a round's
batches were drawn as one frame (CPU per baseline replicate, medians of 5 interleaved rounds, under
load): 5 together 27.3 ms, 10 21.9 ms, 20 23.8 ms; 50 24.5 ms against 20.7 ms for 10; after (phase 3,
7 interleaved rounds of 40 replicates, load 8): 10 together 15.5 ms, 20 12.7 ms, 40 11.9 ms."""

JUDGED_SITES = 130
"""Sites at most in a group judged together (at least one replicate): 50 baseline replicates (one site
each), 10 of network_south_china (13 sites), as before the bound by replicates was raised from 10 to
50, so a network holds no more candidates in memory than it did (10 such replicates together cost
53.4 ms a replicate, 6 together 58.5 ms: 5 interleaved rounds, load 8)."""


def _groups(replicates: list[int], sites_of: list[list[Site]], together: int, sites: int) -> list[range]:
    """Consecutive groups of positions: at most `together` replicates and `sites` sites a group (a
    replicate alone may have more)."""
    out, lo, n_sites = [], 0, 0
    for i, s in enumerate(sites_of):
        if i > lo and (i - lo >= together or n_sites + len(s) > sites):
            out.append(range(lo, i))
            lo, n_sites = i, 0
        n_sites += len(s)
    if lo < len(replicates):
        out.append(range(lo, len(replicates)))
    return out


def simulate_recruitment_many(
    scenario, source: CandidateSource, seed: int, replicates, *, keep_events: bool = False,
    together: int = JUDGED_TOGETHER, sites_together: int = JUDGED_SITES,
) -> list[tuple[ReplicateRecord, list[Site]]]:
    """`simulate_recruitment` of each replicate, the same records, with the candidates of up to
    `together` replicates and `sites_together` sites judged together before their simulations run
    (`_prejudge`)."""
    replicates = list(replicates)
    all_sites = [draw_sites(scenario.recruitment, seed, r) for r in replicates]
    out = []
    for grp in _groups(replicates, all_sites, max(1, together), max(1, sites_together)):
        group, sites_of = [replicates[i] for i in grp], [all_sites[i] for i in grp]
        seeded = _seed(source, seed, list(zip(group, sites_of, strict=True)))  # one seeding for the group
        reps = [_set_up(scenario, source, seed, r, sites, g)
                for r, sites, g in zip(group, sites_of, seeded, strict=True)]
        _prejudge(source, reps)
        out.extend(_run(rep, len(source.reason_ids), keep_events) for rep in reps)
    return out


def _arrivals_log(st: _State, pools: list[_Pool], arrivals_of: list[np.ndarray],
                  clocks: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The whole event trace as arrays (day, site, candidate, kind, reason), in the order the events
    happen: the simulated events, plus arrival and decision of every candidate who failed pre-screening
    or did not consent and arrived before the stop (a pair per candidate, at the arrival day)."""
    parts = []
    if st.log:
        fields = list(zip(*st.log, strict=True))  # column by column: one conversion each
        ints = np.array(fields[1:], dtype=np.int64)
        sim = (np.array(fields[0], dtype=float), *ints)
        # simulated events happen at the clock time; an arrival is logged with its exact day
        when = sim[0].copy()
        for s_idx in np.unique(sim[1][sim[3] == ARRIVED]):
            rows = np.flatnonzero((sim[3] == ARRIVED) & (sim[1] == s_idx))
            when[rows] = clocks[s_idx][sim[2][rows]]
        parts.append((when, *sim))
    for s_idx, (pool, arrivals) in enumerate(zip(pools, arrivals_of, strict=True)):
        # arrivals strictly before the stop (consenting ones are in the simulated log already)
        upto = min(int(np.searchsorted(arrivals, st.stop_day, side="left")), pool.n)
        if not upto:
            continue
        pre = pool.arr["pre"][:upto]
        k = np.flatnonzero(~(pre & pool.arr["consent"][:upto]))
        m = k.size
        kind = np.where(pre[k], NO_CONSENT, PRESCREEN_FAIL)
        reason = np.where(pre[k], -1, pool.arr["pre_reason"][k])
        # interleaved: arrival, then its decision, for each candidate
        parts.append((np.repeat(clocks[s_idx][k], 2), np.repeat(arrivals[k], 2),
                      np.full(2 * m, s_idx, np.int64), np.repeat(k, 2).astype(np.int64),
                      np.stack([np.full(m, ARRIVED), kind], axis=1).ravel().astype(np.int64),
                      np.stack([np.full(m, -1), reason], axis=1).ravel().astype(np.int64)))
    if not parts:
        return np.empty(0), *(np.empty(0, np.int64) for _ in range(4))
    cols = tuple(np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.argsort(cols[0], kind="stable")
    return tuple(c[order] for c in cols[1:])


def _record(st: _State, log: tuple[np.ndarray, ...], sites: list[Site], pools: list[_Pool], replicate: int,
            n_reasons: int, target: int, keep_events: bool) -> ReplicateRecord:
    day, site, cand, kind, reason = log
    counts = np.bincount(kind, minlength=len(KIND_NAMES))
    retests = 0
    arrived = kind == ARRIVED
    unknown = sum(int(pool.arr["pre_unknown"][cand[arrived & (site == s_idx)]].sum())
                  for s_idx, pool in enumerate(pools) if pool.n)
    for s_idx, pool in enumerate(pools):
        started = cand[(kind == SCREEN_START) & (site == s_idx)]
        if started.size:
            retests += int(pool.arr["retested"][started].sum())
    events = tuple(map(Event._make, zip(day.tolist(), site.tolist(), cand.tolist(), kind.tolist(),
                                        reason.tolist(), strict=True))) if keep_events else None
    return _assembled(st, log, counts, sites, pools, replicate, target, retests, unknown,
                      np.bincount(reason[kind == PRESCREEN_FAIL], minlength=n_reasons), n_reasons, events)


def _assembled(st: _State, log: tuple[np.ndarray, ...], counts: np.ndarray, sites: list[Site],
               pools: list[_Pool], replicate: int, target: int, retests: int, unknown: int,
               prescreen_reasons: np.ndarray, n_reasons: int, events: tuple | None) -> ReplicateRecord:
    """The record from the simulated log (day, site, candidate, kind, reason: at least every
    simulated entry, in time order) and the counts `_record` and `_counted_record` each find their own
    way (`counts` by kind, candidates decided on arrival included): the enrolled in enrolment order
    with their pool columns, the screening failures' reasons, the figures per site."""
    day, site, cand, kind, reason = log
    enr = np.flatnonzero(kind == ENROLLED)
    enr = enr[np.argsort(day[enr], kind="stable")]
    # per site of the enrolled: its rows among them and their candidates (found once for every column)
    enr_site, enr_cand = site[enr], cand[enr]
    groups = [(int(s), mask, enr_cand[mask]) for s in np.unique(enr_site).tolist()
              for mask in (enr_site == s,)]

    def enrolled(key: str) -> np.ndarray:
        """Column `key` of the pools for the enrolled, in enrolment order (one fancy index per site)."""
        dtype = next(p.arr[key].dtype for p in pools if key in p.arr)
        if len(groups) == 1:  # one site: its candidates in enrolment order, as the copy below gives
            s, _, rows = groups[0]
            return pools[s].arr[key][rows].astype(dtype, copy=False)
        out = np.empty(enr.size, dtype)
        for s, mask, rows in groups:
            out[mask] = pools[s].arr[key][rows]
        return out

    names = dict.fromkeys(k for p in pools for k in p.arr if k.startswith("trait:"))
    covs = dict.fromkeys(k for p in pools for k in p.arr if k.startswith("cov:"))
    n_enrolled = int(counts[ENROLLED])
    return ReplicateRecord(
        replicate=replicate,
        candidates=int(counts[ARRIVED]),
        prescreen_failures=int(counts[PRESCREEN_FAIL]),
        no_consent=int(counts[NO_CONSENT]),
        consented=int(counts[ARRIVED] - counts[PRESCREEN_FAIL] - counts[NO_CONSENT]),
        screened=int(counts[SCREEN_START]),
        screenings=int(counts[SCREEN_START] + counts[RESCREEN]),
        retests=retests,
        rescreens=int(counts[RESCREEN]),
        screen_failures=int(counts[SCREEN_FAIL]),
        withdrawn=int(counts[WITHDRAWN]),
        enrolled=n_enrolled,
        pending=st.pending,
        prescreen_reasons=prescreen_reasons,
        screen_reasons=np.bincount(reason[kind == SCREEN_FAIL], minlength=n_reasons),
        enrol_day=day[enr],
        enrol_site=enr_site,
        enrol_bsa_m2=enrolled("bsa").astype(float) if enr.size else np.zeros(0),
        enrol_traits={k[len("trait:"):]: enrolled(k) for k in names},
        enrol_covariates={k[len("cov:"):]: enrolled(k).astype(float) for k in covs} if enr.size else {},
        site_activation_day=np.array([np.nan if s.activation_day is None else s.activation_day
                                      for s in sites], float),
        site_enrolled=np.bincount(enr_site, minlength=len(sites)),
        time_to_target_day=float(day[enr][target - 1]) if n_enrolled >= target else float("nan"),
        sim_events=st.sim_events,
        prescreen_unknown=unknown,
        events=events,
    )

COUNTED = True
"""Without `keep_events`, build a replicate's record from the simulated events and each site's decided
arrivals directly (`_counted_record`) instead of merging them into the whole event trace, sorted by
time, and reading the record off it (`_arrivals_log` then `_record`): every figure of the record but
the trace itself is a count, a sum or the enrolled in the order they enrolled, which the trace's order
does not change. tests/recruitment/test_counted_record.py compares the two records field by field."""


def _counted_record(st: _State, rep: _Replicate, n_reasons: int) -> ReplicateRecord:
    """`_record(st, _arrivals_log(...), ...)` without the trace (keep_events False): the simulated
    events' columns from the log, and per site the candidates who arrived before the stop and were
    decided on arrival (failed pre-screening or did not consent: `_arrivals_log`'s pairs), counted
    rather than interleaved and sorted. The enrolled are the log's ENROLLED entries in log order, the
    order the trace has them in (the log is in time order), then ordered by day as `_record` orders
    them."""
    pools, sites, target = rep.pools, rep.sites, rep.target
    if st.log:
        fields = list(zip(*st.log, strict=True))
        day = np.array(fields[0], dtype=float)
        site, cand, kind, reason = np.array(fields[1:], dtype=np.int64)
    else:
        day = np.empty(0)
        site = cand = kind = reason = np.empty(0, np.int64)
    counts = np.bincount(kind, minlength=len(KIND_NAMES))
    decided = prescreen_failed = unknown = retests = 0
    pre_reasons = []
    for s_idx, (pool, arrivals) in enumerate(zip(pools, rep.arrivals_of, strict=True)):
        if not pool.n:
            continue
        arr = pool.arr
        # arrivals strictly before the stop: the consenting ones are in the log, the others decided
        upto = min(int(np.searchsorted(arrivals, st.stop_day, side="left")), pool.n)
        mine = site == s_idx
        arrived_sim = cand[mine & (kind == ARRIVED)]
        k = np.flatnonzero(~(arr["pre"][:upto] & arr["consent"][:upto])) if upto else np.empty(0, np.int64)
        failed = k[~arr["pre"][k]]
        decided += k.size
        prescreen_failed += failed.size
        pre_reasons.append(arr["pre_reason"][failed])
        unknown += int(arr["pre_unknown"][arrived_sim].sum()) + int(arr["pre_unknown"][k].sum())
        started = cand[mine & (kind == SCREEN_START)]
        if started.size:
            retests += int(arr["retested"][started].sum())
    counts[ARRIVED] += decided
    counts[PRESCREEN_FAIL] += prescreen_failed
    counts[NO_CONSENT] += decided - prescreen_failed
    reasons = (np.concatenate(pre_reasons) if len(pre_reasons) > 1 else pre_reasons[0]) if pre_reasons \
        else np.empty(0, np.int64)
    prescreen_reasons = np.bincount(reasons.astype(np.int64, copy=False), minlength=n_reasons)
    return _assembled(st, (day, site, cand, kind, reason), counts, sites, pools, rep.replicate, target,
                      retests, unknown, prescreen_reasons, n_reasons, None)


def month_of(day: np.ndarray | float) -> np.ndarray | float:
    return np.asarray(day) / MONTH_DAYS
