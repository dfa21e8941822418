"""Regimens as data beyond ALTER-HN005: AK105-304's IV drugs, phases and platinum choice planned in bulk
equal the cycle-by-cycle reference; per-kg and capped doses by hand; bad regimens refused in one line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hn005_sim.cli import main
from hn005_sim.scenario.load import load_scenario
from hn005_sim.treatment.course import (
    DAYS_PER_MONTH,
    PatientCourse,
    draw_courses,
    patient_units,
    plan_courses,
)
from hn005_sim.treatment.dosing import drug_units

from .conftest import with_drug

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ak105():
    return load_scenario(ROOT / "scenarios" / "ak105_304.toml")[0]


def test_platinum_choice_shares(ak105):
    n = 40_000
    draws = draw_courses(ak105.regimen, n, 2, np.random.default_rng(5))
    cis, carbo = draws.given["cisplatin"], draws.given["carboplatin"]
    assert not (cis & carbo).any() and (cis | carbo).all()  # exactly one platinum per patient
    assert abs(cis.mean() - 0.7) < 4 * math.sqrt(0.7 * 0.3 / n)


def test_plan_matches_patient_course(ak105):
    """Every planned cycle before the 2-year cap equals PatientCourse.visit: gemcitabine on days 1 and 8
    and the patient's platinum in induction only, penpulimab throughout, reductions and stops."""
    reg = ak105.regimen
    for name in ("gemcitabine", "cisplatin", "carboplatin"):
        reg = with_drug(reg, name, toxicity={"reduce_per_cycle": 0.3, "stop_per_cycle": 0.05})
    reg = with_drug(reg, "penpulimab", toxicity={"stop_per_cycle": 0.05})
    keys = [(p.drug, float(p.strength_mg)) for p in ak105.supply.presentations]
    upp = np.ones(len(keys), dtype=np.int64)
    n, horizon = 80, 3000.0
    K = int(horizon // reg.cycle_days) + 2
    draws = draw_courses(reg, n, K, np.random.default_rng(8))
    rng = np.random.default_rng(9)
    cov = {"bsa_m2": rng.uniform(1.3, 2.1, n), "crcl_ml_min": rng.uniform(40, 160, n)}
    plan = plan_courses(reg, draws, patient_units(reg, cov), keys, upp, True)
    cap_day = 24 * DAYS_PER_MONTH
    seen = set()
    for i in range(n):
        c = PatientCourse(reg, draws, i, 0.0, {k: float(v[i]) for k, v in cov.items()}, horizon)
        orders, day = [], 0.0
        while (o := c.visit(day)) is not None:
            orders.append(o)
            day += reg.cycle_days + c.delay_before()
        before_cap = [o for o in orders if o.day < cap_day]
        assert len(before_cap) <= plan.cycles[i]
        for k, o in enumerate(before_cap):
            row = plan.need[plan.offset[i] + k].tolist()
            assert row == [o.needed.get(key, 0) for key in keys], (i, k)
            seen |= {key[0] for key in o.needed}
            if k >= draws.induction_cycles[i]:
                assert set(key[0] for key in o.needed) <= {"penpulimab"}  # maintenance: penpulimab only
    assert seen == {"penpulimab", "gemcitabine", "cisplatin", "carboplatin"}


def test_per_kg_and_capped_doses_by_hand(ak105):
    """3 mg/kg at 60 kg = 180 mg -> 2 x 100 mg vials; at 90 kg 270 mg, capped at 240 mg -> 3 vials."""
    pen = ak105.regimen.drugs["penpulimab"].model_copy(update={"dose_rule": "per_kg", "dose": 3.0,
                                                               "max_dose_mg": 240.0})
    dose, vials = drug_units(pen, {"weight_kg": np.array([60.0, 90.0])}, 1.0)
    assert dose.tolist() == [200.0, 300.0] and vials.ravel().tolist() == [2, 3]


BAD = [
    ("[regimen.drugs.cisplatin.choice]\ngroup = \"platinum\"\nshare = 0.5\nsource = \"test\"\n",
     "shares must sum to 1"),
    ("[regimen.drugs.gemcitabine]\ndays = [1, 22]\n", "cycle_days"),
    ("[regimen.drugs.gemcitabine]\ncap_months = 6.0\n"
     "continue_after_cap = { dist = \"bernoulli\", p = 0.0, source = \"test\" }\n", "at most one drug"),
    ("[regimen.drugs.gemcitabine]\ndays = \"1-x\"\n", "days"),
]


@pytest.mark.parametrize(("toml", "message"), BAD, ids=["shares", "days", "caps", "day-range"])
def test_bad_regimen_one_line(tmp_path, capsys, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'extends = "{ROOT / "scenarios" / "ak105_304.toml"}"\nname = "bad"\n{toml}')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "regimen" in err[0], err
