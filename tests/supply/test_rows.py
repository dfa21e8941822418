"""`recruitment_rows` (supply/simulate.py): the rows the Monte Carlo gives the supply model are those the
polars frames it used to build gave (the frames' code is kept here as the reference)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl

from hn005_sim import rng
from hn005_sim.montecarlo import _source_for, run_replicate
from hn005_sim.recruitment.des import simulate_recruitment
from hn005_sim.supply import simulate
from hn005_sim.supply.simulate import _enrolments, _sites, recruitment_rows


def _frames(rec, sites):
    """montecarlo.run_replicate's frames before `recruitment_rows` replaced them (its code, verbatim)."""
    enrolments = pl.DataFrame({
        "patient_id": np.arange(rec.enrolled, dtype=np.int64),
        "site": [sites[i].name for i in rec.enrol_site],
        "region": [sites[i].region for i in rec.enrol_site],
        "day": rec.enrol_day,
        "bsa_m2": rec.enrol_bsa_m2,
    }, schema={"patient_id": pl.Int64, "site": pl.String, "region": pl.String, "day": pl.Float64,
               "bsa_m2": pl.Float64})
    if rec.enrol_covariates:
        enrolments = enrolments.with_columns(
            pl.Series(k, np.asarray(v, dtype=float)) for k, v in rec.enrol_covariates.items())
    site_frame = pl.DataFrame({
        "site": [s.name for s in sites],
        "region": [s.region for s in sites],
        "activation_day": [s.activation_day for s in sites],
        "close_day": [s.close_day for s in sites],
    }, schema={"site": pl.String, "region": pl.String, "activation_day": pl.Float64, "close_day": pl.Float64})
    return enrolments, site_frame


def _same(a, b) -> bool:
    # repr: NaN equal to NaN, 1 and 1.0 told apart
    return [repr(x) for x in a] == [repr(x) for x in b]


def test_rows_equal_the_frames_on_recruitment_replicates(base):
    source = _source_for(base)
    for r in range(3):
        rec, sites = simulate_recruitment(base, source, 5, r)
        assert rec.enrolled > 0
        e_rows, s_rows = recruitment_rows(rec, sites)
        e_frame, s_frame = _frames(rec, sites)
        assert _same(_enrolments(e_rows), _enrolments(e_frame))
        assert _same(_sites(s_rows), _sites(s_frame))


def test_rows_carry_weight_and_crcl_and_drop_other_covariates():
    sites = [SimpleNamespace(name="A", region="north", activation_day=0, close_day=None),
             SimpleNamespace(name="B", region="south", activation_day=None, close_day=None),
             SimpleNamespace(name="C", region="south", activation_day=12.5, close_day=400)]
    rec = SimpleNamespace(
        enrolled=4, enrol_site=np.array([2, 0, 0, 2]), enrol_day=np.array([30.0, 1.5, 1.5, 90.25]),
        enrol_bsa_m2=np.array([1.7, 1.9, 1.6, 2.0]),
        enrol_covariates={"weight_kg": np.array([60.0, 70.5, 55.0, np.nan]),
                          "crcl_ml_min": np.array([90, 85, 100, 70]), "height_cm": np.array([1.0, 2, 3, 4])})
    e_rows, s_rows = recruitment_rows(rec, sites)
    e_frame, s_frame = _frames(rec, sites)
    got = _enrolments(e_rows)
    assert _same(got, _enrolments(e_frame)) and _same(_sites(s_rows), _sites(s_frame))
    assert [e.patient_id for e in got] == [1, 2, 0, 3]  # by first dose, then id
    assert got[0].weight_kg == 70.5 and got[0].crcl_ml_min == 85.0 and got[0].site == "A"
    assert s_rows[1].activation_day is None and s_rows[2].close_day == 400.0


def test_a_replicate_from_rows_is_the_replicate_from_frames(base):
    """The supply record of run_replicate (rows) equals simulate_replicate on the old frames."""
    source = _source_for(base)
    rec, sites = simulate_recruitment(base, source, 2, 1)
    e_frame, s_frame = _frames(rec, sites)
    want = simulate.simulate_replicate(base, e_frame, s_frame, None, rng.stream(2, 1, "treatment"),
                                       rng.stream(2, 1, "supply"))
    got = run_replicate(base, 2, 1, source).supply
    for field in want.__dataclass_fields__:
        a, b = getattr(want, field), getattr(got, field)
        assert (np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b), field
