"""Report fixtures: output folders shaped like docs/outputs.md and the reports written from them.

Chromium (Debian's package) is installed by `ensure_chromium.sh` when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hn005_sim.report import write_report

from . import report_fixtures as rf

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"


@pytest.fixture(scope="session")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report with every section: run + screen + sites files, and a cohort folder for the baseline."""
    base = tmp_path_factory.mktemp("report")
    folder = rf.full_folder(base / "out")
    cohort = rf.cohort_folder(base / "cohort")
    write_report(
        folder,
        title="ALTER-HN005: fixture",
        sections_from=[folder, cohort],
        manifest=json.loads((folder / "manifest.json").read_text()),
    )
    return folder


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
