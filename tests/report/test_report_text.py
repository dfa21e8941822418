"""Report text as a new user reads it: no internal values, tables that wrap between words."""

from __future__ import annotations

import re
from pathlib import Path

from hn005_sim.report.html import STYLE, cell
from hn005_sim.report.tables import _describe, parameter_rows
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_parameter_table_of_the_baseline_shows_no_unset_fields():
    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    rows = parameter_rows(sc.model_dump(mode="json", by_alias=True))
    assert len(rows) > 100
    leaks = [r for r in rows if re.search(r"\bNone\b|=null", r[1])]
    assert leaks == [], leaks[:5]
    # a lognormal given by median and gsd reads as such, without the unset mu and sigma
    described = {r[0]: r[1] for r in rows}
    assert any(v.startswith("lognormal(median=") for v in described.values()), sorted(described.values())[:20]


def test_describe_reads_a_value_with_its_unit_and_leaves_unset_fields_out():
    assert _describe({"value": 0.45, "unit": None, "source": "x"}) == "0.45"
    assert _describe({"value": 110, "unit": "patients", "source": "x"}) == "110 patients"
    assert _describe({"dist": "lognormal", "mu": None, "sigma": None, "median": 18.0, "gsd": 2.13,
                      "source": "x"}) == "lognormal(median=18, gsd=2.13)"


def test_table_cells_wrap_between_words_or_after_separators_never_mid_word():
    assert "overflow-wrap: anywhere" not in STYLE and "word-break: break-all" not in STYLE
    assert cell("population.demographics.age_years") == "population.<wbr>demographics.<wbr>age_<wbr>years"
    assert cell("a short phrase") == "a short phrase"  # short words are left alone
    escaped = "&lt;b&gt;x&lt;/<wbr>b&gt;.<wbr>long_<wbr>enough_<wbr>to_<wbr>break"
    assert cell("<b>x</b>.long_enough_to_break") == escaped  # escaped first, markup stays text
