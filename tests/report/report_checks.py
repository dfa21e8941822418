"""Checks on a written report that use nothing from hn005_sim: the HTML parser, csv and json only."""

from __future__ import annotations

import csv
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

# Attributes through which a page loads something by itself (not links a reader may click).
LOADING_ATTRS = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "input": ("src",),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "form": ("action",),
}
URL = re.compile(r"^\s*(https?:|wss?:|ftp:|//)", re.I)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.links: list[str] = []
        self.specs: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self.metas: list[dict[str, str]] = []
        self._in: tuple[str, dict[str, str]] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for attr in LOADING_ATTRS.get(tag, ()):
            if attr in a:
                self.loads.append((tag, attr, a[attr]))
        if "style" in a:
            self.styles.append(a["style"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "meta":
            self.metas.append(a)
        if tag in ("script", "style"):
            self._in, self._text = (tag, a), []

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._in is not None and tag == self._in[0]:
            kind, a = self._in
            text = "".join(self._text)
            if kind == "style":
                self.styles.append(text)
            elif a.get("type") == "application/json" and "hn005-spec" in a.get("class", ""):
                self.specs.append((a.get("data-chart", ""), text))
            self._in = None


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def external_loads(path: Path) -> list[str]:
    """Everything in the page that would fetch from the network on load."""
    page = parse(path)
    bad = [f"<{t} {a}={v}>" for t, a, v in page.loads if v and not v.startswith(("data:", "#"))]
    for css in page.styles:
        refs = re.findall(r"url\(\s*['\"]?([^'\")]+)", css) + re.findall(r"@import\s+['\"]([^'\"]+)", css)
        for ref in refs:
            if not ref.startswith("data:"):
                bad.append(f"css {ref}")
    for meta in page.metas:
        if meta.get("http-equiv", "").lower() == "refresh":
            bad.append(f"meta refresh {meta.get('content')}")
    for name, spec in specs(path).items():
        for where in _data_urls(spec):
            bad.append(f"chart {name}: data loaded from {where}")
    return bad


def external_links(path: Path) -> list[str]:
    return [h for h in parse(path).links if URL.match(h)]


def _data_urls(node: Any, key: str = "") -> list[str]:
    out = []
    if isinstance(node, dict):
        if key == "data" and "url" in node:
            out.append(str(node["url"]))
        for k, v in node.items():
            out += _data_urls(v, k)
    elif isinstance(node, list):
        for v in node:
            out += _data_urls(v, key)
    return out


def specs(path: Path) -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in parse(path).specs}


def _same(value: Any, text: str) -> bool:
    if value is None:
        return text in ("", "NaN", "nan", "null")
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, int | float):
        try:
            number = float(text)
        except ValueError:
            return False
        return math.isclose(number, float(value), rel_tol=1e-9, abs_tol=1e-12)
    return text == str(value)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def data_mismatches(folder: Path, spec: dict[str, Any]) -> list[str]:
    """How each dataset of a chart differs from the CSV it says it came from (empty list: identical)."""
    problems: list[str] = []
    sources = spec.get("usermeta", {}).get("hn005", {}).get("sources", {})
    for name, values in spec.get("datasets", {}).items():
        if name not in sources:
            if values != [{}]:  # altair's placeholder for marks without data (rules at a datum)
                problems.append(f"dataset {name} has no declared source")
            continue
        src = sources[name]
        rows = read_rows(folder / src["file"])
        columns = src["columns"]
        mapping = columns if isinstance(columns, dict) else {c: c for c in columns}
        if src["rows"] in ("all", "subset"):
            projected = [{f: r.get(c, "") for f, c in mapping.items()} for r in rows]

            def matches(v: dict[str, Any], r: dict[str, str], mapping: dict[str, str] = mapping) -> bool:
                return all(_same(v.get(f), r[f]) for f in mapping)

            if src["rows"] == "all":
                if len(values) != len(projected):
                    problems.append(f"{name}: {len(values)} rows drawn, {len(projected)} in {src['file']}")
                    continue
                for i, (v, r) in enumerate(zip(values, projected, strict=True)):
                    if not matches(v, r):
                        problems.append(f"{name}: row {i} {v} != {src['file']} {r}")
            else:
                j = 0  # a subset keeps the CSV's order: walk both
                for v in values:
                    while j < len(projected) and not matches(v, projected[j]):
                        j += 1
                    if j == len(projected):
                        problems.append(f"{name}: row {v} not found (in order) in {src['file']}")
                        break
                    j += 1
        elif src["rows"] == "histogram":
            col, group = src["column"], src.get("group")
            for v in values:
                mine = [r for r in rows if not group or r[group] == v[group]]
                t = [float(r[col]) for r in mine if r[col] not in ("", "NaN")]
                count = sum(v["bin_start"] <= x < v["bin_end"] for x in t)
                if count != v["runs"]:
                    where = f"[{v['bin_start']}, {v['bin_end']})"
                    problems.append(f"{name}: bin {where} has {v['runs']} runs, CSV {count}")
            groups = {v.get(group) for v in values} if group else {None}
            for g in groups:
                t = [r[col] for r in rows if r[col] not in ("", "NaN") and (g is None or r[group] == g)]
                drawn = sum(v["runs"] for v in values if g is None or v[group] == g)
                if drawn != len(t):
                    problems.append(f"{name}: {drawn} runs binned, {len(t)} reached the target in the CSV")
        else:
            problems.append(f"{name}: unknown rows kind {src['rows']!r}")
    return problems
