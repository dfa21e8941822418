"""Monte Carlo: replicates in parallel, aggregated as they come, identical whatever the executor.

- Every replicate draws from its own SeedSequence (hn005_sim.rng), so its result depends only on
  (scenario, seed, replicate).
- Tasks are batches of replicates, run inline (jobs=1), on a local process pool, on any
  `concurrent.futures.Executor`, or on dask.distributed (`dask-local[:WORKERS]`, `dask://HOST:PORT`).
- Results are folded into the aggregate in replicate order (out-of-order batches wait in a buffer
  bounded by the submission window), so sums and histograms are bit-identical for any --jobs.
- The aggregate's memory does not grow with replicates: integer histograms of enrolled per month
  (bounded by the target, so their quantiles are exact), of screened counts and of failures per
  criterion; the only per-replicate column kept is the time to target (8 bytes per replicate), which
  `time_to_target.csv` lists by contract.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import hashlib
import importlib
import math
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hn005_sim import rng as rngmod
from hn005_sim.recruitment.candidates import CandidateSource, candidate_source
from hn005_sim.recruitment.config import MONTH_DAYS
from hn005_sim.recruitment.des import ReplicateRecord, simulate_recruitment, simulate_recruitment_many
from hn005_sim.scenario.errors import ConfigError

QUANTILES = (0.025, 0.10, 0.25, 0.50, 0.75, 0.90, 0.975)
RATE_BINS = 10_000  # screen-failure-rate histogram: quantiles to within 1/RATE_BINS
AGE_BINS_PER_YEAR = 10  # enrolled ages in 0.1-year bins: quantiles to within 0.1 year
AGE_BINS = 120 * AGE_BINS_PER_YEAR


# ---------------------------------------------------------------------------------------------------
# quantiles from histograms (numpy's default "linear" method, on the values the histogram stands for)


def hist_quantile(counts: np.ndarray, q: float, values: np.ndarray | None = None) -> float:
    """Quantile q of the multiset where value v occurs counts[v] times (or values[i] counts[i] times).

    Same definition as `np.quantile(x, q)` (linear interpolation between order statistics at
    position (n-1)q), so it is exact for integer data.
    """
    counts = np.asarray(counts)
    n = int(counts.sum())
    if n == 0:
        return math.nan
    vals = np.arange(counts.size, dtype=float) if values is None else np.asarray(values, float)
    cum = np.cumsum(counts)
    h = (n - 1) * q
    lo = math.floor(h)
    x_lo = vals[np.searchsorted(cum, lo, side="right")]
    if h == lo:
        return float(x_lo)
    x_hi = vals[np.searchsorted(cum, lo + 1, side="right")]
    return float(x_lo + (h - lo) * (x_hi - x_lo))


class IntHistogram:
    """Counts of non-negative integers; grows with the largest value seen, not with the count."""

    def __init__(self, size: int = 16):
        self.counts = np.zeros(max(size, 1), np.int64)
        self.total = 0
        self.sum = 0

    def add(self, value: int) -> None:
        if value >= self.counts.size:
            grown = np.zeros(max(value + 1, 2 * self.counts.size), np.int64)
            grown[: self.counts.size] = self.counts
            self.counts = grown
        self.counts[value] += 1
        self.total += 1
        self.sum += int(value)

    def quantile(self, q: float) -> float:
        return hist_quantile(self.counts, q)

    def mean(self) -> float:
        return self.sum / self.total if self.total else math.nan


class IntHistogramRows:
    """`rows` IntHistograms in one array, all added to at once: `add(values)` counts values[i] in row i.

    For the failures per criterion (66 of them at each stage in the baseline): one fancy-index increment
    per replicate instead of 2 x 66 `IntHistogram.add` calls (a quarter of the parent's fold). `row(i)`
    is the IntHistogram of row i, with the same counts, total and sum."""

    def __init__(self, rows: int, size: int = 16):
        self.counts = np.zeros((rows, max(size, 1)), np.int64)
        self.total = 0
        self.sums = np.zeros(rows, np.int64)
        self._rows = np.arange(rows)

    def __len__(self) -> int:
        return self.counts.shape[0]

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.int64)
        top = int(values.max()) if values.size else 0
        if top >= self.counts.shape[1]:
            grown = np.zeros((self.counts.shape[0], max(top + 1, 2 * self.counts.shape[1])), np.int64)
            grown[:, : self.counts.shape[1]] = self.counts
            self.counts = grown
        self.counts[self._rows, values] += 1
        self.total += 1
        self.sums += values

    def row(self, i: int) -> IntHistogram:
        h = IntHistogram()
        h.counts, h.total, h.sum = self.counts[i], self.total, int(self.sums[i])
        return h


def _q(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


# ---------------------------------------------------------------------------------------------------
# the aggregate


@dataclass(frozen=True)
class RunMeta:
    scenario_name: str
    replicates: int
    seed: int
    target: int
    deadline_months: float
    horizon_months: float
    months: int
    site_names: tuple[str, ...]
    site_regions: tuple[str, ...]
    reason_ids: tuple[str, ...]
    reason_stages: tuple[str, ...]


class Aggregate:
    """Streaming summary of replicates; `add` must be called in replicate order."""

    FUNNEL = ("candidates", "prescreen_failures", "no_consent", "consented", "screened", "screenings",
              "retests", "rescreens", "screen_failures", "withdrawn", "enrolled", "pending",
              "prescreen_unknown")

    def __init__(self, meta: RunMeta, supply: Any = None):
        self.meta = meta
        m, t, s, k = meta.months, meta.target, len(meta.site_names), len(meta.reason_ids)
        self.n = 0
        self.next_replicate = 0
        self.curve = np.zeros((m + 1, t + 1), np.int64)  # [month, enrolled] -> replicates
        self.by_deadline = np.zeros(t + 1, np.int64)
        self.reached_by_deadline = 0
        self.ttt_day = np.full(meta.replicates, np.nan)
        self.screened = IntHistogram()
        self.fail_rate = np.zeros(RATE_BINS + 1, np.int64)
        self.fail_rate_sum = 0.0
        self.funnel = dict.fromkeys(self.FUNNEL, 0)
        self.pre_reasons = IntHistogramRows(k)
        self.scr_reasons = IntHistogramRows(k)
        self.no_consent = IntHistogram()
        self.withdrawn = IntHistogram()
        self.site_act_sum = np.zeros(s)
        self.site_act_n = np.zeros(s, np.int64)
        self.site_enrolled = np.zeros((s, t + 1), np.int64)
        self.site_zero = np.zeros(s, np.int64)
        self.sim_events = 0
        self.supply = supply
        # enrolled patients' baseline (recruitment.candidates.TRAITS): counts, and age in 0.1-year bins
        self.enrolled_total = 0
        self.trait_true: dict[str, int] = {}
        self.age_bins = np.zeros(AGE_BINS, np.int64)
        self._month_days = np.arange(m + 1) * MONTH_DAYS
        self._deadline_day = meta.deadline_months * MONTH_DAYS

    def add(self, rec: ReplicateRecord) -> None:
        if rec.replicate != self.next_replicate:
            raise ValueError(f"replicate {rec.replicate} added out of order (expected {self.next_replicate})")
        self.next_replicate += 1
        self.n += 1
        t = self.meta.target
        at_month = np.minimum(np.searchsorted(rec.enrol_day, self._month_days, side="right"), t)
        self.curve[np.arange(at_month.size), at_month] += 1
        by_deadline = min(int(np.searchsorted(rec.enrol_day, self._deadline_day, side="right")), t)
        self.by_deadline[by_deadline] += 1
        self.reached_by_deadline += int(by_deadline >= t)
        self.ttt_day[rec.replicate] = rec.time_to_target_day
        self.screened.add(rec.screened)
        # share of candidates whose screening was decided who failed it
        decided = rec.screen_failures + rec.withdrawn + rec.enrolled
        rate = rec.screen_failures / decided if decided > 0 else 0.0
        self.fail_rate[round(rate * RATE_BINS)] += 1
        self.fail_rate_sum += rate
        for key in self.FUNNEL:
            self.funnel[key] += getattr(rec, key)
        self.pre_reasons.add(rec.prescreen_reasons)
        self.scr_reasons.add(rec.screen_reasons)
        self.no_consent.add(rec.no_consent)
        self.withdrawn.add(rec.withdrawn)
        opened = np.isfinite(rec.site_activation_day)
        self.site_act_sum[opened] += rec.site_activation_day[opened]
        self.site_act_n += opened
        self.site_enrolled[np.arange(rec.site_enrolled.size), np.minimum(rec.site_enrolled, t)] += 1
        self.site_zero += rec.site_enrolled == 0
        self.sim_events += rec.sim_events
        if self.supply is not None:
            self.supply.add(rec.supply)
        if rec.enrol_traits:
            self.enrolled_total += rec.enrolled
            for name, values in rec.enrol_traits.items():
                if name == "age_years":
                    values = values[np.isfinite(values)]
                    # (np.clip's bounds by np.maximum / np.minimum: the same bins, finite values, at a
                    # fraction of its cost per record)
                    bins = np.minimum(np.maximum(np.floor(values * AGE_BINS_PER_YEAR), 0),
                                      AGE_BINS - 1).astype(np.int64)
                    self.age_bins += np.bincount(bins, minlength=AGE_BINS)
                else:
                    self.trait_true[name] = self.trait_true.get(name, 0) + int(np.sum(values))

    # -- outputs ------------------------------------------------------------------------------------

    def _ttt_months(self) -> np.ndarray:
        return self.ttt_day[: self.n] / MONTH_DAYS

    def summary(self) -> dict[str, Any]:
        meta, n = self.meta, self.n
        ttt = self._ttt_months()
        reached = np.isfinite(ttt)
        # unreached replicates count as "later than the horizon": a quantile that lands on one is null
        ordered = np.sort(np.where(reached, ttt, np.inf))

        def ttt_q(q: float) -> float | None:
            h = (n - 1) * q
            lo = math.floor(h)
            hi = min(lo + 1, n - 1)
            if h == lo:
                return _q(ordered[lo])
            if not math.isfinite(ordered[hi]):
                return None
            return _q(ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo]))

        sfr = np.arange(RATE_BINS + 1) / RATE_BINS
        out: dict[str, Any] = {
            "scenario": meta.scenario_name,
            "replicates": n,
            "seed": meta.seed,
            "target_enrolled": meta.target,
            "deadline_months": meta.deadline_months,
            "horizon_months": meta.horizon_months,
            "time_to_target_months": {
                "p10": ttt_q(0.10), "p50": ttt_q(0.50), "p90": ttt_q(0.90),
                "mean": _q(float(ttt[reached].mean())) if reached.any() else None,
                "reached_fraction": _q(reached.mean()),
            },
            "prob_target_by_deadline": _q(self.reached_by_deadline / n),
            "enrolled_by_deadline": {f"p{int(q * 100)}": _q(hist_quantile(self.by_deadline, q))
                                     for q in (0.1, 0.5, 0.9)},
            "screened": {f"p{int(q * 100)}": _q(self.screened.quantile(q)) for q in (0.1, 0.5, 0.9)},
            "screen_failure_rate": {f"p{int(q * 100)}": _q(hist_quantile(self.fail_rate, q, sfr))
                                    for q in (0.1, 0.5, 0.9)},
            "sites_zero_enrolled_fraction": _q(self.site_zero.sum() / (n * max(len(meta.site_names), 1))),
            "funnel_mean": {k: _q(v / n) for k, v in self.funnel.items()},
        }
        if self.supply is not None:
            out["supply"] = self.supply.summary()
            if hasattr(self.supply, "treatment_summary"):
                out["treatment"] = {k: _q(v) if isinstance(v, float) else v
                                    for k, v in self.supply.treatment_summary().items()}
        if self.enrolled_total:
            out["enrolled_baseline"] = self.enrolled_baseline()
        return out

    def enrolled_baseline(self) -> dict[str, Any]:
        """Baseline figures of every patient enrolled in every replicate (the keys of
        report.tables.cohort_figures); age quantiles from 0.1-year bins, so exact to 0.1 year."""
        total = self.enrolled_total
        out: dict[str, Any] = {"patients": total, "replicates": self.n}
        if self.age_bins.sum():
            mid = (np.arange(AGE_BINS) + 0.5) / AGE_BINS_PER_YEAR
            out["median_age_years"] = _q(hist_quantile(self.age_bins, 0.5, mid))
            out["age_iqr_years"] = [_q(hist_quantile(self.age_bins, 0.25, mid)),
                                    _q(hist_quantile(self.age_bins, 0.75, mid))]
        for name, count in self.trait_true.items():  # TRAITS order: female, ecog0, de_novo_metastatic, ...
            out[f"{name}_fraction"] = _q(count / total)
        return out

    def enrollment_curve(self) -> pl.DataFrame:
        t = self.meta.target
        rows = {"month": np.arange(self.meta.months + 1)}
        rows["enrolled_mean"] = (self.curve @ np.arange(t + 1)) / self.n
        for q in QUANTILES:
            # p025, p10, p25, p50, p75, p90, p975
            name = f"p{round(q * 1000):03d}" if q in (0.025, 0.975) else f"p{round(q * 100)}"
            rows[name] = [hist_quantile(row, q) for row in self.curve]
        return pl.DataFrame(rows)

    def time_to_target(self) -> pl.DataFrame:
        ttt = self._ttt_months()
        return pl.DataFrame({
            "replicate": np.arange(self.n),
            "time_to_target_months": pl.Series(np.where(np.isfinite(ttt), ttt, np.nan)).fill_nan(None),
        })

    def screen_failures(self) -> pl.DataFrame:
        meta = self.meta
        rows: list[dict[str, Any]] = []

        def stage_rows(stage: str, items: list[tuple[str, IntHistogram]]) -> None:
            total = sum(h.sum for _, h in items)
            for cid, h in items:
                rows.append({
                    "stage": stage, "criterion_id": cid, "failures_mean": h.mean(),
                    "failures_p10": h.quantile(0.1), "failures_p90": h.quantile(0.9),
                    "share": h.sum / total if total else 0.0,
                })

        ids = meta.reason_ids
        pre = [self.pre_reasons.row(i) for i in range(len(ids))]
        scr = [self.scr_reasons.row(i) for i in range(len(ids))]
        stage_rows("prescreen", [(ids[i], pre[i]) for i in range(len(ids))
                                 if meta.reason_stages[i] == "prescreen" or pre[i].sum])
        stage_rows("screening", [(ids[i], scr[i]) for i in range(len(ids))
                                 if meta.reason_stages[i] != "prescreen" or scr[i].sum])
        stage_rows("consent", [("no_consent", self.no_consent)])
        stage_rows("withdrawal", [("withdrawal_before_dose", self.withdrawn)])
        return pl.DataFrame(rows, schema={
            "stage": pl.String, "criterion_id": pl.String, "failures_mean": pl.Float64,
            "failures_p10": pl.Float64, "failures_p90": pl.Float64, "share": pl.Float64})

    def sites(self) -> pl.DataFrame:
        meta, n = self.meta, self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            act = np.where(self.site_act_n > 0, self.site_act_sum / np.maximum(self.site_act_n, 1), np.nan)
        return pl.DataFrame({
            "site": list(meta.site_names),
            "region": list(meta.site_regions),
            "activation_month_mean": pl.Series(act / MONTH_DAYS).fill_nan(None),
            "never_activated_fraction": 1.0 - self.site_act_n / n,
            "enrolled_mean": (self.site_enrolled @ np.arange(meta.target + 1)) / n,
            "enrolled_p10": [hist_quantile(r, 0.1) for r in self.site_enrolled],
            "enrolled_p90": [hist_quantile(r, 0.9) for r in self.site_enrolled],
            "zero_enrolled_fraction": self.site_zero / n,
        })

    def frames(self) -> dict[str, pl.DataFrame]:
        out = {
            "enrollment_curve": self.enrollment_curve(),
            "time_to_target": self.time_to_target(),
            "screen_failures": self.screen_failures(),
            "sites": self.sites(),
        }
        # rounded so the CSVs read cleanly (1e-6 is far below the Monte Carlo error)
        out = {k: f.with_columns(pl.col(pl.Float64).round(6)) for k, f in out.items()}
        if self.supply is not None and hasattr(self.supply, "frames"):
            out.update(self.supply.frames())
        return out


@dataclass(frozen=True)
class RunResult:
    """What `run_scenario` returns: the summary (summary.json) and frames (file stem -> table)."""

    summary: dict[str, Any]
    frames: dict[str, pl.DataFrame]
    meta: RunMeta
    sim_events: int = 0
    aggregate: Aggregate | None = field(default=None, repr=False, compare=False)


# ---------------------------------------------------------------------------------------------------
# the replicate: recruitment DES, then (when the scenario has them) treatment and supply

_SOURCES: dict[str, CandidateSource] = {}


def _scenario_key(scenario) -> str:
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()


def _source_for(scenario) -> CandidateSource:
    """The compiled candidate source, built once per worker process for each scenario."""
    key = _scenario_key(scenario)
    if key not in _SOURCES:
        _SOURCES.clear()
        _SOURCES[key] = candidate_source(scenario)
    return _SOURCES[key]


def _supply_module(scenario):
    if getattr(scenario, "regimen", None) is None or getattr(scenario, "supply", None) is None:
        return None
    try:
        from hn005_sim.supply import simulate
    except ImportError:
        return None
    return simulate


def run_replicate(
    scenario, seed: int, replicate: int, source: CandidateSource | None = None, *, recruited=None
) -> ReplicateRecord:
    """One replicate; depends only on (scenario, seed, replicate). `recruited`: its recruitment
    (record, sites), simulated already (`simulate_recruitment_many`)."""
    if recruited is None:
        source = _source_for(scenario) if source is None else source
        recruited = simulate_recruitment(scenario, source, seed, replicate)
    rec, sites = recruited
    supply = _supply_module(scenario)
    if supply is not None:
        # the enrolments and sites as the supply model's rows (the values the frames built here gave)
        enrolments, site_rows = supply.recruitment_rows(rec, sites)
        record = supply.simulate_replicate(
            scenario, enrolments, site_rows, None,  # courses complete: last enrolment + follow-up
            rngmod.stream(seed, replicate, "treatment"), rngmod.stream(seed, replicate, "supply"),
        )
        rec = _with_supply(rec, record)
    return rec


def _with_supply(rec: ReplicateRecord, record: Any) -> ReplicateRecord:
    from dataclasses import replace

    return replace(rec, supply=record)


def run_batch(scenario, seed: int, start: int, stop: int, uncertain=None, *,
              source: CandidateSource | None = None) -> list[ReplicateRecord]:
    """Replicates start..stop-1 (the unit of work `run_task` runs for an executor).

    uncertain: a scenario.uncertainty.UncertainScenario: each replicate runs the scenario with its own
    parameter set, drawn from its `uncertainty` stream (second-order Monte Carlo); every other stream
    is the one it would use without uncertainty (common random numbers). source: the scenario's
    compiled candidate source, when the caller has it (else `_source_for`).
    """
    if uncertain is not None:
        return [run_replicate(sc, seed, r) for r in range(start, stop)
                for sc in (uncertain.scenario_for(seed, r),)]
    source = _source_for(scenario) if source is None else source
    # the recruitment of the task's replicates first, their candidates judged together (des._prejudge)
    recruited = simulate_recruitment_many(scenario, source, seed, range(start, stop))
    return [run_replicate(scenario, seed, r, source, recruited=rs)
            for r, rs in zip(range(start, stop), recruited, strict=True)]


@dataclass(frozen=True)
class TaskScenario:
    """The scenario (and uncertain figures) of a run's tasks, pickled once by the parent: `blob` is
    `pickle.dumps((scenario, uncertain))`, `key` its sha256. Every task carries it (an executor cannot
    address one worker), but a worker unpickles it only for its first task of the run (`run_task`):
    unpickling the baseline's scenario cost ~5 ms and its cache key (`_scenario_key`) ~1 ms a task, and
    the parent pickled it (~1.7 ms) for every task."""

    key: str
    blob: bytes

    @classmethod
    def of(cls, scenario, uncertain=None) -> TaskScenario:
        blob = pickle.dumps((scenario, uncertain), protocol=pickle.HIGHEST_PROTOCOL)
        return cls(hashlib.sha256(blob).hexdigest(), blob)


_TASK_SCENARIOS: dict[str, tuple[Any, Any, list]] = {}
"""key -> (scenario, uncertain, [candidate source once built]): the last run's, in each process."""


def task_scenario(task: TaskScenario) -> tuple[Any, Any, list]:
    got = _TASK_SCENARIOS.get(task.key)
    if got is None:
        scenario, uncertain = pickle.loads(task.blob)
        _TASK_SCENARIOS.clear()
        got = _TASK_SCENARIOS[task.key] = (scenario, uncertain, [])
    return got


def run_task(task: TaskScenario, seed: int, start: int, stop: int) -> list[ReplicateRecord]:
    """`run_batch` of the task's scenario: what `run_scenario` submits to an executor."""
    scenario, uncertain, source = task_scenario(task)
    if uncertain is None and not source:
        source.append(_source_for(scenario))
    return run_batch(scenario, seed, start, stop, uncertain, source=source[0] if source else None)


# ---------------------------------------------------------------------------------------------------
# executors


def parse_executor(spec: str) -> tuple[str, Any]:
    """'process' | 'thread' | 'dask-local[:WORKERS]' | 'dask://HOST:PORT' -> (kind, argument).

    Raises ValueError with a sentence saying what was expected.
    """
    if spec in ("process", "thread"):
        return spec, None
    if spec == "dask-local" or spec.startswith("dask-local:"):
        _, _, n = spec.partition(":")
        if n and (not n.isdigit() or int(n) < 1):
            raise ValueError(f"--executor {spec!r}: expected dask-local:WORKERS with WORKERS >= 1")
        return "dask-local", int(n) if n else None
    if spec.startswith("dask://"):
        address = spec[len("dask://"):]
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--executor {spec!r}: expected dask://HOST:PORT")
        return "dask", f"tcp://{address}"
    raise ValueError(
        f"--executor {spec!r}: expected 'process', 'thread', 'dask-local[:WORKERS]' or 'dask://HOST:PORT'"
    )


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


ORPHAN_POLL_S = 1.0
"""How often a worker checks that the process that started it is still there."""


def _watch_parent(parent: int, poll_s: float = ORPHAN_POLL_S) -> None:
    """End this worker as soon as its parent is gone (kill -9 of the parent leaves no worker running).

    A process whose parent dies is re-parented (to init or a subreaper), so `os.getppid()` changes.
    """
    while True:
        time.sleep(poll_s)
        if os.getppid() != parent:
            os._exit(1)


def _worker_start(parent: int) -> None:
    """Pool initializer: ignore Ctrl-C (the parent handles it) and exit when the parent dies. A forked
    worker also drops the handlers it inherited (the command's SIGTERM handler, hn005_sim.cli): the
    parent ends its workers with SIGTERM (`_stop_workers`), which must end them, not raise in them."""
    _ignore_sigint()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):  # held by `prestart_workers` while it forked this worker
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="hn005-orphan-watch").start()
    for name in WORKER_START_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # what the worker holds now (the parent's modules, for a forked one) lives as long as the worker:
    # out of the collector's reach for good (replicate_gc says why)
    gc.freeze()


@contextlib.contextmanager
def replicate_gc() -> Iterator[None]:
    """While replicates run in this process (inline, or the parent folding a pool's records): what
    exists now (modules, the scenario: it outlives the run) is frozen out of the cyclic collector's
    reach (`gc.freeze`), and unfrozen afterwards (unless something had frozen objects before, whose
    freeze is left alone). A pool worker freezes what it starts with for good (`_worker_start`).

    Why: a replicate allocates tens of thousands of container objects (~2.5 young collections a
    replicate at Python's thresholds), and every ~150 replicates a full collection traversed every
    object of the process, ~110,000 in a forked worker, mostly the parent's imported modules: ~75-80 ms
    each, writing to each object's header, so copying the parent's shared pages into the worker (copy
    on write). A worker spent ~1.7-2.1 ms of a ~26-32 ms replicate collecting (gc.callbacks, 1,000
    baseline replicates), ~0.9-1.0 ms with the freeze, and ~1.6-2.6 ms less CPU a replicate in all (the
    page copies are not collector time; bench/pool_timeline.py, docs/scale.md). Python's
    documentation of `gc.freeze` advises it before forking without exec for this reason. The thresholds
    are left at Python's: raising the first to 10,000 saved another ~0.3-0.5 ms a replicate but raised
    a process's peak memory by ~50 MB (cyclic garbage holding a replicate's arrays waits longer; +21 MB
    at 1,400), three processes against bench/memory.py's 1 GiB. The collector changes no result."""
    frozen_before = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        yield
    finally:
        if not frozen_before:
            gc.unfreeze()


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Block SIGINT in this thread while it may start worker processes (`submit` starts them on demand).

    A spawned worker inherits the signal mask through fork and exec, so a Ctrl-C during its imports
    stays pending in it until its initializer ignores SIGINT (which discards it) instead of printing a
    KeyboardInterrupt traceback. This is how the standard library starts its resource tracker
    (multiprocessing/resource_tracker.py). The parent does not lose the Ctrl-C: the mask is per thread,
    so the signal goes to one of its other threads and Python raises KeyboardInterrupt in the main
    thread as usual. (Ignoring SIGINT in the parent instead, SIG_IGN, lost a Ctrl-C arriving meanwhile.)
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    # Python runs its SIGINT handler in the main thread whichever thread the signal reached: a
    # KeyboardInterrupt raised in the middle of starting a worker (between spawning it and writing it
    # its start-up data) left the worker reading a closed pipe, and it printed an EOFError traceback. The
    # handler is deferred meanwhile, and the Ctrl-C raised once the worker is started.
    caught: list[int] = []
    handler = signal.getsignal(signal.SIGINT)
    deferred = callable(handler) and handler is signal.default_int_handler
    if deferred:
        signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        if deferred:
            signal.signal(signal.SIGINT, handler)  # through the signal module: no SA_RESTART
            if caught:
                raise KeyboardInterrupt


def interruptible_waits() -> None:
    """Let Ctrl-C interrupt the main thread's blocking waits (on a pool's results), not only Python code.

    Importing polars (since pola-rs/polars#20961; 2.1 here) replaces the C-level SIGINT handler with one
    installed with SA_RESTART (pola-rs/polars#21739): the kernel then restarts a blocked futex instead of
    failing it with EINTR, so Python only raises KeyboardInterrupt when the wait ends by itself - after
    a whole batch of replicates, or never. Installing Python's default handler again through the signal
    module (no SA_RESTART) restores the behaviour PEP 475 describes. Polars then no longer aborts its
    own queries on Ctrl-C; KeyboardInterrupt is raised as soon as the query returns.
    """
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _stop_workers(ex: cf.ProcessPoolExecutor, before: set) -> None:
    """Interrupted: end the pool's worker processes now instead of waiting for their batches.

    `shutdown(cancel_futures=True)` cancels only batches not yet handed to a worker; the running ones
    and those in the pool's call queue (jobs + 1) would still run to the end, and the interpreter joins
    the pool's management thread at exit, so Ctrl-C took as long as several batches. The workers are the
    multiprocessing children started since the pool was created (`multiprocessing.active_children`, a
    public API, rather than the pool's private `_processes`). They hold no output: results only reach
    the output folder through the parent. The pool sees them die, marks itself broken and cleans up its
    queues and threads (concurrent.futures.process.terminate_broken).
    """
    workers = [p for p in multiprocessing.active_children() if p not in before]
    for proc in workers:
        proc.terminate()
    ex.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        proc.join(timeout=5)


# ---------------------------------------------------------------------------------------------------
# the process pool, started at the start of `run` by forking the parent (no second import)

START_METHOD_ENV = "HN005_SIM_POOL_START"
"""Environment variable: `spawn` makes `prestart_workers` start nothing (the pool is then spawned, each
worker importing the model itself, as before issue 16 phase 3); unset or `fork`: fork when it is safe."""

WORKER_MODULES = ("hn005_sim.scenario.load", "hn005_sim.supply.simulate", "pyarrow")
"""Imported by the parent before it forks its workers, so that no worker imports them again: the
scenario's loader, the supply model (imported by a worker's first replicate) and pyarrow
(eligibility.engine's bit columns through polars' `to_arrow`, ~0.3 s). The parent needs each of them
anyway. Not `hn005_sim.scenario.schema`: it imports hn005_sim.population, whose `columns` module starts
polars' thread pool at import (fork_is_safe would then refuse), so a worker imports those (~0.1 s) as
it starts (WORKER_START_MODULES); nothing else (tests/test_montecarlo_pool.py)."""

WORKER_START_MODULES = ("hn005_sim.scenario.schema",)
"""Imported by each worker as it starts (its initializer), while the parent is still loading the
scenario: the scenario schema and hn005_sim.population (~0.1 s of CPU), which the parent cannot import
before forking (WORKER_MODULES) and which a worker otherwise imported when it unpickled its first task,
between the parent's first submit and the first replicate."""

_UNSAFE_THREAD_PREFIXES = ("polars-", "tokio-")
"""Native threads that mean a library's thread pool has started (polars' rayon pool `polars-N`, its
tokio runtime): a forked child would inherit its locks without its threads. `polars-ooc-clea` (polars'
memory-budget cleaner), `jemalloc_bg_thd` (the allocator's purging threads) and OpenBLAS's idle threads
are there from import on: jemalloc and OpenBLAS stop and restart theirs around a fork
(pthread_atfork); that the cleaner is harmless is shown by use, not by its source (docs/scale.md)."""


def _native_threads() -> list[str] | None:
    """Names of this process's OS threads (Linux /proc), or None where they cannot be listed."""
    try:
        tasks = os.listdir("/proc/self/task")
        return [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in tasks]
    except OSError:
        return None


def fork_is_safe() -> tuple[bool, str]:
    """(whether forking this process now gives workers a sound state, why not).

    Safe: Linux with the fork start method, this the main and only Python thread, and no thread pool of
    polars (rayon, tokio) started yet: a query run before the fork would have started it
    (`_UNSAFE_THREAD_PREFIXES`)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return False, "no fork start method on this platform"
    if threading.current_thread() is not threading.main_thread() or threading.active_count() != 1:
        return False, f"{threading.active_count()} Python threads"
    names = _native_threads()
    if names is None:
        return False, "the process's threads cannot be listed (/proc/self/task)"
    busy = sorted(n for n in names
                  if n.startswith(_UNSAFE_THREAD_PREFIXES) and not n.startswith("polars-ooc"))
    if busy:
        return False, "thread pools already started: " + ", ".join(busy)
    return True, ""


_PRESTARTED: dict[int, tuple[cf.ProcessPoolExecutor, set]] = {}


def prestart_workers(executor: str | cf.Executor, jobs: int) -> bool:
    """Start the process pool of `run --jobs N` now, by forking this process, when that is safe.

    Called at the very start of a command (commands/run.py), before it loads the scenario or starts any
    thread: every worker is then a copy of a parent that has imported the model (numpy, polars, scipy,
    the recruitment and supply modules) and nothing more, so it imports only the population modules
    (WORKER_MODULES) and is ready at once. A spawned worker instead started a new interpreter and
    imported all of it again (~1.3 s of CPU per worker, competing with the parent for the same
    cores). `open_executor` then uses this pool. Returns whether it started one: not for other
    executors, jobs <= 1, $HN005_SIM_POOL_START=spawn, or when `fork_is_safe()` says no (the pool is
    then spawned, as before). Same outputs either way: a replicate depends only on (scenario, seed,
    replicate)."""
    if not isinstance(executor, str) or jobs <= 1 or jobs in _PRESTARTED:
        return False
    if os.environ.get(START_METHOD_ENV, "fork") == "spawn":
        return False
    try:
        kind, _ = parse_executor(executor)
    except ValueError:
        return False
    if kind != "process":
        return False
    for name in WORKER_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    safe, _ = fork_is_safe()
    if not safe:
        return False
    before = set(multiprocessing.active_children())
    # the workers inherit SIGINT and SIGTERM blocked until their initializer has set what they do
    with sigint_held(), _sigterm_held():
        ex = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                                    initializer=_worker_start, initargs=(os.getpid(),))
        # with fork, the pool forks all its workers at its first submit; the parent starts no thread
        # of its own before that (the pool's manager thread comes after the forks)
        ex.submit(os.getpid)
    if not _PRESTARTED:
        import atexit

        atexit.register(_discard_prestarted)
    _PRESTARTED[jobs] = (ex, before)
    return True


def _discard_prestarted() -> None:
    """At exit, shut down a pool the command started and never used (it failed first: a bad scenario,
    exit code 2), while the interpreter is whole: left to the garbage collector at shutdown, the pool's
    clean-up printed an `Exception ignored` traceback."""
    while _PRESTARTED:
        _, (ex, _) = _PRESTARTED.popitem()
        ex.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _sigterm_held() -> Iterator[None]:
    """Block SIGTERM in this thread meanwhile: a forked worker would otherwise run the command's SIGTERM
    handler (it raises in the worker) until its initializer restores the default. A SIGTERM to the
    parent meanwhile waits and is handled at the end."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _take_prestarted(jobs: int) -> tuple[cf.ProcessPoolExecutor, set] | None:
    return _PRESTARTED.pop(jobs, None)


@contextlib.contextmanager
def open_executor(executor: str | cf.Executor, jobs: int) -> Iterator[tuple[cf.Executor | None, int]]:
    """Yield (executor or None for inline, number of workers).

    Submit to a process pool inside `sigint_held()`: workers are started on demand by `submit`.
    """
    interruptible_waits()
    if isinstance(executor, cf.Executor):
        yield executor, max(jobs, 1)
        return
    kind, arg = parse_executor(executor)
    if kind == "process":
        if jobs <= 1:
            yield None, 1
            return
        # the pool `prestart_workers` forked at the command's start; else spawn, not fork: polars' and
        # numpy's thread pools, once started, do not survive a fork. Workers ignore Ctrl-C
        # (initializer): the parent handles it, stops them and leaves no half-written output.
        pre = _take_prestarted(jobs)
        if pre is not None:
            ex, before = pre
        else:
            before = set(multiprocessing.active_children())
            with sigint_held():
                ex = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_worker_start, initargs=(os.getpid(),))
        try:
            yield ex, jobs
        except BaseException:
            _stop_workers(ex, before)
            raise
        ex.shutdown(wait=True)
        return
    if kind == "thread":
        with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
            yield ex, jobs
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is an optional dependency
        raise ValueError(f"--executor {executor!r} needs dask.distributed: pip install 'hn005-sim[dask]' "
                         f"({exc})") from None
    if kind == "dask-local":
        workers = arg or jobs
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=50) as cluster, Client(cluster) as client:
            yield client.get_executor(), workers
        return
    client = _connect_dask(Client, arg, executor)
    with client:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        yield client.get_executor(), workers


DASK_CONNECT_TIMEOUT_S = 10.0
"""How long `--executor dask://HOST:PORT` waits for a Dask scheduler to answer."""


def _connect_dask(client_cls: Any, address: str, spec: str, timeout_s: float = DASK_CONNECT_TIMEOUT_S):
    """A Client connected to `address`, or ValueError within about `timeout_s`.

    A port where something that is not a Dask scheduler listens (an HTTP server) accepts the TCP
    connection and then never completes Dask's handshake; Client's own timeout does not always end
    that wait. So the connection is made in a daemon thread and abandoned at the deadline.
    """
    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = client_cls(address, timeout=f"{timeout_s}s")
        except BaseException as exc:  # reported below, in the calling thread
            box["error"] = exc

    worker = threading.Thread(target=connect, daemon=True, name="hn005-dask-connect")
    worker.start()
    worker.join(timeout_s + 2.0)
    if worker.is_alive():
        raise ValueError(f"--executor {spec!r}: no Dask scheduler answered at {address} within "
                         f"{timeout_s:g} s")
    if "error" in box:
        exc = box["error"]
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ValueError(f"--executor {spec!r}: cannot reach the Dask scheduler ({text})") from None
    return box["client"]


def _batches(replicates: int, workers: int) -> list[tuple[int, int]]:
    # about 4 tasks per worker for load balance, at most 50 replicates per task for a smooth progress bar
    size = max(1, min(50, math.ceil(replicates / (4 * workers))))
    return [(s, min(s + size, replicates)) for s in range(0, replicates, size)]


TAIL_MIN_BATCH = 8
"""Smallest batch of `_guided_batches`' tail: below ~8 replicates a batch's fixed cost (its candidates'
judging, des._prejudge, and the scenario sent with it) shows (a replicate costs ~10% more in batches of
5, ~30% more in batches of 2)."""


def _guided_batches(replicates: int, workers: int) -> list[tuple[int, int]]:
    """`_batches` for a pool of `workers`, with a tail of shrinking batches (guided self-scheduling).

    With equal batches of 50, the run ended when the slower worker finished its last one while the
    other had nothing left to do: on average about half a batch (~0.8 s at ~30 ms a replicate) of one
    core idle at the end. Here a batch is at most a (2 x workers)-th of the replicates still to hand
    out, never fewer than TAIL_MIN_BATCH, and never more than `_batches`' size: the tasks before the
    tail are unchanged, the last ones shrink to a fraction of a second. Which replicates a batch holds
    changes no record (each replicate depends only on (scenario, seed, replicate)), so the outputs are
    the same for any batching."""
    full = _batches(replicates, workers)
    if workers <= 1 or not full:
        return full
    size = full[0][1] - full[0][0]
    out: list[tuple[int, int]] = []
    start = 0
    while start < replicates:
        left = replicates - start
        n = min(size, max(TAIL_MIN_BATCH, math.ceil(left / (2 * workers))), left)
        if left - n < TAIL_MIN_BATCH // 2 and left <= size:  # no lone last batch of a few replicates
            n = left
        out.append((start, start + n))
        start += n
    return out


def _progress(total: int, enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("replicates"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def run_scenario(
    scenario,
    replicates: int,
    seed: int,
    jobs: int = 1,
    executor: str | cf.Executor = "process",
    progress: bool = False,
    on_record: Callable[[ReplicateRecord], None] | None = None,
    uncertain: Any = None,
) -> RunResult:
    """Run `replicates` replicates of the scenario's recruitment (and supply) and summarise them.

    Identical results for any jobs/executor. `on_record` sees every replicate record in order.
    `uncertain` (scenario.uncertainty.UncertainScenario of this scenario): draw the uncertain figures
    anew for every replicate (`run --uncertainty`).
    Raises ConfigError when the scenario cannot be simulated, ValueError for a bad executor spec,
    hn005_sim.cli.InputError when the run would need more memory than the machine has
    (hn005_sim.guards.check_run_memory).
    """
    if scenario.recruitment is None:
        raise ConfigError.one(scenario.name, "recruitment", "the scenario has no [recruitment] section")
    if replicates < 1:
        raise ValueError("replicates must be >= 1")
    source = _source_for(scenario)  # fails early, in this process, on a scenario that cannot run
    cfg = scenario.recruitment
    sites = [(name, r.name) for r in cfg.regions for name in r.names()]
    meta = RunMeta(
        scenario_name=scenario.name, replicates=replicates, seed=seed,
        target=scenario.trial.target_enrolled, deadline_months=scenario.trial.deadline_months,
        horizon_months=cfg.horizon_months.value, months=cfg.horizon_month_count(),
        site_names=tuple(s for s, _ in sites), site_regions=tuple(r for _, r in sites),
        reason_ids=tuple(source.reason_ids), reason_stages=tuple(source.reason_stages),
    )
    # refused up front, with the estimate, rather than failing on allocation (10^12 replicates or target)
    from hn005_sim.guards import check_run_memory

    kind, arg = parse_executor(executor) if isinstance(executor, str) else ("external", None)
    local_workers = {"process": jobs if jobs > 1 else 0, "dask-local": arg or jobs}.get(kind, 0)
    check_run_memory(target=meta.target, months=meta.months, sites=len(meta.site_names),
                     replicates=replicates, processes=1 + local_workers,
                     what=f"run of {scenario.name!r} (trial.target_enrolled = {meta.target:,}, "
                          f"{replicates:,} replicates)")
    supply_mod = _supply_module(scenario)
    supply_agg = None
    if supply_mod is not None and hasattr(supply_mod, "SupplyAggregate"):
        supply_agg = supply_mod.SupplyAggregate(scenario, replicates)
    agg = Aggregate(meta, supply_agg)

    def fold(records: list[ReplicateRecord]) -> None:
        for rec in records:
            agg.add(rec)
            if on_record is not None:
                on_record(rec)

    with replicate_gc(), open_executor(executor, jobs) as (ex, workers), \
            _progress(replicates, progress) as bar:
        task = bar.add_task("run", total=replicates) if bar is not None else None
        batches = _batches(replicates, workers) if ex is None else _guided_batches(replicates, workers)
        if ex is None:
            for start, stop in batches:
                fold(run_batch(scenario, seed, start, stop, uncertain))
                if bar is not None:
                    bar.advance(task, stop - start)
        else:
            window = 2 * workers  # batches in flight: bounds both the queue and the reorder buffer
            task_sc = TaskScenario.of(scenario, uncertain)
            pending: dict[cf.Future, int] = {}
            done: dict[int, list[ReplicateRecord]] = {}
            nxt_submit = nxt_fold = 0
            while nxt_fold < len(batches):
                while nxt_submit < len(batches) and len(pending) + len(done) < window:
                    start, stop = batches[nxt_submit]
                    with sigint_held():  # submit may start a worker process
                        fut = ex.submit(run_task, task_sc, seed, start, stop)
                    pending[fut] = nxt_submit
                    nxt_submit += 1
                finished, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    done[i] = fut.result()
                    if bar is not None:
                        bar.advance(task, batches[i][1] - batches[i][0])
                while nxt_fold in done:
                    fold(done.pop(nxt_fold))
                    nxt_fold += 1
    return RunResult(agg.summary(), agg.frames(), meta, agg.sim_events, agg)
