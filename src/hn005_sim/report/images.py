"""Each chart as PNG (for slides) and SVG (for print), rendered by vl-convert without a browser."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc

PNG_SCALE = 2  # twice the on-screen size: sharp on slides and high-density screens


@cache
def vl_version() -> str | None:
    """The Vega-Lite version altair writes specs for, if vl-convert bundles it (else its newest)."""
    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return major_minor if major_minor in vlc.get_vegalite_versions() else None


def save_images(spec: dict[str, Any], directory: Path, name: str) -> tuple[Path, Path]:
    """Write `directory/name.png` and `directory/name.svg`; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / f"{name}.png"
    svg = directory / f"{name}.svg"
    png.write_bytes(vlc.vegalite_to_png(spec, vl_version=vl_version(), scale=PNG_SCALE))
    svg.write_text(vlc.vegalite_to_svg(spec, vl_version=vl_version()))
    return png, svg


@cache
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed in one script that sets window.vegaEmbed (no network needed)."""
    return vlc.javascript_bundle(vl_version=vl_version())
