"""One replicate of treatment and supply: `simulate_replicate(...) -> SupplyRecord`.

The recruitment simulation produces the enrolments (first-dose day, site, BSA) and the sites' opening
days; treatment and supply run afterwards in their own simpy environment (supply/model.py), because
nothing in treatment or supply changes who is recruited or when. Same inputs and streams, same record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from hn005_sim.supply.aggregate import SupplyAggregate  # the Monte Carlo finds it next to simulate_replicate
from hn005_sim.supply.config import SupplyConfig
from hn005_sim.supply.model import EnrolmentRow, SiteRow, SupplyModel
from hn005_sim.supply.record import SupplyRecord
from hn005_sim.treatment.config import RegimenConfig
from hn005_sim.treatment.course import DAYS_PER_MONTH

ENROLMENT_COLUMNS = ("patient_id", "site", "region", "day", "bsa_m2")
OPTIONAL_ENROLMENT_COLUMNS = ("weight_kg", "crcl_ml_min")  # for per-kg and AUC doses, when given
SITE_COLUMNS = ("site", "region", "activation_day", "close_day")


def _rows(data: Any, columns: Sequence[str]) -> list[dict]:
    if isinstance(data, pl.DataFrame):
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise ValueError(f"missing columns {missing}; expected {list(columns)}")
        cols = data.select(columns).to_dict(as_series=False)  # (column lists: faster than to_dicts)
        return [dict(zip(columns, values, strict=True)) for values in zip(*cols.values(), strict=True)]
    out = []
    for row in data:
        if isinstance(row, Mapping):
            out.append({c: row[c] for c in columns})
        else:
            out.append(dict(zip(columns, row, strict=True)))
    return out


def _sites(sites: Iterable) -> list[SiteRow]:
    if isinstance(sites, list) and all(r.__class__ is SiteRow for r in sites):  # (recruitment_rows)
        return list(sites)
    return [SiteRow(str(r["site"]), str(r["region"]),
                    None if r["activation_day"] is None else float(r["activation_day"]),
                    None if r["close_day"] is None else float(r["close_day"]))
            for r in _rows(sites, SITE_COLUMNS)]


def _enrolments(enrolments: Iterable) -> list[EnrolmentRow]:
    if isinstance(enrolments, list) and all(r.__class__ is EnrolmentRow for r in enrolments):
        return sorted(enrolments, key=lambda e: (e.day, e.patient_id))  # (recruitment_rows)
    optional = [c for c in OPTIONAL_ENROLMENT_COLUMNS
                if (c in enrolments.columns if isinstance(enrolments, pl.DataFrame) else False)]
    rows = [EnrolmentRow(int(r["patient_id"]), str(r["site"]), str(r["region"]), float(r["day"]),
                         float(r["bsa_m2"]), **{c: None if r[c] is None else float(r[c]) for c in optional})
            for r in _rows(enrolments, (*ENROLMENT_COLUMNS, *optional))]
    rows.sort(key=lambda e: (e.day, e.patient_id))
    return rows


def recruitment_rows(rec: Any, sites: Sequence) -> tuple[list[EnrolmentRow], list[SiteRow]]:
    """A recruitment replicate's enrolments and sites (recruitment.des `ReplicateRecord` and its drawn
    sites) as the rows `simulate_replicate` takes: the values `_enrolments` and `_sites` read from the
    frames the Monte Carlo used to build (patient id = enrolment order; floats as Python floats; the
    dosing covariates weight and CrCl where the record has them), without building the frames."""
    names = [x.name for x in sites]
    regions = [x.region for x in sites]
    covs = {k: np.asarray(v, dtype=float).tolist() for k, v in (rec.enrol_covariates or {}).items()
            if k in OPTIONAL_ENROLMENT_COLUMNS}
    enrol_site = np.asarray(rec.enrol_site).tolist()
    day = np.asarray(rec.enrol_day, dtype=float).tolist()
    bsa = np.asarray(rec.enrol_bsa_m2, dtype=float).tolist()
    # the rows' fields set directly, by keyword (the frozen dataclass's __init__ sets each through
    # object.__setattr__: ~2.5x the cost; a zip of the names per row ~2x); the same rows as
    # EnrolmentRow(...) (tests/supply/test_rows.py)
    n = len(day)
    weight = covs.get("weight_kg") or [None] * n
    crcl = covs.get("crcl_ml_min") or [None] * n
    new = object.__new__
    enrol = []
    for i, (j, d, b, w, c) in enumerate(zip(enrol_site, day, bsa, weight, crcl, strict=True)):
        row = new(EnrolmentRow)
        row.__dict__.update(patient_id=i, site=names[j], region=regions[j], day=d, bsa_m2=b, weight_kg=w,
                            crcl_ml_min=c)
        enrol.append(row)
    site_rows = [SiteRow(str(x.name), str(x.region),
                         None if x.activation_day is None else float(x.activation_day),
                         None if x.close_day is None else float(x.close_day)) for x in sites]
    return enrol, site_rows


def simulate_supply(regimen: RegimenConfig, supply: SupplyConfig, enrolments, sites,
                    horizon_day: float | None, rng_treatment: np.random.Generator,
                    rng_supply: np.random.Generator, levels=None,
                    weights: dict[str, float] | None = None) -> SupplyRecord:
    """Treatment courses and the supply chain for one replicate (see `simulate_replicate`).

    `levels` overrides the tiers' (initial, trigger, max) packs, the same at every site; None: each
    site's own from the config and its demand weight. `weights`: {region: predicted demand relative to
    the busiest site} (supply/levels.py `demand_weights`); None: every site weight 1.
    """
    site_rows = _sites(sites)
    known = {s.site for s in site_rows}
    enrol = _enrolments(enrolments)
    unknown = sorted({e.site for e in enrol} - known)
    if unknown:
        raise ValueError(f"enrolments at sites not in `sites`: {unknown[:5]}")
    if horizon_day is None:
        last = max((e.day for e in enrol), default=0.0)
        horizon_day = last + supply.followup_months * DAYS_PER_MONTH
    m = SupplyModel(regimen, supply, site_rows, enrol, horizon_day, rng_treatment, rng_supply, levels,
                    weights)
    m.run()
    # stock on hand at the horizon: each site's totals summed over the sites (integers: any order)
    on_sites = np.array([st.totals for st in m.stock], dtype=np.int64).reshape(len(m.stock), m.P).sum(axis=0)
    pres = supply.presentations
    return SupplyRecord(
        presentations=tuple(p.id for p in pres),
        drugs=tuple(p.drug for p in pres),
        units_per_pack=m.units_per_pack.copy(),
        horizon_day=float(horizon_day),
        released=m.released,
        shipped=m.shipped,
        shipments_with=m.shipments_with,
        shipments=m.shipments,
        emergency_shipments=m.emergency_shipments,
        dispensed=m.dispensed,
        wasted_expiry=m.wasted_expiry_depot + m.wasted_expiry_sites,
        wasted_expiry_depot=m.wasted_expiry_depot,
        returned_units=m.returned_units,
        taken_units=m.taken_units,
        held_units=m.held_units,
        on_hand_depot=np.array(m.depot.totals, dtype=np.int64),
        on_hand_sites=on_sites,
        in_transit=m.in_transit.sum(axis=0),
        stockout_events=m.stockout_events,
        missed_events=m.missed_events,
        out_of_stock_events=m.out_of_stock_events,
        patient_days_without={d: float(m.patient_days_without[i]) for i, d in enumerate(regimen.drug_names)},
        min_dispense_margin_days=m.min_dispense_margin,
        dispensed_monthly=m.dispensed_monthly,
        on_hand_depot_monthly=m.on_hand_depot_monthly,
        on_hand_sites_monthly=m.on_hand_sites_monthly,
        stockouts_monthly=m.stockouts_monthly,
        patients=len(enrol),
        cycles_given=m.cycles_given,
        end_reasons=dict(sorted(m.end_reasons.items())),
        treatment=m.treatment,
    )


def simulate_replicate(scenario, enrolments, sites, horizon_day: float | None,
                       rng_treatment: np.random.Generator, rng_supply: np.random.Generator) -> SupplyRecord:
    """Treatment and supply for one replicate of a scenario.

    enrolments: polars frame or rows of (patient_id, site, region, day, bsa_m2), `day` = first dose, in
    days from trial start, or a list of `EnrolmentRow` (`recruitment_rows`). sites: rows of (site,
    region, activation_day or None if never activated, close_day or None), or a list of `SiteRow`.
    horizon_day: when the supply simulation stops; None = last enrolment + `supply.followup_months`
    (covers the courses of the last patients). Streams: the replicate's
    `treatment` and `supply` streams (hn005_sim.rng).
    """
    from hn005_sim.supply.levels import demand_weights

    return simulate_supply(scenario.regimen, scenario.supply, enrolments, sites, horizon_day,
                           rng_treatment, rng_supply, weights=demand_weights(scenario))


__all__ = ["SupplyAggregate", "SupplyRecord", "recruitment_rows", "simulate_replicate", "simulate_supply"]
