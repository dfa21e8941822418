"""Supply figures across replicates, streamed: memory does not grow with the number of replicates.

Every per-replicate figure is an integer (packs, units, or thousandths of a pack / day) kept in a
`Counter` of value -> replicates, so `add` and `merge` are exact and order-independent, and quantiles
are those numpy's default (linear) method gives on the full list of values.

Packs to make (`units_p*` in the summary, `manufacture_p*` in supply.csv) are quantiles over the
replicates that enrol the trial's target: a replicate still short of it at the horizon has treated fewer
patients than the trial will, so its supply understates what must be made (docs/supply.md). Without a
target (no scenario given), or when no replicate reaches it, every replicate counts and the summary
says so (`packs_basis`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import polars as pl

from hn005_sim.supply.record import SupplyRecord

MILLI = 1000  # fractional figures (pack equivalents, patient-days) are stored in thousandths


def quantile(counts: Counter, q: float) -> float:
    """numpy.quantile(values, q) (linear method) from a Counter of integer values."""
    n = sum(counts.values())
    if n == 0:
        return float("nan")
    h = (n - 1) * q
    lo = int(np.floor(h))
    values = sorted(counts)
    cum = np.cumsum([counts[v] for v in values])

    def at(i: int) -> float:
        return float(values[int(np.searchsorted(cum, i, side="right"))])

    a = at(lo)
    b = at(min(lo + 1, n - 1))
    return a + (h - lo) * (b - a)


def _grown(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`a` zero-padded to `shape` (at least twice its size along each axis that grows, so that growing
    one value at a time costs amortised O(1))."""
    shape = tuple(max(n, 2 * old) if n > old else old for n, old in zip(shape, a.shape, strict=True))
    out = np.zeros(shape, a.dtype)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


def waste_of(rec: SupplyRecord) -> np.ndarray:
    """Packs wasted per presentation: expiry write-offs + returned units as pack equivalents."""
    return rec.wasted_expiry + rec.wasted_returns


def _mean(counts: Counter) -> float:
    n = sum(counts.values())
    return float(sum(v * c for v, c in counts.items()) / n) if n else float("nan")


class SupplyAggregate:
    """Streaming aggregate of `SupplyRecord`s: `add`, `merge`, then `summary()` and `frames()`."""

    PER_PRESENTATION = ("released", "shipped", "dispensed", "wasted_expiry", "returned_units",
                        "shipments_with", "stockout_events", "missed_events", "out_of_stock_events")

    def __init__(self, scenario: Any = None, replicates: int | None = None) -> None:
        """`scenario` gives the target (`trial.target_enrolled`) that packs to make are conditioned on;
        `replicates` is accepted for the Monte Carlo's convenience. The presentations come from the
        first record."""
        trial = getattr(scenario, "trial", None)
        self.target: int | None = None if trial is None else int(trial.target_enrolled)
        self.replicates = 0
        self.at_target = 0  # replicates whose patients reach the target
        self.presentations: tuple[str, ...] | None = None
        self.drugs: tuple[str, ...] = ()
        self.units_per_pack: tuple[int, ...] = ()
        self.pres: dict[tuple[str, str], Counter] = {}  # (figure, presentation) -> Counter
        self.pres_stockout: Counter = Counter()  # presentation -> replicates with a stock-out
        self.pres_missed: Counter = Counter()  # ... with a missed dispensing (stock upstream)
        self.pres_oos: Counter = Counter()  # ... with an out-of-stock dispensing (none upstream)
        self.drug_missed: Counter = Counter()
        self.drug_oos: Counter = Counter()
        self.drug: dict[tuple[str, str], Counter] = {}  # (figure, drug) -> Counter
        self.drug_stockout: Counter = Counter()
        self.monthly: dict[tuple[str, int, str], Counter] = {}  # (series, month, drug) -> Counter
        self.month_stockout: Counter = Counter()  # (month, drug) -> replicates with a stock-out
        self.month_n: Counter = Counter()  # month -> replicates whose horizon reaches it
        self.end_reasons: Counter = Counter()
        self.cycles: Counter = Counter()
        self.treatment: Counter = Counter()  # summed SupplyRecord.treatment counts
        # `add`'s look-ups: the Counters above it increments, found once (the same objects)
        self._pres_cache: list[list[Counter]] | None = None
        self._month_cache: dict[str, tuple] = {}
        # the monthly figures as dense histograms while records are added (`_add_monthly_dense`), moved
        # into the Counters above by `_flush_monthly` before anything reads them
        self._dense_n = np.zeros(0, np.int64)  # month -> replicates (month_n)
        self._dense_drugs: tuple[str, ...] | None = None  # sorted
        self._dense_h = np.zeros((0, 0, 0), np.int64)  # [series x drugs + drug, month, value] -> replicates
        self._dense_stockout = np.zeros((0, 0), np.int64)  # [month, drug] -> replicates (month_stockout)
        self._onehot: dict[tuple[str, ...], np.ndarray] = {}  # presentations' drugs -> [presentation, drug]
        self._groups: dict[tuple[str, ...], tuple] = {}  # presentations' drugs -> `_drug_groups`
        self.dense_monthly = True
        """False: `add` increments the Counters directly, record by record (the reference the dense
        histograms are tested against, tests/supply/test_aggregate.py)."""
        self.dense_frames = True
        """False: `frames` moves the dense histograms into the Counters and reads the monthly quantiles
        from them (the reference `_monthly_frames_dense` is tested against)."""

    def _c(self, table: dict, key) -> Counter:
        got = table.get(key)
        if got is None:
            got = table[key] = Counter()
        return got

    def _pres_counters(self, presentations: tuple[str, ...]) -> list[list[Counter]]:
        """The Counters of `self.pres` for (each of PER_PRESENTATION, then "waste_milli") x presentation."""
        got = self._pres_cache
        if got is None:
            got = self._pres_cache = [[self._c(self.pres, (fig, pid)) for pid in presentations]
                                      for fig in (*self.PER_PRESENTATION, "waste_milli")]
        return got

    def _month_counters(self, d: str, months: int) -> tuple[list, list, list, list]:
        """The Counters of `self.monthly` for months 0..months-1 of drug d (dispensed, depot, sites),
        and the `month_stockout` keys."""
        got = self._month_cache.get(d)
        if got is None or len(got[0]) < months:
            got = self._month_cache[d] = (
                *([self._c(self.monthly, (series, m, d)) for m in range(months)]
                  for series in ("dispensed", "depot", "sites")), [(m, d) for m in range(months)])
        return got if len(got[0]) == months else tuple(x[:months] for x in got)

    def add(self, rec: SupplyRecord) -> None:
        if self.presentations is None:
            self.presentations, self.drugs = rec.presentations, rec.drugs
            self.units_per_pack = tuple(int(u) for u in rec.units_per_pack)
        elif rec.presentations != self.presentations:
            raise ValueError("records with different presentations cannot be aggregated together")
        self.replicates += 1
        reached = self.target is None or rec.patients >= self.target
        self.at_target += int(reached)
        pres_c = self._pres_counters(rec.presentations)
        for fig, counters in zip(self.PER_PRESENTATION, pres_c[:-1], strict=True):
            for c, v in zip(counters, getattr(rec, fig).tolist(), strict=True):
                c[int(v)] += 1
        waste = waste_of(rec).tolist()
        released = rec.released.tolist()
        stockouts, missed = rec.stockout_events.tolist(), rec.missed_events.tolist()
        oos = rec.out_of_stock_events.tolist()
        waste_milli = pres_c[-1]
        for p, pid in enumerate(rec.presentations):
            self.pres_stockout[pid] += int(stockouts[p] > 0)
            if reached:
                self._c(self.pres, ("released_at_target", pid))[int(released[p])] += 1
            self.pres_missed[pid] += int(missed[p] > 0)
            self.pres_oos[pid] += int(oos[p] > 0)
            waste_milli[p][round(float(waste[p]) * MILLI)] += 1
        # per drug, its presentations' figures summed as `SupplyRecord.drug_total` and `stockout` sum them
        # (in presentation order, from 0, the total as a float), from lists and the drug's presentations
        # found once per set of presentations (the same Counters as the record's methods give:
        # tests/supply/test_fold.py)
        order, idx, counters = self._drug_groups(rec.drugs)
        dispensed = rec.dispensed.tolist()
        for d, (made, disp, wm, dw), ps in zip(order, counters, (idx[d] for d in order), strict=True):
            m = int(float(sum(released[p] for p in ps)))
            made[m] += 1
            if reached:
                self._c(self.drug, ("manufacture_at_target", d))[m] += 1
            disp[int(float(sum(dispensed[p] for p in ps)))] += 1
            wm[round(float(sum(waste[p] for p in ps)) * MILLI)] += 1
            dw[round(rec.patient_days_without[d] * MILLI)] += 1
            self.drug_stockout[d] += int(bool(sum(stockouts[p] for p in ps)))
            self.drug_missed[d] += int(bool(sum(missed[p] for p in ps)))
            self.drug_oos[d] += int(bool(sum(oos[p] for p in ps)))
        if not (self.dense_monthly and self._add_monthly_dense(rec, idx)):
            self._add_monthly_counters(rec, idx)
        self.end_reasons.update(rec.end_reasons)
        self.cycles[rec.cycles_given] += 1
        self.treatment.update(rec.treatment)

    def _drug_groups(self, drugs: tuple[str, ...]) -> tuple[list[str], dict[str, list[int]], list[tuple]]:
        """(the drugs in the order they first appear, drug -> its presentations, and per drug the Counters
        `add` increments: manufacture, dispensed, waste_milli, days_without_milli; manufacture_at_target
        only once a replicate reaches the target, as before), kept per tuple of the presentations' drugs."""
        got = self._groups.get(drugs)
        if got is None:
            order = self._order(drugs)
            idx = {d: [p for p, x in enumerate(drugs) if x == d] for d in set(drugs)}
            counters = [tuple(self._c(self.drug, (fig, d)) for fig in (
                "manufacture", "dispensed", "waste_milli", "days_without_milli")) for d in order]
            got = self._groups[drugs] = (order, idx, counters)
        return got

    DENSE_MAX_VALUE = 1 << 14
    """Largest monthly figure (packs dispensed, on hand) `_add_monthly_dense` keeps in a dense histogram
    (a month's row then holds at most 16,384 counters); a record with a larger one goes to the Counters."""

    def _add_monthly_dense(self, rec: SupplyRecord, idx: dict[str, list[int]]) -> bool:
        """`_add_monthly_counters` with numpy: each month's figure is one more count in row `month`,
        column `value` of a dense histogram per (series, drug), all of a replicate's in one fancy-index
        increment instead of a Counter increment per month (~1,200 of them a replicate for the
        baseline's 103 months and 3 drugs: most of the parent's fold). The sums over a drug's
        presentations are one integer matrix product (exact). Integer counts: `_flush_monthly` gives
        the Counters the same contents. False (nothing added) for what it cannot index: another set of
        drugs than the first record's, values not integers, negative or above DENSE_MAX_VALUE."""
        drugs = tuple(sorted(idx))
        if self._dense_drugs is None:
            self._dense_drugs = drugs
        if drugs != self._dense_drugs:
            return False
        onehot = self._onehot.get(rec.drugs)
        if onehot is None:
            onehot = self._onehot[rec.drugs] = np.array([[int(x == d) for d in drugs] for x in rec.drugs],
                                                        np.int64).reshape(len(rec.drugs), len(drugs))
        series = np.stack([rec.dispensed_monthly, rec.on_hand_depot_monthly, rec.on_hand_sites_monthly])
        if series.dtype.kind not in "iu" or rec.stockouts_monthly.dtype.kind not in "iub":
            return False
        months, nd = series.shape[1], len(drugs)
        # [series * drugs + drug, month]: the drug's sum over its presentations
        values = (series @ onehot).transpose(0, 2, 1).reshape(3 * nd, months)
        if values.size and (values.min() < 0 or values.max() > self.DENSE_MAX_VALUE):
            return False
        top = int(values.max()) + 1 if values.size else 1
        h = self._dense_h
        if h.shape[0] != 3 * nd or h.shape[1] < months or h.shape[2] < top:
            h = self._dense_h = _grown(h if h.shape[0] == 3 * nd else np.zeros((3 * nd, 0, 0), np.int64),
                                       (3 * nd, max(months, h.shape[1]), max(top, h.shape[2])))
        h[np.arange(3 * nd)[:, None], np.arange(months)[None, :], values] += 1
        st = self._dense_stockout
        if st.shape[0] < months or st.shape[1] != nd:
            st = self._dense_stockout = _grown(st if st.shape[1] == nd else np.zeros((0, nd), np.int64),
                                               (max(months, st.shape[0]), nd))
        st[:months] += (rec.stockouts_monthly @ onehot) > 0
        if self._dense_n.size < months:
            self._dense_n = _grown(self._dense_n, (months,))
        self._dense_n[:months] += 1
        return True

    def _flush_monthly(self) -> None:
        """Move the dense histograms' counts into `monthly`, `month_stockout` and `month_n` (keys and
        counts as `_add_monthly_counters` gives them: plain ints, a (month, drug) stock-out key for every
        month a replicate reached, zero or not)."""
        if not self._dense_n.any():
            return
        reached = np.flatnonzero(self._dense_n).tolist()
        for m in reached:
            self.month_n[m] += int(self._dense_n[m])
        drugs = self._dense_drugs or ()
        h = self._dense_h
        for k, name in enumerate(("dispensed", "depot", "sites")):
            for j, d in enumerate(drugs):
                rows = h[k * len(drugs) + j]
                for m in range(rows.shape[0]):
                    values = np.flatnonzero(rows[m])
                    if values.size:
                        c = self._c(self.monthly, (name, m, d))
                        for v, n in zip(values.tolist(), rows[m, values].tolist(), strict=True):
                            c[v] += n
        for j, d in enumerate(drugs):
            for m in reached:
                if m < self._dense_stockout.shape[0]:
                    self.month_stockout[(m, d)] += int(self._dense_stockout[m, j])
        h[:] = 0
        self._dense_stockout[:] = 0
        self._dense_n[:] = 0

    def _add_monthly_counters(self, rec: SupplyRecord, idx: dict[str, list[int]]) -> None:
        # per drug, every month's sum over its presentations at once (integer counts: the same sums as
        # month by month), then plain ints into the counters (each month's counters found once per
        # replicate: `_month_counters`)
        months = rec.dispensed_monthly.shape[0]
        for m in range(months):
            self.month_n[m] += 1
        for d, ps in idx.items():
            dispensed, depot, sites, out = self._month_counters(d, months)
            for c, v in zip(dispensed, rec.dispensed_monthly[:, ps].sum(axis=1).tolist(), strict=True):
                c[v] += 1
            for c, v in zip(depot, rec.on_hand_depot_monthly[:, ps].sum(axis=1).tolist(), strict=True):
                c[v] += 1
            for c, v in zip(sites, rec.on_hand_sites_monthly[:, ps].sum(axis=1).tolist(), strict=True):
                c[v] += 1
            stockout = self.month_stockout
            for key, v in zip(out, (rec.stockouts_monthly[:, ps].sum(axis=1) > 0).tolist(), strict=True):
                stockout[key] += v

    def merge(self, other: SupplyAggregate) -> SupplyAggregate:
        """Add another aggregate's replicates to this one (in place; returns self)."""
        self._flush_monthly()
        other._flush_monthly()
        if other.presentations is None:
            return self
        if self.presentations is None:
            self.presentations, self.drugs, self.units_per_pack = (other.presentations, other.drugs,
                                                                   other.units_per_pack)
        elif other.presentations != self.presentations:
            raise ValueError("aggregates with different presentations cannot be merged")
        if other.target != self.target and self.replicates and other.replicates:
            raise ValueError("aggregates with different targets cannot be merged")
        self.target = other.target if not self.replicates else self.target
        self.replicates += other.replicates
        self.at_target += other.at_target
        for mine, theirs in ((self.pres, other.pres), (self.drug, other.drug), (self.monthly, other.monthly)):
            for k, c in theirs.items():
                self._c(mine, k).update(c)
        for mine, theirs in ((self.pres_stockout, other.pres_stockout),
                             (self.drug_stockout, other.drug_stockout),
                             (self.pres_missed, other.pres_missed), (self.pres_oos, other.pres_oos),
                             (self.drug_missed, other.drug_missed), (self.drug_oos, other.drug_oos),
                             (self.month_stockout, other.month_stockout), (self.month_n, other.month_n),
                             (self.end_reasons, other.end_reasons), (self.cycles, other.cycles),
                             (self.treatment, other.treatment)):
            mine.update(theirs)
        return self

    def _made(self, table: dict, fig: str, key: str) -> Counter:
        """Packs released per replicate (`fig` "manufacture" or "released"), over the replicates that
        reach the target, or over all replicates when none does."""
        if self.at_target > 0:
            return table.get((f"{fig}_at_target", key), Counter())
        return table.get((fig, key), Counter())

    @property
    def packs_basis(self) -> str:
        if self.target is None:
            return "all_replicates"
        return "replicates_reaching_target" if self.at_target > 0 else "all_replicates_none_reached_target"

    @staticmethod
    def _order(drugs: tuple[str, ...]) -> list[str]:
        """The drugs of the presentations, in the order they first appear."""
        return list(dict.fromkeys(drugs))

    def _drugs(self) -> list[str]:
        return self._order(self.drugs)

    def summary(self) -> dict[str, Any]:
        """The DESIGN.md `supply` key: {drug: {units_p50, units_p90, units_p95, stockout_probability,
        waste_p50}} in packs (summed over the drug's presentations), plus a few extra figures."""
        out: dict[str, Any] = {}
        n = max(self.replicates, 1)
        for d in self._drugs():
            man = self._made(self.drug, "manufacture", d)
            out[d] = {
                "units_p50": quantile(man, 0.5),
                "units_p90": quantile(man, 0.9),
                "units_p95": quantile(man, 0.95),
                "stockout_probability": self.drug_stockout[d] / n,
                "waste_p50": quantile(self.drug[("waste_milli", d)], 0.5) / MILLI,
                "dispensed_p50": quantile(self.drug[("dispensed", d)], 0.5),
                "patient_days_without_drug_mean": _mean(self.drug[("days_without_milli", d)]) / MILLI,
                "unit": "packs",
                "packs_basis": self.packs_basis,
                "replicates_reaching_target": self.at_target,
                # a failed dispensing is missed (stock upstream) or out of stock (none upstream)
                "missed_dispensing_probability": self.drug_missed[d] / n,
                "out_of_stock_probability": self.drug_oos[d] / n,
                # means add up over a drug's presentations (quantiles do not): packs per replicate
                "manufacture_packs_mean": _mean(man),
                "dispensed_packs_mean": _mean(self.drug[("dispensed", d)]),
                "waste_packs_mean": _mean(self.drug[("waste_milli", d)]) / MILLI,
                "waste_packs_p50": quantile(self.drug[("waste_milli", d)], 0.5) / MILLI,
            }
        return out

    def treatment_summary(self) -> dict[str, Any]:
        """The `run` summary's `treatment` key, pooled over every replicate's treated patients."""
        t = self.treatment
        n = t.get("patients", 0)

        def share(key: str) -> float | None:
            return t.get(key, 0) / n if n else None

        return {
            "patients": n,
            "progression_free_12m": share("progression_free_12m"),
            "progression_free_24m": share("progression_free_24m"),
            "progression_free_36m": share("progression_free_36m"),
            "months_on_treatment_mean": t.get("months_on_treatment_milli", 0) / MILLI / n if n else None,
            "cap_reached_fraction": share("reached_cap"),
            "on_treatment_at_horizon_fraction": share("on_treatment_at_horizon"),
        }

    def _only_dense_monthly(self) -> bool:
        """Every record's monthly figures are in the dense histograms (none in the Counters)."""
        return bool(self._dense_n.any()) and not self.monthly and not self.month_n and not self.month_stockout

    def _monthly_frames_dense(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """drug_demand and inventory straight from the dense histograms, all quantiles at once: the rows,
        order and values of the Counters' loop in `frames` (the same operations on the same integers:
        `quantile`'s position (n-1)q, the first value whose cumulative count exceeds it, and
        a + (h - lo)(b - a) in float64), without moving ~1,000 histograms into Counters and sorting each
        (~0.1 s of the run's serial end at 1,000 replicates)."""
        drugs = self._drugs()
        dense = list(self._dense_drugs or ())
        nd, months = len(dense), np.flatnonzero(self._dense_n)
        h = self._dense_h
        # rows [month, series, drug] in the loop's order: dispensed, depot, sites for each drug
        cols = [k * nd + dense.index(d) for k in range(3) for d in drugs]
        counts = h[:, months, :][cols].transpose(1, 0, 2)  # [month, series x drug, value]
        n = self._dense_n[months].astype(np.float64)[:, None]
        cum = np.cumsum(counts, axis=2)

        def at(i: np.ndarray) -> np.ndarray:  # the first value whose cumulative count exceeds i
            return np.argmax(cum > i[:, :, None], axis=2).astype(np.float64)

        q = {}
        for p in (0.1, 0.5, 0.9):
            pos = (n - 1) * p
            lo = np.floor(pos)
            a, b = at(np.broadcast_to(lo, cum.shape[:2])), at(np.broadcast_to(np.minimum(lo + 1, n - 1),
                                                                              cum.shape[:2]))
            q[p] = a + (pos - lo) * (b - a)
        m_col = months.astype(np.int64)
        nm, ndr = months.size, len(drugs)
        demand = pl.DataFrame({
            "month": np.repeat(m_col, ndr), "drug": drugs * nm,
            **{f"units_p{round(p * 100)}": q[p][:, :ndr].ravel() for p in (0.1, 0.5, 0.9)}},
            schema={"month": pl.Int64, "drug": pl.Utf8, "units_p10": pl.Float64, "units_p50": pl.Float64,
                    "units_p90": pl.Float64})
        # inventory: for each month, drug, location (depot, sites)
        so = self._dense_stockout[months][:, [dense.index(d) for d in drugs]] / self._dense_n[months][:, None]
        loc_q = {p: np.stack([q[p][:, ndr:2 * ndr], q[p][:, 2 * ndr:]], axis=2).ravel() for p in q}
        inventory = pl.DataFrame({
            "month": np.repeat(m_col, 2 * ndr), "location": ["depot", "sites"] * (nm * ndr),
            "drug": [d for d in drugs for _ in range(2)] * nm,
            **{f"on_hand_p{round(p * 100)}": loc_q[p] for p in (0.1, 0.5, 0.9)},
            "stockout_probability": np.stack([np.zeros_like(so), so], axis=2).ravel()},
            schema={"month": pl.Int64, "location": pl.Utf8, "drug": pl.Utf8, "on_hand_p10": pl.Float64,
                    "on_hand_p50": pl.Float64, "on_hand_p90": pl.Float64, "stockout_probability": pl.Float64})
        return demand, inventory

    def frames(self) -> dict[str, pl.DataFrame]:
        """{"supply", "drug_demand", "inventory"}: file stems -> frames (columns: docs/outputs.md)."""
        dense = self.dense_frames and self._only_dense_monthly()
        if not dense:
            self._flush_monthly()
        n = max(self.replicates, 1)
        rows = []
        for p, pid in enumerate(self.presentations or ()):
            q = {fig: self.pres[(fig, pid)] for fig in self.PER_PRESENTATION}
            rows.append({
                "drug": self.drugs[p],
                "presentation": pid,
                "dispensed_p50": quantile(q["dispensed"], 0.5),
                "shipped_p50": quantile(q["shipped"], 0.5),
                "wasted_expiry_p50": quantile(q["wasted_expiry"], 0.5),
                "wasted_returns_p50": quantile(q["returned_units"], 0.5) / self.units_per_pack[p],
                "manufacture_p50": quantile(made := self._made(self.pres, "released", pid), 0.5),
                "manufacture_p90": quantile(made, 0.9),
                "manufacture_p95": quantile(made, 0.95),
                "stockout_probability": self.pres_stockout[pid] / n,
                "shipments_p50": quantile(q["shipments_with"], 0.5),
                "units_per_pack": self.units_per_pack[p],
                "missed_dispensing_probability": self.pres_missed[pid] / n,
                "out_of_stock_probability": self.pres_oos[pid] / n,
                "failed_dispensings_mean": _mean(q["stockout_events"]),
                "missed_dispensings_mean": _mean(q["missed_events"]),
                "out_of_stock_dispensings_mean": _mean(q["out_of_stock_events"]),
                "manufacture_packs_mean": _mean(q["released"]),
                "dispensed_packs_mean": _mean(q["dispensed"]),
                "waste_packs_mean": _mean(self.pres[("waste_milli", pid)]) / MILLI,
            })
        supply = pl.DataFrame(rows, schema={
            "drug": pl.Utf8, "presentation": pl.Utf8, "dispensed_p50": pl.Float64, "shipped_p50": pl.Float64,
            "wasted_expiry_p50": pl.Float64, "wasted_returns_p50": pl.Float64, "manufacture_p50": pl.Float64,
            "manufacture_p90": pl.Float64, "manufacture_p95": pl.Float64, "stockout_probability": pl.Float64,
            "shipments_p50": pl.Float64, "units_per_pack": pl.Int64,
            "missed_dispensing_probability": pl.Float64, "out_of_stock_probability": pl.Float64,
            "failed_dispensings_mean": pl.Float64, "missed_dispensings_mean": pl.Float64,
            "out_of_stock_dispensings_mean": pl.Float64, "manufacture_packs_mean": pl.Float64,
            "dispensed_packs_mean": pl.Float64, "waste_packs_mean": pl.Float64})
        if dense:
            demand_f, inv_f = self._monthly_frames_dense()
            return {"supply": supply, "drug_demand": demand_f, "inventory": inv_f}
        demand, inventory = [], []
        for m in sorted(self.month_n):
            for d in self._drugs():
                c = self.monthly[("dispensed", m, d)]
                demand.append({"month": m, "drug": d, "units_p10": quantile(c, 0.1),
                               "units_p50": quantile(c, 0.5), "units_p90": quantile(c, 0.9)})
                for loc in ("depot", "sites"):
                    c = self.monthly[(loc, m, d)]
                    so = self.month_stockout[(m, d)] / self.month_n[m] if loc == "sites" else 0.0
                    inventory.append({"month": m, "location": loc, "drug": d,
                                      "on_hand_p10": quantile(c, 0.1), "on_hand_p50": quantile(c, 0.5),
                                      "on_hand_p90": quantile(c, 0.9), "stockout_probability": so})
        demand_f = pl.DataFrame(demand, schema={"month": pl.Int64, "drug": pl.Utf8, "units_p10": pl.Float64,
                                                "units_p50": pl.Float64, "units_p90": pl.Float64})
        inv_f = pl.DataFrame(inventory, schema={
            "month": pl.Int64, "location": pl.Utf8, "drug": pl.Utf8, "on_hand_p10": pl.Float64,
            "on_hand_p50": pl.Float64, "on_hand_p90": pl.Float64, "stockout_probability": pl.Float64})
        return {"supply": supply, "drug_demand": demand_f, "inventory": inv_f}
