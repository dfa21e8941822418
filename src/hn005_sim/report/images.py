"""Each chart as SVG (for print and slides) and, on request, PNG, rendered by vl-convert without a browser.

Vega renders each chart once, to SVG; the PNG is rasterised from that SVG (`svg_to_png`, the step
`vegalite_to_png` performs after the same rendering, so the image is the same bytes) instead of running
Vega a second time. The JavaScript bundle inlined in report.html is built once per vl-convert version
and kept in the user's cache folder (`bundle_cache_dir`): bundling costs more than a second and its
result depends only on the library versions.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import vl_convert as vlc

from hn005_sim.report.charts.common import SCHEMA_URL

PNG_SCALE = 2  # twice the on-screen size: sharp on slides and high-density screens


@cache
def vl_version() -> str | None:
    """The Vega-Lite version the specs are written for (charts.common.SCHEMA_URL, altair's: a test
    compares them), if vl-convert bundles it (else its newest). Read without importing altair."""
    version = SCHEMA_URL.rsplit("/", 1)[-1].removesuffix(".json")  # "v6.4.1"
    major_minor = ".".join(version.lstrip("v").split(".")[:2])
    return major_minor if major_minor in vlc.get_vegalite_versions() else None


def render_svg(spec: dict[str, Any]) -> str:
    """The chart drawn by Vega, as SVG text."""
    return vlc.vegalite_to_svg(spec, vl_version=vl_version())


def save_images(spec: dict[str, Any], directory: Path, name: str, png: bool = True,
                svg_text: str | None = None) -> list[Path]:
    """Write `directory/name.svg` and, when `png`, `directory/name.png`; returns the paths written.
    `svg_text`: the spec already drawn (`render_svg(spec)`, e.g. by report/prerender.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    if svg_text is None:
        svg_text = render_svg(spec)
    svg = directory / f"{name}.svg"
    svg.write_text(svg_text)
    if not png:
        return [svg]
    path = directory / f"{name}.png"
    path.write_bytes(vlc.svg_to_png(svg_text, scale=PNG_SCALE))
    return [path, svg]


def bundle_cache_dir() -> Path | None:
    """Where the JavaScript bundle is kept: $HN005_SIM_CACHE, else $XDG_CACHE_HOME/hn005-sim, else
    ~/.cache/hn005-sim. HN005_SIM_CACHE set to an empty string turns the cache off."""
    explicit = os.environ.get("HN005_SIM_CACHE")
    if explicit is not None:
        return Path(explicit) if explicit else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hn005-sim"


def _bundle_key() -> str:
    versions = "|".join([getattr(vlc, "__version__", "?"), str(vl_version()), vlc.get_vega_version(),
                         vlc.get_vega_embed_version()])
    return hashlib.sha256(versions.encode()).hexdigest()[:16]


@cache
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed in one script that sets window.vegaEmbed (no network needed).

    Read from the cache folder when a bundle of the same library versions is there; otherwise built
    and stored (atomically, by rename; a folder that cannot be written only means no cache).
    """
    folder = bundle_cache_dir()
    path = folder / f"vl-bundle-{_bundle_key()}.js" if folder is not None else None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
            if text.endswith("\n/* hn005-sim bundle complete */\n"):
                return text[: -len("\n/* hn005-sim bundle complete */\n")]
        except (OSError, UnicodeDecodeError):
            pass
    bundle = vlc.javascript_bundle(vl_version=vl_version())
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vl-bundle-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(bundle + "\n/* hn005-sim bundle complete */\n")
            os.replace(tmp, path)
        except OSError:
            pass
    return bundle
