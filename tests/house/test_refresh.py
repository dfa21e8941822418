"""`make run` leaves the tracked reports/baseline untouched when only the wall time changed."""

from __future__ import annotations

import json
from pathlib import Path

from hn005_sim.refresh import differences, main, refresh


def _folder(path: Path, wall: float, curve: str = "month,p50\n1,2\n") -> Path:
    (path / "charts").mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"seed": 1, "wall_time_s": wall, "argv": ["run"]}))
    (path / "report.html").write_text(f'<table><tr><td>seed</td><td class="num">1</td></tr>'
                                      f'<tr><td>wall_time_s</td><td class="num">{wall}</td></tr></table>')
    (path / "curve.csv").write_text(curve)
    (path / "charts" / "a.svg").write_text("<svg/>")
    return path


def test_only_wall_time_changed_leaves_the_tracked_folder_untouched(tmp_path, capsys):
    tracked = _folder(tmp_path / "tracked", 8.4)
    new = _folder(tmp_path / "new", 5.1)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tracked.rglob("*") if p.is_file()}
    assert differences(new, tracked) == []
    assert main([str(new), str(tracked)]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tracked.rglob("*") if p.is_file()} == before
    assert not new.exists()


def test_a_real_change_replaces_the_folder_and_drops_stale_files(tmp_path):
    tracked = _folder(tmp_path / "tracked", 8.4)
    (tracked / "stale.csv").write_text("x\n")
    new = _folder(tmp_path / "new", 5.1, curve="month,p50\n1,3\n")
    assert differences(new, tracked) == ["curve.csv", "stale.csv"]
    assert refresh(new, tracked) == ["curve.csv", "stale.csv"]
    assert (tracked / "curve.csv").read_text() == "month,p50\n1,3\n"
    assert json.loads((tracked / "manifest.json").read_text())["wall_time_s"] == 5.1  # all of it is new
    assert not (tracked / "stale.csv").exists() and not new.exists()


def test_a_changed_manifest_field_or_report_figure_counts(tmp_path):
    tracked = _folder(tmp_path / "tracked", 8.4)
    new = _folder(tmp_path / "new", 8.4)
    (new / "manifest.json").write_text(json.dumps({"seed": 2, "wall_time_s": 8.4, "argv": ["run"]}))
    (new / "report.html").write_text((new / "report.html").read_text().replace(">1<", ">2<"))
    assert differences(new, tracked) == ["manifest.json", "report.html"]
    assert differences(tracked, tmp_path / "absent") == ["charts/a.svg", "curve.csv", "manifest.json",
                                                         "report.html"]
