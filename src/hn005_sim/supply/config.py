"""The `supply` section: presentations, lots, the depot, shipping, site resupply tiers.

A *pack* is the dispensable unit (a kit): a box of capsules, a vial, a bottle of tablets. Every supply
figure is counted in packs except returns, which are counted in units (capsules, tablets, vials) and
reported as pack equivalents. Site stock levels are given in *cycles*: how many full-dose cycles of a
reference patient (`reference_bsa_m2`) the stock covers, converted to packs per presentation, so one
pair of numbers works for every drug.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hn005_sim.scenario.base import Strict
from hn005_sim.scenario.dists import Dist


class Presentation(Strict):
    id: str = Field(min_length=1, description="e.g. capecitabine_500mg")
    drug: str = Field(min_length=1, description="a drug of the regimen (regimen.drugs)")
    strength_mg: float = Field(gt=0, description="per capsule, tablet or vial")
    unit: str = Field(description="capsule, tablet, vial")
    units_per_pack: int = Field(ge=1)
    shelf_life_months: float = Field(gt=0)
    age_at_release_months: float = Field(ge=0, description="months of shelf life used before release")
    lot_size_packs: int = Field(ge=1, description="packs per released lot")
    depot_reorder_packs: int = Field(ge=0, description="release a lot when depot stock falls below this")
    initial_lots: int = Field(ge=0, description="lots released to the depot before the first site opens")
    site_min_packs: int = Field(default=0, ge=0, description="floor on site trigger/max levels, packs")
    source: str = Field(min_length=3)


class Depot(Strict):
    release_lead_days: float = Field(ge=0, description="from a release order to stock at the depot")
    do_not_ship_days: float = Field(ge=0, description="lots this close to expiry are not shipped")
    do_not_dispense_days: float = Field(ge=0, description="lots this close to expiry are not dispensed")
    network_reorder: bool = Field(
        default=True, description="echelon reorder: the depot's reorder point adds the max levels of the "
        "sites open (or opening within the release lead time), its position their stock and transit")
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _windows(self):
        if self.do_not_ship_days < self.do_not_dispense_days:
            raise ValueError(
                f"do_not_ship_days ({self.do_not_ship_days}) must be >= do_not_dispense_days "
                f"({self.do_not_dispense_days}): a shipped lot must still be dispensable on arrival"
            )
        return self


class Shipping(Strict):
    lead_days: Dist = Field(description="depot -> site, days")
    emergency_lead_days: Dist = Field(description="courier after a stock-out, days")
    lead_days_by_region: dict[str, Dist] = Field(default_factory=dict)


class Tier(Strict):
    """Resupply levels for the sites of some regions (empty `regions`: every other site)."""

    name: str = Field(min_length=1)
    regions: list[str] = Field(default_factory=list)
    initial_cycles: float = Field(ge=0, description="seeded at activation")
    trigger_cycles: float = Field(ge=0, description="ship when stock + in transit falls below this")
    max_cycles: float = Field(gt=0, description="ship up to this")
    predictive: bool = Field(default=False, description="raise the max to the active patients' forecast")
    forecast_days: float = Field(default=42, gt=0, description="horizon of the predictive forecast")
    demand_scaled: bool = Field(
        default=True, description="scale initial/trigger/max and floors by the site's predicted demand "
        "(its region's referral rate over the busiest region's)")
    floor_scale: float = Field(default=1.0, ge=0, description="x every presentation's site_min_packs")
    min_patient_cycles: float = Field(
        default=1.0, ge=0, description="levels never below this many of one patient's cycle, packs")
    safety_patient_cycles: float = Field(
        default=1.0, ge=0, description="predictive levels carry this many of one patient's cycle above "
        "the active patients' forecast (covers a visit while a shipment is on its way)")
    expiry_cover_lead_times: float = Field(
        default=2.0, ge=0, description="stock counts in the site's position only if still dispensable "
        "after the review interval + this many mean shipping lead times")
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _levels(self):
        if self.max_cycles < self.trigger_cycles:
            raise ValueError(
                f"max_cycles ({self.max_cycles}) must be >= trigger_cycles ({self.trigger_cycles})")
        return self


class SupplyConfig(Strict):
    presentations: list[Presentation] = Field(min_length=1)
    depot: Depot
    shipping: Shipping
    tiers: list[Tier] = Field(min_length=1)
    partial_packs: Literal["carry_over", "return_each_visit"] = Field(
        description="carry_over: patients keep opened packs for the next cycle; return_each_visit: unused "
        "units come back at every visit and are destroyed"
    )
    reference_bsa_m2: float = Field(gt=0, description="patient whose full-dose cycle defines 'one cycle'")
    reference_weight_kg: float | None = Field(
        default=None, gt=0, description="the reference patient's weight, for per-kg doses")
    reference_crcl_ml_min: float | None = Field(
        default=None, gt=0, description="the reference patient's CrCl, for AUC (Calvert) doses")
    review_days: float = Field(gt=0, description="interval of the IRT's stock review at every site")
    followup_months: float = Field(gt=0, description="supply horizon after the last enrolment if none given")
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _unique(self):
        ids = [p.id for p in self.presentations]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"presentation ids must be unique, repeated: {', '.join(dup)}")
        keys = [(p.drug, p.strength_mg) for p in self.presentations]
        if len(set(keys)) != len(keys):
            raise ValueError("each (drug, strength_mg) must have exactly one presentation")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")
        if not any(not t.regions for t in self.tiers):
            raise ValueError("one tier must have empty `regions` (the default for every other site)")
        return self

    def reference_covariates(self) -> dict[str, float]:
        """The reference patient's dosing covariates (those configured)."""
        out = {"bsa_m2": self.reference_bsa_m2}
        if self.reference_weight_kg is not None:
            out["weight_kg"] = self.reference_weight_kg
        if self.reference_crcl_ml_min is not None:
            out["crcl_ml_min"] = self.reference_crcl_ml_min
        return out

    def tier_of(self, region: str) -> int:
        """Index of the tier of a site in `region`: the first naming the region, else the default."""
        for i, t in enumerate(self.tiers):
            if region in t.regions:
                return i
        return next(i for i, t in enumerate(self.tiers) if not t.regions)
