"""The report as one self-contained HTML page: tables and plain inline SVG bar charts.

No script, no external file, no web font: the page opens from disk, prints, and survives
being mailed on as an attachment. A click count under 10 is drawn as a pale bar of the
length of 10 and labelled "<10", so the chart gives away no more than the table.
"""

from __future__ import annotations

from html import escape

from newsletter.config import Config
from newsletter.deliver.report import (
    BOUNCE_CLASSES,
    COLUMNS,
    IssueReport,
    K,
    figures_row,
    shown,
    total_row,
)

BAR_HEIGHT, GAP, LABEL_WIDTH, CHART_WIDTH = 22, 8, 220, 700
COLOURS = {"delivered": "#2b6cb0", "failed": "#9b2c2c", "hard": "#c05621", "soft": "#d69e2e",
           "ours": "#718096", "complained": "#6b46c1", "unsubscribed": "#2f855a",
           "clicks": "#0b3d6b"}
STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a202c;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #cbd5e0; text-align: right; }
th:first-child, td:first-child, td.url { text-align: left; }
td.url { word-break: break-all; max-width: 36rem; }
svg { max-width: 100%; height: auto; display: block; }
.note { color: #4a5568; font-size: .9rem; }
"""


def report_page(config: Config, report: IssueReport) -> str:
    title = f"{config.name}: report of {report.issue}"
    zone = config.timezone
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        "<main>", f"<h1>{escape(title)}</h1>",
        f'<p class="note">First sent {report.first_sent.astimezone(zone):%Y-%m-%d %H:%M %Z}. '
        f"Bounces and complaints until {report.window_end.astimezone(zone):%Y-%m-%d %H:%M %Z}; "
        "unsubscribes within 31 days. Click counts from 1 to 9 are shown as &lt;10; hits "
        "from link scanners are not counted. No reader is named anywhere in these figures.</p>",
        "<h2>Per edition</h2>", _figures_table(report), _outcome_chart(report),
    ]
    if report.counted_links:
        parts.append("<h2>Clicks per link</h2>")
        for e in report.editions:
            if e.links:
                parts.append(f"<h3>{escape(e.language)}</h3>")
                parts.append(_links_table(e.language, e.links))
                parts.append(_bars(f"Clicks per link, edition {e.language}",
                                   [(_short(link.url), link.clicks, True) for link in e.links],
                                   "clicks"))
            if e.scanner_visits:
                parts.append(f'<p class="note">{escape(e.language)}: link scanners opened '
                             f"the message {shown(e.scanner_visits)} time(s); their hits were "
                             "not counted.</p>")
    else:
        parts.append('<p class="note">Clicks were not counted for this issue '
                     "([reach] count_clicks was off when it was sent).</p>")
    parts += ["</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _figures_table(report: IssueReport) -> str:
    rows = [figures_row(e) for e in report.editions]
    if len(report.editions) > 1:
        rows.append(total_row(report))
    head = "".join(f'<th scope="col">{c}</th>' for c in COLUMNS)
    body = "".join("<tr>" + f'<th scope="row">{escape(r[0])}</th>' + "".join(
        f"<td>{escape(c)}</td>" for c in r[1:]) + "</tr>" for r in rows)
    return (f'<table id="figures"><caption class="note">Readers per edition</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _links_table(language: str, links: tuple) -> str:
    body = "".join(f'<tr><td class="url"><a href="{escape(link.url)}">{escape(link.url)}'
                   f"</a></td><td>{shown(link.clicks)}</td></tr>" for link in links)
    return (f'<table class="links" data-edition="{escape(language)}"><thead><tr>'
            f'<th scope="col">link</th><th scope="col">clicks</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _outcome_chart(report: IssueReport) -> str:
    """One bar group per edition: delivered, failed, bounces by class, complaints,
    unsubscribes (exact counts: these are the ledger's and the return path's)."""
    bars = []
    for e in report.editions:
        values = [("delivered", e.delivered), ("failed", e.failed),
                  *((k, e.bounce(k)) for k in BOUNCE_CLASSES),
                  ("complained", e.complained), ("unsubscribed", e.unsubscribed)]
        bars += [(f"{e.language} {name}", n, False, name) for name, n in values]
    return _bars("Readers per edition and outcome", [(label, n, False) for label, n, _, _ in
                                                      bars], "", kinds=[b[3] for b in bars])


def _bars(title: str, rows: list[tuple[str, int, bool]], kind: str, *,
          kinds: list[str] | None = None) -> str:
    """A horizontal bar chart. rows: (label, value, thresholded): a thresholded value under
    K is drawn at K's length, pale, and labelled "<10"."""
    top = max([K, *(n for _, n, _ in rows)])
    scale = (CHART_WIDTH - LABEL_WIDTH - 60) / top
    height = len(rows) * (BAR_HEIGHT + GAP) + GAP
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{CHART_WIDTH}" '
           f'height="{height}" viewBox="0 0 {CHART_WIDTH} {height}" '
           f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, (label, n, thresholded) in enumerate(rows):
        y = GAP + i * (BAR_HEIGHT + GAP)
        hidden = thresholded and 0 < n < K
        length = (K if hidden else n) * scale
        colour = COLOURS.get((kinds[i] if kinds else kind), "#2b6cb0")
        text = shown(n) if thresholded else str(n)
        out.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR_HEIGHT - 6}" text-anchor="end" '
                   f'font-size="12" fill="#1a202c">{escape(label)}</text>')
        out.append(f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
                   f'fill="{colour}" fill-opacity="{0.3 if hidden else 1}"/>')
        out.append(f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + BAR_HEIGHT - 6}" '
                   f'font-size="12" fill="#1a202c">{escape(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _short(url: str, limit: int = 30) -> str:
    """A bar's label: the URL's path end, which tells links of one site apart (the table
    beside the chart has the whole URL)."""
    bare = url.split("://", 1)[-1].rstrip("/")
    return bare if len(bare) <= limit else "…" + bare[-(limit - 1):]
