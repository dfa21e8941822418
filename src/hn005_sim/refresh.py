"""Refresh a tracked output folder (reports/baseline) only when its content changed.

`python -m hn005_sim.refresh NEW TRACKED` compares the freshly written folder NEW with TRACKED. When
every file is the same except for the wall time (manifest.json's `wall_time_s` and its row in
report.html), TRACKED is left untouched, so `make run` on an unchanged model leaves git clean. Otherwise
TRACKED becomes a copy of NEW (files replaced one by one, files NEW no longer has removed). NEW is
removed either way. Chosen over keeping wall time out of manifest.json because the manifest of any
other output folder should still say how long its run took (docs/outputs.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

_WALL_ROW = re.compile(rb'<tr><td>wall_time_s</td><td[^>]*>[^<]*</td></tr>')


def comparable(name: str, data: bytes) -> bytes:
    """A file's content with the wall time taken out (manifest.json, report.html); others as they are."""
    if name == "manifest.json":
        try:
            doc = json.loads(data)
        except ValueError:
            return data
        if isinstance(doc, dict):
            doc.pop("wall_time_s", None)
            return json.dumps(doc, sort_keys=True).encode()
        return data
    if name.endswith(".html"):
        return _WALL_ROW.sub(b"<tr><td>wall_time_s</td><td></td></tr>", data)
    return data


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def differences(new: Path, tracked: Path) -> list[str]:
    """Files added, removed or changed (wall time aside) from `tracked` to `new`, sorted."""
    a, b = _files(new), _files(tracked) if tracked.is_dir() else {}
    out = sorted(set(a) ^ set(b))
    for name in sorted(set(a) & set(b)):
        base = Path(name).name
        if comparable(base, a[name].read_bytes()) != comparable(base, b[name].read_bytes()):
            out.append(name)
    return sorted(out)


def refresh(new: Path, tracked: Path) -> list[str]:
    """Make `tracked` hold `new`'s content unless only the wall time differs; returns what changed."""
    changed = differences(new, tracked)
    if changed:
        tracked.mkdir(parents=True, exist_ok=True)
        fresh = _files(new)
        for name, src in fresh.items():
            dst = tracked / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        for name, old in _files(tracked).items():
            if name not in fresh:
                old.unlink()
    shutil.rmtree(new, ignore_errors=True)
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not Path(args[0]).is_dir():
        print("usage: python -m hn005_sim.refresh NEW_FOLDER TRACKED_FOLDER", file=sys.stderr)
        return 2
    new, tracked = Path(args[0]), Path(args[1])
    changed = refresh(new, tracked)
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        print(f"{tracked}: {len(changed)} file(s) changed: {shown}")
    else:
        print(f"{tracked}: unchanged (only the wall time differs); left as it was")
    return 0


if __name__ == "__main__":
    sys.exit(main())
