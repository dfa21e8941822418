"""supply/model.py's set-up and totals as they were at the end of issue 16's phase 3 (main at 031fbb0),
kept verbatim as the reference the phase-4 rewrites are tested against (tests/supply/
test_setup_rewrites.py): the plan's lists the event loop reads, and the totals after the run. Do not
optimise this file: it is the definition.

`old_plan_lists` is `SupplyModel.__init__`'s reading of the plan into lists; `OldTotals` holds the
methods, called on a model (`OldTotals._totals(model)` after its loop ran).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from hn005_sim.treatment.course import DAYS_PER_MONTH

_INT64_MAX = np.iinfo(np.int64).max
_EXACT_FLOAT_SUM = 2**53  # integers summed as floats below this are exact (`_totals`)


def _col_sums(a: np.ndarray) -> np.ndarray:
    """a.sum(axis=0) of an integer array of rows x P, summed along the long axis (numpy's sum over the
    rows of a few columns costs ~10x more here): the same integers."""
    return np.ascontiguousarray(a.T).sum(axis=1)


def old_plan_lists(self) -> dict:
    """`self._plan_lists` as `SupplyModel.__init__` built it (self: a model, its `plan` set)."""
    # the plan as Python lists, read visit by visit (numpy item access is slower than a list's)
    plan = self.plan
    L = {k: getattr(plan, k).tolist() for k in (
        "cycles", "offset", "gap_days", "other_on", "rate_changed", "end_offset_days", "cap_offset_days",
        "capped_columns", "toxicity_end", "end_reason")}
    L["units_per_pack"] = self.units_per_pack.tolist()
    # packs per cycle each cell needs (units / units per pack: float64 division of exact integers, so
    # the quotient a Python int / int gives), one row per cell that needs other units than the one
    # before (a patient's first included), and each cell's row
    changed = plan.rate_changed
    L["rate_rows"] = (plan.need[changed] / self.units_per_pack).tolist()
    L["rate_row_of"] = (np.cumsum(changed) - 1).tolist()
    L["items"] = OldTotals._visit_items(plan.packs)
    return L


class OldTotals:
    """The methods, to be called on a model after its loop ran (`OldTotals._totals(model)`)."""

    @staticmethod
    def _visit_items(packs: np.ndarray) -> list[list[tuple[int, int]]]:
        """The packs of each planned visit as (presentation, packs) pairs, one shared list per distinct row
        (few distinct rows: found by one integer key per row, the row's digits in base max + 1)."""
        cells, P = packs.shape
        base = int(packs.max(initial=0)) + 1
        if cells == 0 or packs.min() < 0 or base ** P >= 2**62:  # (keys would not be unique: tuples)
            keys = list(map(tuple, packs.tolist()))
            first: dict = {}
            for c, key in enumerate(keys):
                if key not in first:
                    first[key] = c
            rows = {key: [(p, n) for p, n in enumerate(packs[c].tolist()) if n] for key, c in first.items()}
            return [rows[key] for key in keys]
        keys = packs @ (base ** np.arange(P, dtype=np.int64))
        _, at, which = np.unique(keys, return_index=True, return_inverse=True)
        shared = np.empty(at.size, dtype=object)  # (one list per distinct row, picked for every cell at once)
        for j, row in enumerate(packs[at].tolist()):
            shared[j] = [(p, n) for p, n in enumerate(row) if n]
        return shared[which.reshape(-1)].tolist()

    def _treatment_counts(self, still_on: np.ndarray | None = None) -> dict[str, int]:
        """Integer counts of the courses of the patients who started treatment within the horizon (so
        pooled figures do not depend on the order replicates are added): progression-free at 12, 24 and
        36 months (the drawn progression time), months on treatment (first dose to the end of the last
        cycle given, cut at the horizon) in thousandths, and patients still on the capped drug at its cap
        (the investigator's review, e.g. penpulimab at 2 years). `still_on`: each patient on treatment
        at the horizon (as `_totals` finds it), or None to find it here."""
        start = np.array(self._days, dtype=float)
        treated = (start < self.horizon) & (self.n_given > 0)
        pfs_months = self.progression_days / DAYS_PER_MONTH
        out = {"patients": int(treated.sum())}
        for m in (12, 24, 36):
            out[f"progression_free_{m}m"] = int((treated & (pfs_months > m)).sum())
        idx = np.flatnonzero(treated)
        last = self.visit_day[self.plan.offset[idx] + self.n_given[idx] - 1]
        end = np.minimum(last + self.regimen.cycle_days, self.horizon)
        out["months_on_treatment_milli"] = int(np.rint((end - start[idx]) / DAYS_PER_MONTH * 1000).sum())
        out["reached_cap"] = int((treated & (self.cap_visit >= 0)).sum())
        if still_on is None:
            still_on = np.array([r in ("", "horizon") for r in self.reason], dtype=bool)
        out["on_treatment_at_horizon"] = int((treated & still_on).sum())
        return out

    def _totals(self) -> None:
        """Units taken, returned and held, and packs dispensed by month, from the plan and each patient's
        cycles given (the capped drug only before the cap)."""
        self.n_given = np.array(self.n_given, dtype=np.int64)
        self.visit_day = np.array(self.visit_day, dtype=float)
        plan, P = self.plan, self.P
        n = len(self.enrolments)
        pi, ck = plan.cell_patient, plan.cell_cycle  # patient and cycle of each cell
        cap = np.where(self.cap_visit >= 0, self.cap_visit, _INT64_MAX)
        given = ck < self.n_given[pi]
        mask = given[:, None] & ((ck < cap[pi])[:, None] | ~plan.capped_columns[None, :])
        self.taken_units = _col_sums(plan.taken * mask)
        returned = _col_sums(plan.returned * mask)
        has = self.n_given > 0
        last = plan.offset + np.maximum(self.n_given - 1, 0)
        final = plan.balance[np.minimum(last, max(pi.size - 1, 0))] * has[:, None] if pi.size else \
            np.zeros((n, P), dtype=np.int64)
        capped_before = (self.cap_visit >= 0) & (self.cap_visit < self.n_given)
        # the capped drug's balance went back at the first visit past the cap
        back = capped_before & (self.cap_visit > 0)
        at_cap = plan.balance[plan.offset[back] + self.cap_visit[back] - 1]
        returned += _col_sums(at_cap * plan.capped_columns)
        final[capped_before] *= ~plan.capped_columns
        on = np.array([r in ("", "horizon") for r in self.reason], dtype=bool)
        self.held_units = _col_sums(final[on])
        self.returned_units = returned + _col_sums(final[~on])
        self.cycles_given = int(self.n_given.sum())
        h = self.horizon
        # ("": still on treatment when the simulation stops; counted in the order first met, as before)
        self.end_reasons = dict(Counter([r or "horizon" for r, d in zip(self.reason, self._days, strict=True)
                                         if d < h]))
        self.treatment = OldTotals._treatment_counts(self, on)
        vd = self.visit_day  # (cells never visited are NaN: month 0, and not given)
        months = np.minimum((np.where(vd == vd, vd, 0.0) // DAYS_PER_MONTH).astype(np.int64),
                            self.n_months - 1)
        given_packs = plan.packs * mask
        if given_packs.size and given_packs.min() >= 0 and given_packs.sum() < _EXACT_FLOAT_SUM:
            # one bincount over (month, presentation) cells: float sums of integers below 2^53 are exact,
            # so the counts equal np.add.at's (three times slower here)
            cell = (months[:, None] * P + np.arange(P)).ravel()
            monthly = np.bincount(cell, weights=given_packs.ravel(), minlength=self.n_months * P)
            monthly = monthly.astype(np.int64).reshape(self.n_months, P)
        else:
            monthly = np.zeros((self.n_months, P), dtype=np.int64)
            np.add.at(monthly, months, given_packs)
        self.dispensed_monthly = monthly
        # packs dispensed: the visits' packs summed once here (the integer sum of what each visit took)
        self.dispensed = _col_sums(monthly)
        for name in ("released", "shipped", "shipments_with", "wasted_expiry_depot",
                     "wasted_expiry_sites"):
            setattr(self, name, np.array(getattr(self, name), dtype=np.int64))
        self.min_dispense_margin = np.array(self.min_dispense_margin, dtype=float)
        self.in_transit = np.array(self.transit, dtype=np.int64).reshape(len(self.sites), P)
