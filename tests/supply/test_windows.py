"""The do-not-dispense window covers the days the longest-lasting pack is used (issue 12 point 8)."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_do_not_dispense_window_outlasts_a_500mg_capecitabine_bottle():
    supply = tomllib.loads((ROOT / "configs/alter_hn005/supply.toml").read_text())["supply"]
    pres = {p["id"]: p for p in supply["presentations"]}
    bottle = pres["capecitabine_500mg"]
    window = supply["depot"]["do_not_dispense_days"]
    # 650 mg/m2 twice a day (protocol); the fewest 500 mg tablets a dose that still uses the bottle is
    # one, so the bottle lasts at most units / 2 days; at the reference BSA, 2 a dose (1,105 mg).
    ref_tablets = math.floor(650 * supply["reference_bsa_m2"] / bottle["strength_mg"])
    assert ref_tablets == 2
    assert window >= bottle["units_per_pack"] / (2 * ref_tablets)  # 30 days at the reference dose
    assert window >= bottle["units_per_pack"] / 2  # 60 days at one tablet a dose
    assert supply["depot"]["do_not_ship_days"] >= window
