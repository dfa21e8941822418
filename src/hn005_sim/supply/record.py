"""What one replicate's supply chain did (`SupplyRecord`), produced by supply/simulate.py and summed
across replicates by supply/aggregate.py.

Its own module so that simulate and aggregate both import it without importing each other (they used to
form an import circle, hidden behind a TYPE_CHECKING import and an import at the end of simulate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SupplyRecord:
    """What one replicate's supply chain did. Arrays are indexed by presentation (order of
    `presentations`); counts are packs unless the name says units; days are simulation days."""

    presentations: tuple[str, ...]
    drugs: tuple[str, ...]  # the drug of each presentation
    units_per_pack: np.ndarray
    horizon_day: float
    released: np.ndarray  # packs released to the depot = packs to manufacture
    shipped: np.ndarray
    shipments_with: np.ndarray  # shipments carrying the presentation
    shipments: int
    emergency_shipments: int
    dispensed: np.ndarray
    wasted_expiry: np.ndarray  # depot + sites, written off on entering the do-not-ship/-dispense window
    wasted_expiry_depot: np.ndarray
    returned_units: np.ndarray  # units dispensed and not taken, returned and destroyed
    taken_units: np.ndarray
    held_units: np.ndarray  # units with patients still on treatment at the horizon
    on_hand_depot: np.ndarray  # at the horizon
    on_hand_sites: np.ndarray
    in_transit: np.ndarray
    stockout_events: np.ndarray  # cycle visits that found the presentation short (failed dispensings)
    missed_events: np.ndarray  # ... while the depot or a shipment on its way could cover it
    out_of_stock_events: np.ndarray  # ... while neither could: stockout = missed + out_of_stock
    patient_days_without: dict[str, float]  # per drug
    min_dispense_margin_days: np.ndarray  # least (expiry - dispensing day) of any pack dispensed
    dispensed_monthly: np.ndarray  # months x presentations
    on_hand_depot_monthly: np.ndarray
    on_hand_sites_monthly: np.ndarray  # stock at sites + in transit to them, at each month start
    stockouts_monthly: np.ndarray  # months x presentations: visits that found it short
    patients: int
    cycles_given: int
    end_reasons: dict[str, int] = field(default_factory=dict)
    treatment: dict[str, int] = field(default_factory=dict)  # SupplyModel._treatment_counts

    @property
    def wasted_returns(self) -> np.ndarray:
        """Returned units as pack equivalents."""
        return self.returned_units / self.units_per_pack

    def drug_total(self, values: np.ndarray, drug: str) -> float:
        return float(sum(v for v, d in zip(values, self.drugs, strict=True) if d == drug))

    def stockout(self, drug: str | None = None, events: np.ndarray | None = None) -> bool:
        """Any failed dispensing of the drug (of any drug with None); `events`: another event counter
        (missed_events, out_of_stock_events) instead of all stock-out events."""
        ev = self.stockout_events if events is None else events
        return bool(sum(n for n, d in zip(ev, self.drugs, strict=True) if drug is None or d == drug))
