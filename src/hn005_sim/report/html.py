"""One self-contained HTML page: text, tables, and charts drawn by Vega inlined in the page.

The page makes no network request: Vega, Vega-Lite and vega-embed are inlined, chart data sit inside
each chart's spec, there are no fonts, images or styles by URL, and a Content-Security-Policy forbids
any connection should something try. Each chart's spec is in a `<script type="application/json"
class="hn005-spec">` beside its chart, so anyone (and the tests) can read the numbers drawn.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

from hn005_sim.report.charts import Chart
from hn005_sim.report.images import javascript_bundle

# Vega compiles expressions with Function(), hence 'unsafe-eval'; images only from data:/blob: (the
# chart menu's "save as PNG"); no connect-src, font-src or frame-src at all.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; base-uri 'none'; form-action 'none'"
)

STYLE = """
:root { --ink: #1d2733; --muted: #5b6775; --rule: #d8dee6; --accent: #08519c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); background: #fff; }
header, main { max-width: 1040px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; border-bottom: 1px solid var(--rule); }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-top: 8px; border-top: 3px solid var(--accent); }
h3 { font-size: 16px; margin: 20px 0 4px; }
p.meta, p.files, figcaption, .note { color: var(--muted); font-size: 13px; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a, a { color: var(--accent); }
figure.chart { margin: 18px 0 28px; }
.vis { min-height: 40px; overflow-x: auto; }
.vis.failed { color: #b00020; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--rule); padding: 4px 10px; text-align: left; vertical-align: top;
         overflow-wrap: break-word; hyphens: manual; }
table { max-width: 100%; }
th { background: #f3f6f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.assumption td:last-child { color: #8a4b00; }
details pre { max-height: 420px; overflow: auto; background: #f6f8fa; padding: 10px; font-size: 12px; }
"""

# Draws every chart; records which rendered and which failed (for a reader, and for the tests).
RENDER = """
(function () {
  var status = { expected: 0, rendered: [], failed: [], done: false };
  window.__hn005 = status;
  var specs = Array.prototype.slice.call(document.querySelectorAll('script.hn005-spec'));
  status.expected = specs.length;
  var opts = { renderer: 'svg', actions: { export: true, source: false, compiled: false, editor: false } };
  var jobs = specs.map(function (node) {
    var name = node.getAttribute('data-chart');
    var el = document.getElementById('chart-' + name);
    return vegaEmbed(el, JSON.parse(node.textContent), opts).then(function () {
      status.rendered.push(name);
    }).catch(function (err) {
      status.failed.push(name);
      el.classList.add('failed');
      el.textContent = 'This chart could not be drawn: ' + err;
      console.error('chart ' + name + ': ' + err);
    });
  });
  Promise.all(jobs).then(function () {
    status.done = true;
    document.documentElement.setAttribute('data-charts-rendered', String(status.rendered.length));
  });
})();
"""


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    row_classes: list[str] | None = None


@dataclass(frozen=True)
class Raw:
    """Trusted HTML built in this package (already escaped)."""

    markup: str


@dataclass(frozen=True)
class Section:
    key: str
    heading: str
    intro: str
    items: list[Chart | Table | Raw]


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


_BREAK_AFTER = re.compile(r"(?<=[._/=,])(?=[^\s])")
_LONG_TOKEN = re.compile(r"\S{21,}")


def cell(text: Any) -> str:
    """A table cell's text, escaped, with break opportunities (<wbr>) after `.`, `_`, `/`, `=` and `,`
    inside long tokens (dotted keys, criterion ids), so columns wrap between words or at those
    characters, never in the middle of a word."""
    return _LONG_TOKEN.sub(lambda m: _BREAK_AFTER.sub("<wbr>", m.group(0)), esc(text))


def spec_json(spec: dict[str, Any]) -> str:
    """JSON safe inside <script>: '<' only occurs in strings, where \\u003c means the same."""
    return json.dumps(spec, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")


def _chart(chart: Chart) -> str:
    files = " · ".join(f'<a href="{esc(f)}">{esc(f)}</a>' for f in chart.files)
    return (
        f'<figure class="chart" id="fig-{esc(chart.name)}">\n'
        f'<div class="vis" id="chart-{esc(chart.name)}" role="img" aria-label="{esc(chart.title)}"></div>\n'
        f"<figcaption><p>{esc(chart.how_to_read)}</p>\n"
        f'<p class="files">Data: {files} · Image: <a href="charts/{esc(chart.name)}.png">PNG</a>, '
        f'<a href="charts/{esc(chart.name)}.svg">SVG</a></p></figcaption>\n'
        f'<script type="application/json" class="hn005-spec" data-chart="{esc(chart.name)}">'
        f"{spec_json(chart.spec)}</script>\n</figure>"
    )


def _is_number(text: str) -> bool:
    t = text.replace(",", "").replace("%", "").replace("—", "").strip()
    try:
        float(t)
    except ValueError:
        return False
    return True


def _table(table: Table) -> str:
    out = ["<table>"]
    if table.caption:
        out.append(f"<caption>{esc(table.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.header) + "</tr></thead><tbody>")
    for i, row in enumerate(table.rows):
        cls = f' class="{esc(table.row_classes[i])}"' if table.row_classes else ""
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if j and _is_number(str(c)) else f"<td>{cell(c)}</td>"
            for j, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="note">{esc(n)}</p>' for n in table.notes]
    return "\n".join(out)


def render_page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page as one string."""
    sections = [s for s in sections if s.items]
    nav = "".join(f'<li><a href="#{esc(s.key)}">{esc(s.heading)}</a></li>' for s in sections)
    body = []
    for s in sections:
        body.append(f'<section id="{esc(s.key)}">\n<h2>{esc(s.heading)}</h2>')
        if s.intro:
            body.append(f"<p>{esc(s.intro)}</p>")
        for item in s.items:
            if isinstance(item, Chart):
                body.append(_chart(item))
            elif isinstance(item, Table):
                body.append(_table(item))
            else:
                body.append(item.markup)
        body.append("</section>")
    bundle = javascript_bundle()
    if "</script" in bundle.lower():  # would end the inline script early; never seen in vl-convert's bundle
        raise RuntimeError("the Vega JavaScript bundle contains '</script' and cannot be inlined")
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f'<header>\n<h1>{esc(title)}</h1>\n<p class="meta">{esc(subtitle)}</p>',
            f"<nav><ul>{nav}</ul></nav>\n</header>",
            "<main>",
            *body,
            "</main>",
            f"<script>{bundle}</script>",
            f"<script>{RENDER}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )
