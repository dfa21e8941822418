"""Charts written as Vega-Lite dicts (issue 16) are the specs altair built before, byte for byte as the
page embeds them, and valid Vega-Lite: for the test fixtures, a scenario overlay, one threshold alone,
thresholds without a unit or with fractional and large values."""

from __future__ import annotations

import json
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl
import pytest
from altair.utils.schemapi import validate_jsonschema

from hn005_sim.report import charts as ch
from hn005_sim.report.html import spec_json

from . import altair_reference as ref
from . import report_fixtures as rf

SCHEMA = alt.vegalite.v6.schema.core.load_schema()


@pytest.fixture(scope="module")
def screen(tmp_path_factory) -> Path:
    return rf.screen_folder(tmp_path_factory.mktemp("specs") / "screen")


def overlay(frame: pl.DataFrame) -> pl.DataFrame:
    """Two scenarios, as `compare` writes a frame (a leading `scenario` column)."""
    return pl.concat([frame.with_columns(pl.lit(s).alias("scenario")).select(["scenario", *frame.columns])
                      for s in ("baseline", "relaxed")])


def same_chart(new: ch.Chart, old: ch.Chart) -> None:
    assert json.dumps(new.spec) == json.dumps(old.spec)  # same keys in the same order, same values
    assert spec_json(new.spec) == spec_json(old.spec)  # what report.html embeds
    assert (new.name, new.title, new.how_to_read, new.files) == (old.name, old.title, old.how_to_read,
                                                                 old.files)
    validate_jsonschema(new.spec, SCHEMA)


def sweeps_variants(screen: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(screen / "sweeps.csv")
    one = frame.filter(pl.col("parameter") == "ecog_max")
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "one threshold": one,
        "no unit column": frame.drop("unit"),
        "empty and mixed units": frame.with_columns(
            pl.when(pl.col("parameter") == "ecog_max").then(pl.lit(""))
            .when(pl.col("parameter") == "tsh_max_uln").then(pl.lit(None))
            .otherwise(pl.col("unit")).alias("unit")),
        "quoted name, fractional and large values": frame.with_columns(
            pl.when(pl.col("parameter") == "age_max_years").then(pl.lit("it's_a \"max\""))
            .otherwise(pl.col("parameter")).alias("parameter"),
            (pl.col("value") * 1000.5).alias("value")),
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "one threshold", "no unit column",
                                     "empty and mixed units", "quoted name, fractional and large values"])
def test_sweeps_is_the_altair_spec(screen, variant):
    frame = sweeps_variants(screen)[variant]
    same_chart(ch.sweeps(frame), ref.sweeps(frame))


def without_label_limits(node):
    """The spec as written before issue 16's phase 4: no `labelLimit` key on the sweeps' axes."""
    if isinstance(node, dict):
        return {k: without_label_limits(v) for k, v in node.items()
                if not (k == "labelLimit" and v == 0)}
    if isinstance(node, list):
        return [without_label_limits(v) for v in node]
    return node


@pytest.mark.parametrize("variant", ["fixture", "overlay", "one threshold", "no unit column",
                                     "empty and mixed units", "quoted name, fractional and large values"])
def test_the_sweeps_labels_without_a_limit_draw_the_same_svg(screen, variant):
    """`labelLimit: 0` (no truncation to check, so no text measured for it) changes nothing drawn: the
    SVG is byte for byte the one of the spec without it (whose labels Vega checked against 180 px)."""
    from hn005_sim.report.images import render_svg

    spec = ch.sweeps(sweeps_variants(screen)[variant]).spec
    before = without_label_limits(spec)
    assert json.dumps(before).count('"labelLimit"') == 0 < json.dumps(spec).count('"labelLimit": 0')
    assert render_svg(spec) == render_svg(before)


def test_the_sweeps_spec_shares_no_object_between_places(screen):
    spec = ch.sweeps(pl.read_csv(screen / "sweeps.csv")).spec
    seen: dict[int, str] = {}

    def walk(node, where):
        if isinstance(node, dict | list):
            assert id(node) not in seen, f"{where} is the object at {seen.get(id(node))}"
            seen[id(node)] = where
            for k, v in (node.items() if isinstance(node, dict) else enumerate(node)):
                walk(v, f"{where}/{k}")

    walk({k: v for k, v in spec.items() if k != "datasets"}, "")
    assert len(seen) > 100


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return rf.run_folder(tmp_path_factory.mktemp("specs") / "run")


def criteria_variants(screen: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(screen / "criteria.csv")
    many = pl.concat([frame.with_columns(pl.format("extra_{}_{}", pl.col("criterion_id"), pl.lit(i)))
                      for i in range(3)])  # 27 criteria: more than MAX_CRITERIA, a subset is shown
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "no intervals": frame.drop([c for c in frame.columns if c.endswith(("_lo", "_hi"))]),
        "one interval": frame.drop(["fail_rate_lo", "fail_rate_hi"]),
        "more than shown, unknown stage": many.with_columns(
            pl.when(pl.col("criterion_id").str.ends_with("_2")).then(pl.lit("chart review"))
            .otherwise(pl.col("stage")).alias("stage")),
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "no intervals", "one interval",
                                     "more than shown, unknown stage"])
def test_criteria_is_the_altair_spec(screen, variant):
    frame = criteria_variants(screen)[variant]
    same_chart(ch.criteria(frame), ref.criteria(frame))


def inventory_variants(run: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(run / "inventory.csv")
    sites = frame.filter(pl.col("location") != frame["location"][0])
    many = pl.concat([sites.with_columns(pl.format("{} {}", pl.col("location"), pl.lit(i)))
                      for i in range(4)])
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "no stock-out column": frame.drop("stockout_probability"),
        "more locations than shown": pl.concat([frame, many]),
        "one drug": frame.filter(pl.col("drug") == frame["drug"][0]),
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "no stock-out column", "more locations than shown",
                                     "one drug"])
def test_inventory_is_the_altair_spec(run, variant):
    frame = inventory_variants(run)[variant]
    same_chart(ch.inventory(frame), ref.inventory(frame))


@pytest.mark.parametrize(("variant", "target", "deadline"), [
    ("fixture", [110.0], [12.0]), ("overlay", [110.0], [24.0, 12.0]), ("fixture", [], []),
    ("overlay", [], []), ("fixture", [110.0, 60.0, 110.0], []), ("fixture", [], [30.5]),
    ("fixture", [110], [12])])
def test_enrolment_fan_is_the_altair_spec(run, variant, target, deadline):
    frame = pl.read_csv(run / "enrollment_curve.csv")
    frame = overlay(frame) if variant == "overlay" else frame
    same_chart(ch.enrolment_fan(frame, target=target, deadline=deadline),
               ref.enrolment_fan(frame, target=target, deadline=deadline))


def drug_demand_variants(run: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(run / "drug_demand.csv")
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "one drug": frame.filter(pl.col("drug") == frame["drug"][0]),
        "quoted drug name": frame.with_columns(pl.format("it's \"{}\"", pl.col("drug")).alias("drug")),
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "one drug", "quoted drug name"])
def test_drug_demand_is_the_altair_spec(run, variant):
    frame = drug_demand_variants(run)[variant]
    same_chart(ch.drug_demand(frame), ref.drug_demand(frame))


def time_to_target_variants(run: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(run / "time_to_target.csv")
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "none reach the target": frame.with_columns(pl.lit(None, pl.Float64).alias("time_to_target_months")),
        "some never reach it, wide span": frame.with_columns(
            pl.when(pl.col("replicate") % 3 == 0).then(None)
            .otherwise(pl.col("time_to_target_months") * 40).alias("time_to_target_months")),
    }


@pytest.mark.parametrize(("variant", "deadline"), [
    ("fixture", [12.0]), ("fixture", []), ("fixture", [24.0, 12.0, 24.0]), ("overlay", [12.0]),
    ("overlay", []), ("none reach the target", [12.0]), ("some never reach it, wide span", [30.5])])
def test_time_to_target_is_the_altair_spec(run, variant, deadline):
    frame = time_to_target_variants(run)[variant]
    same_chart(ch.time_to_target(frame, deadline=deadline), ref.time_to_target(frame, deadline=deadline))


def screen_failures_variants(run: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(run / "screen_failures.csv")
    many = pl.concat([frame.with_columns(pl.format("{}_{}", pl.col("criterion_id"), pl.lit(i)))
                      for i in range(3)])  # more reasons than MAX_CRITERIA: a subset is shown
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "no percentiles or share": frame.drop("failures_p10", "failures_p90", "share"),
        "10th percentile only": frame.drop("failures_p90"),
        "more than shown, unknown stages": many.with_columns(
            pl.when(pl.col("criterion_id").str.ends_with("_2")).then(pl.format("other {}", pl.col("stage")))
            .otherwise(pl.col("stage")).alias("stage")),
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "no percentiles or share", "10th percentile only",
                                     "more than shown, unknown stages"])
def test_screen_failures_is_the_altair_spec(run, variant):
    frame = screen_failures_variants(run)[variant]
    same_chart(ch.screen_failures(frame), ref.screen_failures(frame))


def test_the_stage_scale_dict_is_altairs(run):
    frame = screen_failures_variants(run)["more than shown, unknown stages"]
    for sub in (frame, frame.head(3), frame.filter(pl.col("stage").str.starts_with("other"))):
        assert ch.common._stage_scale_dict(sub) == ch._stage_scale(sub).to_dict()


def sites_variants(run: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(run / "sites.csv")
    many = pl.concat([frame.with_columns(pl.format("{} {}", pl.col("site"), pl.lit(i)),
                                         pl.col("enrolled_mean") + i % 7)
                      for i in range(1 + ch.MAX_SITES // frame.height)])  # more sites than shown
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "mean only": frame.select("site", "region", "enrolled_mean"),
        "10th percentile only": frame.drop("enrolled_p90"),
        "more sites than shown": many,
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "mean only", "10th percentile only",
                                     "more sites than shown"])
def test_sites_is_the_altair_spec(run, variant):
    frame = sites_variants(run)[variant]
    assert variant != "more sites than shown" or frame.height > ch.MAX_SITES
    same_chart(ch.sites(frame), ref.sites(frame))


@pytest.fixture(scope="module")
def curve(tmp_path_factory) -> pl.DataFrame:
    return pl.read_csv(rf.sites_folder(tmp_path_factory.mktemp("specs") / "sites") / "curve.csv")


def site_curve_variants(curve: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {
        "fixture": curve,
        "overlay": overlay(curve),
        "overlay, one method": overlay(curve.filter(pl.col("method") == "des").drop("method")),
        "no method, total_sites": curve.filter(pl.col("method") == "des").drop("method", "expected_enrolled")
        .rename({"sites": "total_sites"}),
        "many sites": curve.with_columns(pl.col("sites") * 37),
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "overlay, one method", "no method, total_sites",
                                     "many sites"])
@pytest.mark.parametrize("probability", [0.8, None, 0.95, 1])
def test_site_curve_is_the_altair_spec(curve, variant, probability):
    frame = site_curve_variants(curve)[variant]
    same_chart(ch.site_curve(frame, probability=probability), ref.site_curve(frame, probability=probability))


def funnel_variants(screen: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(screen / "funnel.csv")
    review = frame.with_columns(prescreen_pass=pl.col("remaining"), prescreen_fail=pl.col("dropped") // 2,
                                prescreen_unknown=pl.col("dropped") - pl.col("dropped") // 2)
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "chart review": review,
        "chart review, overlay": overlay(review),
        "chart review, one column missing": review.drop("prescreen_unknown"),
        "no remaining_fraction": frame.drop("remaining_fraction"),
        "no remaining_fraction, overlay": overlay(frame.drop("remaining_fraction")),
        "unknown stage, out of order": frame.with_columns(
            pl.when(pl.col("step") % 2 == 0).then(pl.lit("chart review")).otherwise(pl.col("stage"))
            .alias("stage")).reverse(),
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "chart review", "chart review, overlay",
                                     "chart review, one column missing", "no remaining_fraction",
                                     "no remaining_fraction, overlay", "unknown stage, out of order"])
def test_funnel_is_the_altair_spec(screen, variant):
    frame = funnel_variants(screen)[variant]
    same_chart(ch.funnel(frame), ref.funnel(frame))


def cofailure_variants(screen: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(screen / "cofailure.csv")
    ids = sorted(set(frame["criterion_a"]) | set(frame["criterion_b"])) + [f"extra_{i}" for i in range(16)]
    pairs = [(a, b) for a in ids for b in ids if a < b]
    many = pl.DataFrame({"criterion_a": [a for a, _ in pairs], "criterion_b": [b for _, b in pairs],
                         "both_fail": [(7 * i) % 23 for i in range(len(pairs))]})
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "counts only": frame.select("criterion_a", "criterion_b", "both_fail"),
        "no lift": frame.drop("lift"),
        "every pair, counts only": many,
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "counts only", "no lift",
                                     "every pair, counts only"])
def test_cofailure_is_the_altair_spec(screen, variant):
    frame = cofailure_variants(screen)[variant]
    ids = set(frame["criterion_a"]) | set(frame["criterion_b"])
    assert variant != "every pair, counts only" or len(ids) > ch.MAX_HEATMAP  # a subset is shown
    same_chart(ch.cofailure(frame), ref.cofailure(frame))


def relaxation_variants(screen: Path) -> dict[str, pl.DataFrame]:
    frame = pl.read_csv(screen / "relaxation.csv")
    return {
        "fixture": frame,
        "overlay": overlay(frame),
        "no description or gain": frame.drop("description", "gain"),
        "out of step order, quoted": frame.reverse().with_columns(
            pl.format("it's \"{}\"", pl.col("relaxation")).alias("relaxation")),
    }


@pytest.mark.parametrize("variant", ["fixture", "overlay", "no description or gain",
                                     "out of step order, quoted"])
def test_relaxation_is_the_altair_spec(screen, variant):
    frame = relaxation_variants(screen)[variant]
    same_chart(ch.relaxation(frame), ref.relaxation(frame))


def test_the_schema_url_is_altairs():
    assert ch.common.SCHEMA_URL == alt.SCHEMA_URL


@pytest.mark.parametrize("value", ["ecog_max", "it's", 'a "b"', "it's \"both\"", "back\\slash", "tab\there",
                                   "Ünïcode 中文", "", 3, 2.5, -0.0, 1e300, True, False, None,
                                   np.int64(7), np.float64(0.1), np.bool_(True), np.str_("x'y")])
def test_the_filter_expression_is_altairs(value):
    assert ch.common._datum_equals("drug", value) == repr(alt.datum.drug == value)
