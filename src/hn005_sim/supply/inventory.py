"""Stock held at one location, lot by lot, first-expiry-first-out.

Quantities are whole packs. A lot inside the location's expiry window (do-not-ship at the depot,
do-not-dispense at a site) can never leave the location again, so it is written off as expiry waste at
the moment it enters the window (`purge`); stock on hand is therefore always usable stock.
"""

from __future__ import annotations

import bisect
import math


class Stock:
    """Packs by presentation index: a list of [expiry_day, lot_id, packs] sorted by expiry."""

    __slots__ = ("changed", "first", "lots", "moved", "totals", "window_days")

    def __init__(self, n_presentations: int, window_days: float):
        self.lots: list[list[list]] = [[] for _ in range(n_presentations)]
        self.totals = [0] * n_presentations
        self.window_days = float(window_days)
        # set by every change of the lots (and by the supply model when it changes them itself, or what
        # its weekly review of the site reads besides): the review skips a site with nothing new
        self.changed = True
        # set with `changed`, but cleared only by the supply model's echelon sums (`_network_all`) when
        # they take this stock's share in: the sums skip a site whose stock did not move since
        self.moved = True
        # the earliest expiry day of any lot held (inf when none): a lot of presentation p is inside the
        # window at `now` only if first - window_days <= now (subtraction is monotonic), so one
        # comparison settles every presentation's `purge` check while no first lot is that close.
        # Kept by every method that adds or removes a lot; the supply model changes packs in place only
        # in lots it leaves in the list
        self.first = math.inf

    def _first(self) -> None:
        self.first = min([lots[0][0] for lots in self.lots if lots], default=math.inf)

    def on_hand(self, p: int) -> int:
        return self.totals[p]

    def add(self, p: int, expiry_day: float, lot_id: int, packs: int) -> None:
        if packs <= 0:
            return
        self.changed = self.moved = True
        self.totals[p] += packs
        lots = self.lots[p]
        for lot in lots:
            if lot[1] == lot_id:
                lot[2] += packs
                return
        bisect.insort(lots, [expiry_day, lot_id, packs])
        if expiry_day < self.first:
            self.first = expiry_day

    def purge(self, p: int, now: float) -> int:
        """Write off lots that entered the window; returns packs wasted."""
        lots = self.lots[p]
        if not lots or lots[0][0] - self.window_days > now:
            return 0
        wasted = 0
        while lots and lots[0][0] - self.window_days <= now:
            wasted += lots.pop(0)[2]
        self.changed = self.moved = True
        self.totals[p] -= wasted
        self._first()
        return wasted

    def take(self, p: int, packs: int) -> list[tuple[float, int, int]]:
        """Remove up to `packs` packs, earliest expiry first; returns (expiry_day, lot_id, packs) taken."""
        out = []
        lots = self.lots[p]
        while packs > 0 and lots:
            self.changed = self.moved = True
            lot = lots[0]
            n = min(packs, lot[2])
            out.append((lot[0], lot[1], n))
            lot[2] -= n
            self.totals[p] -= n
            packs -= n
            if lot[2] == 0:
                lots.pop(0)
                if lot[0] == self.first:
                    self._first()
        return out

    def dispense(self, p: int, packs: int) -> float:
        """`take` for a dispensing that the caller knows is covered (packs <= on hand): returns the
        expiry day of the earliest-expiring pack taken (the one closest to its window)."""
        lots = self.lots[p]
        self.changed = self.moved = True
        self.totals[p] -= packs
        first = lots[0][0]
        while packs:
            lot = lots[0]
            if lot[2] > packs:
                lot[2] -= packs
                return first
            packs -= lot[2]
            lots.pop(0)
            if lot[0] == self.first:
                self._first()
        return first
