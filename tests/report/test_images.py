"""Chart images and the inlined JavaScript bundle: the faster paths give the same bytes as the direct ones."""

from __future__ import annotations

import vl_convert as vlc

from hn005_sim.report import images

SPEC = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "data": {"values": [{"x": i, "y": i * i % 7} for i in range(12)]},
    "mark": "bar",
    "encoding": {"x": {"field": "x", "type": "ordinal"}, "y": {"field": "y", "type": "quantitative"}},
    "width": 320, "height": 180,
}


def test_png_from_the_svg_is_the_png_vega_renders(tmp_path):
    # save_images renders once (SVG) and rasterises that SVG; vegalite_to_png renders again and must
    # give the same bytes, or the PNGs would have changed
    paths = images.save_images(SPEC, tmp_path, "c", png=True)
    assert [p.name for p in paths] == ["c.png", "c.svg"]
    direct = vlc.vegalite_to_png(SPEC, vl_version=images.vl_version(), scale=images.PNG_SCALE)
    assert (tmp_path / "c.png").read_bytes() == direct
    assert (tmp_path / "c.svg").read_text().startswith("<svg")
    assert [p.name for p in images.save_images(SPEC, tmp_path / "svg_only", "c", png=False)] == ["c.svg"]
    assert not (tmp_path / "svg_only" / "c.png").exists()


def test_bundle_is_cached_by_version_and_a_partial_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("HN005_SIM_CACHE", str(tmp_path))
    images.javascript_bundle.cache_clear()
    built = images.javascript_bundle()
    assert built == vlc.javascript_bundle(vl_version=images.vl_version())
    (cached,) = tmp_path.glob("vl-bundle-*.js")
    # a file written by someone else or cut short lacks the end marker: rebuilt, not trusted
    cached.write_text("window.broken = 1;")
    images.javascript_bundle.cache_clear()
    assert images.javascript_bundle() == built
    # a complete file is read back as it was written (this fake content proves it was not rebuilt)
    cached.write_text("window.fake = 1;\n/* hn005-sim bundle complete */\n")
    images.javascript_bundle.cache_clear()
    assert images.javascript_bundle() == "window.fake = 1;"
    images.javascript_bundle.cache_clear()


def test_bundle_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("HN005_SIM_CACHE", "")
    assert images.bundle_cache_dir() is None
    monkeypatch.delenv("HN005_SIM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert images.bundle_cache_dir() == tmp_path / "hn005-sim"


def test_every_chart_spec_is_valid_vega_lite(full_report):
    # charts.py skips altair's schema check when it serialises (the same dict, a third faster); the
    # check is here: every chart of the full report validates against altair's Vega-Lite schema
    import altair as alt
    from altair.utils.schemapi import validate_jsonschema

    from hn005_sim.report.build import build_charts
    from hn005_sim.report.data import load_folder

    schema = alt.vegalite.v6.schema.core.load_schema()
    charts = build_charts(load_folder(full_report))
    assert len(charts) >= 10
    for chart in charts:
        validate_jsonschema(chart.spec, schema)
    # and the check can fail
    bad = {**charts[0].spec, "mark": {"type": "no-such-mark"}}
    try:
        validate_jsonschema(bad, schema)
    except Exception:  # jsonschema's ValidationError
        pass
    else:
        raise AssertionError("an invalid mark passed the schema check")
