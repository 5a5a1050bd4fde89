"""``build_report``: one self-contained HTML file of the KPIs of a publication.

Sections: campaigns (funnel per offer, weekly deliveries and rates, revenue attributed per
product group), activation (per export run and segment: candidates, dropped per suppression
step, written, joined, left), customers (contactable share per channel, RFM and churn bands,
life events per month, tickets per class), identity & data quality (records per source,
identity edges per decision, quarantined rows), trends over runs (``fct_kpi_history``) and the
definition of every KPI (``dim_kpi_definitions``, i.e. the dbt yml). The charts are Vega-Lite
specs rendered in the browser by vega-embed; the JavaScript comes from ``vl_convert``'s bundle
and is inlined, so the file needs no network.
"""

from __future__ import annotations

import html
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import altair as alt
import duckdb

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]

#: KPIs the trend section draws, (area, kpi, dimension value, title), each its own panel.
TREND_KPIS: tuple[tuple[str, str, str, str], ...] = (
    ("customers", "profiles", "all", "Profiles"),
    ("customers", "contactable_share", "email", "Contactable by e-mail (share)"),
    ("campaigns", "delivered", "all", "Offer deliveries"),
    ("campaigns", "open_rate", "all", "Open rate"),
    ("campaigns", "attributed_revenue", "all", "Attributed revenue (EUR)"),
    ("identity_quality", "records_per_profile", "all", "Records per profile"),
    ("identity_quality", "over_merge_refusals", "all", "Over-merge refusals"),
    ("customers", "complaint_rate", "all", "Ticket complaint rate"),
)


class ReportError(RuntimeError):
    """The report cannot be written (no publication, or it lacks the KPI marts)."""


@dataclass
class Report:
    path: Path
    run_id: str
    charts: list[str]
    bytes: int
    seconds: float


@dataclass
class _Page:
    """Sections in order; each holds HTML fragments and the chart specs it refers to."""

    sections: list[tuple[str, str, list[str]]] = field(default_factory=list)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def chart(self, name: str, chart: alt.TopLevelMixin) -> str:
        spec = chart.to_dict()
        self.specs[name] = spec
        return f'<div class="chart" id="chart-{name}" data-chart="{name}"></div>'


@contextmanager
def _read_only(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Rows:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _plain(value: Any) -> Any:
    """JSON-able: dates and times as ISO text (Vega-Lite parses them as temporal)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def build_report(published_db: Path, reports_dir: Path, exports_dir: Path | None = None
                 ) -> Report:
    """Write ``<reports_dir>/kpi/<run_id>.html`` from the publication (and ``latest.html``,
    the same bytes) and return where, its size and which charts it holds."""
    started = time.perf_counter()
    if not published_db.exists():
        raise ReportError(f"no publication at {published_db}: run the pipeline first")
    with _read_only(published_db) as con:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
        missing = {"fct_kpi_campaign_funnel", "fct_kpi_customers", "fct_kpi_identity_quality",
                   "fct_kpi_history", "dim_kpi_definitions"} - tables
        if missing:
            raise ReportError(f"publication {published_db} lacks {sorted(missing)}: "
                              "published before the KPI marts existed")
        run = con.execute("SELECT run_id, published_at FROM main._publication").fetchone()
        run_id, published_at = (str(run[0]), run[1]) if run else ("unknown", None)
        page = _Page()
        definitions = _rows(con, "SELECT model, kind, name, definition "
                                 "FROM main.dim_kpi_definitions ORDER BY model, kind, name")
        _campaigns(page, con)
        _activation(page, _manifests(exports_dir) if exports_dir else [])
        _customers(page, con)
        _identity_quality(page, con, _gate_runs(reports_dir / "runs"))
        _trends(page, con)
        _definitions(page, definitions)
    document = _document(page, run_id, published_at)
    folder = reports_dir / "kpi"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{_file_stem(run_id)}.html"
    _write_atomically(target, document)
    _write_atomically(folder / "latest.html", document)
    seconds = round(time.perf_counter() - started, 2)
    log.info("KPI report for run %s: %d charts, %.1f MB, %.1f s", run_id, len(page.specs),
             len(document.encode()) / 1e6, seconds)
    return Report(target, run_id, list(page.specs), len(document.encode()), seconds)


def _file_stem(run_id: str) -> str:
    from core.vocabulary import safe_run_id

    return safe_run_id(run_id)


def _write_atomically(target: Path, text: str) -> None:
    partial = target.with_name(f".{target.name}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


# ------------------------------------------------------------------------------ sections


def _table(rows: Rows, columns: list[tuple[str, str]], empty: str = "nothing yet",
           css: str = "figures") -> str:
    """A small table; a column whose key ends in ``rate`` or ``share`` is shown in percent."""
    if not rows:
        return f'<p class="empty">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = "".join(
        "<tr>" + "".join(
            f"<td>{html.escape(_cell(row.get(key), key.endswith(('rate', 'share'))))}</td>"
            for key, _ in columns) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and percent:
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.2f}" if value != int(value) else f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _headline(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The KPIs of ``table`` that are not broken down, one row each."""
    rows = _rows(con, f"SELECT kpi, value, denominator FROM main.{table} "
                      "WHERE dimension = 'all' ORDER BY kpi")
    shown = [{"kpi": r["kpi"], "of": r["denominator"],
              "value": _cell(r["value"], str(r["kpi"]).endswith(("rate", "share")))}
             for r in rows]
    return _table(shown, [("kpi", "KPI"), ("value", "value"), ("of", "of")])


def _bar(rows: Rows, x: str, y: str, title: str, *, color: str | None = None,
         x_title: str | None = None, y_title: str | None = None, sort: Any = "-x",
         fmt: str | None = None, height: int | None = None) -> alt.Chart:
    encoding: dict[str, Any] = {
        "x": alt.X(f"{x}:Q", title=x_title or x, axis=alt.Axis(format=fmt) if fmt else alt.Axis()),
        "y": alt.Y(f"{y}:N", title=y_title or y, sort=sort),
        "tooltip": [alt.Tooltip(f"{y}:N"), alt.Tooltip(f"{x}:Q", format=fmt or ",")],
    }
    if color:
        encoding["color"] = alt.Color(f"{color}:N")
        encoding["tooltip"].append(alt.Tooltip(f"{color}:N"))
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(**encoding)
    return chart.properties(title=title, width=420, height=height or max(60, 22 * len(
        {r[y] for r in rows}) if rows else 60))


def _campaigns(page: _Page, con: duckdb.DuckDBPyConnection) -> None:
    offers = _rows(con, """
        SELECT offer_id, any_value(product_group) AS product_group,
               sum(delivered) AS delivered, sum(opened) AS opened, sum(clicked) AS clicked,
               sum(accepted) AS accepted, sum(rejected) AS rejected,
               sum(unsubscribed) AS unsubscribed, sum(complaints) AS complaints,
               round(sum(opened) / nullif(sum(delivered), 0), 4) AS open_rate,
               round(sum(accepted) / nullif(sum(delivered), 0), 4) AS acceptance_rate,
               round(sum(attributed_revenue), 2) AS attributed_revenue
        FROM main.fct_kpi_campaign_funnel GROUP BY offer_id
        ORDER BY delivered DESC, offer_id""")
    stages = ("delivered", "opened", "clicked", "accepted")
    funnel = [{"offer_id": o["offer_id"], "stage": stage, "order": i, "profiles": o[stage]}
              for o in offers[:12] for i, stage in enumerate(stages)]
    funnel_chart = alt.Chart(alt.Data(values=funnel)).mark_bar().encode(
        x=alt.X("profiles:Q", title="profiles"),
        y=alt.Y("stage:N", sort=list(stages), title=None),
        color=alt.Color("stage:N", sort=list(stages), legend=None),
        row=alt.Row("offer_id:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
        tooltip=["offer_id:N", "stage:N", alt.Tooltip("profiles:Q", format=",")],
    ).properties(width=380, height=70, title="Funnel per offer (the 12 most delivered)")
    weekly = _rows(con, """
        SELECT week_start, channel, sum(delivered) AS delivered,
               round(sum(opened) / nullif(sum(delivered), 0), 4) AS open_rate
        FROM main.fct_kpi_campaign_funnel GROUP BY ALL ORDER BY week_start""")
    weekly_chart = alt.Chart(alt.Data(values=weekly)).mark_bar().encode(
        x=alt.X("week_start:T", timeUnit="yearweek", title="ISO week"),
        y=alt.Y("delivered:Q", title="profiles delivered to", stack="zero"),
        color="channel:N", tooltip=["week_start:T", "channel:N", "delivered:Q",
                                    alt.Tooltip("open_rate:Q", format=".1%")],
    ).properties(width=520, height=220, title="Deliveries per ISO week and channel")
    revenue = _rows(con, """
        SELECT coalesce(product_group, 'unknown') AS product_group,
               round(sum(attributed_revenue), 2) AS attributed_revenue,
               sum(attributed_orders) AS attributed_orders
        FROM main.fct_kpi_campaign_funnel GROUP BY ALL HAVING sum(attributed_orders) > 0
        ORDER BY attributed_revenue DESC""")
    days = con.execute("SELECT max(attribution_days) FROM main.fct_kpi_campaign_funnel"
                       ).fetchone()
    window = f" ({days[0]}-day window)" if days and days[0] is not None else ""
    body = [
        page.chart("campaign_funnel", funnel_chart),
        page.chart("campaign_weekly", weekly_chart),
        page.chart("campaign_revenue", _bar(revenue, "attributed_revenue", "product_group",
                                            f"Revenue attributed to accepted offers{window}",
                                            x_title="EUR", y_title="product group")),
        "<h3>Offers</h3>",
        _table(offers, [("offer_id", "offer"), ("product_group", "product group"),
                        ("delivered", "delivered"), ("opened", "opened"),
                        ("clicked", "clicked"), ("accepted", "accepted"),
                        ("rejected", "rejected"), ("unsubscribed", "unsubscribed"),
                        ("complaints", "complaints"), ("open_rate", "open rate"),
                        ("acceptance_rate", "acceptance rate"),
                        ("attributed_revenue", "revenue (EUR)")]),
    ]
    page.sections.append(("campaigns", "Campaigns", body))


def _manifests(exports_dir: Path) -> Rows:
    """Per export run and segment (from its manifest.json): candidates, dropped per step,
    written, joined, left. Counts only."""
    found: Rows = []
    for manifest in sorted(exports_dir.glob("*/*/manifest.json")):
        if manifest.parent.name.startswith("."):
            continue
        try:
            raw = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        files = {f.get("name"): f for f in raw.get("files", [])}
        found.append({
            "segment": raw.get("segment"), "run_id": raw.get("run_id"),
            "exported_at": raw.get("exported_at"), "candidates": raw.get("candidates"),
            "written": raw.get("rows"),
            "joined": (files.get("joined.csv") or {}).get("rows"),
            "left": (files.get("left.csv") or {}).get("rows"),
            "steps": [{"step": s.get("step"), "dropped": s.get("dropped", 0)}
                      for s in raw.get("steps", [])],
        })
    return sorted(found, key=lambda r: (str(r["exported_at"]), str(r["segment"])))


def _activation(page: _Page, exports: Rows) -> None:
    latest: dict[str, dict[str, Any]] = {}
    for export in exports:
        latest[str(export["segment"])] = export
    waterfall = []
    for segment, export in sorted(latest.items()):
        waterfall.append({"segment": segment, "step": "0 written", "profiles": export["written"]})
        for i, step in enumerate(export["steps"], start=1):
            waterfall.append({"segment": segment, "step": f"{i} {step['step']}",
                              "profiles": step["dropped"]})
    chart = alt.Chart(alt.Data(values=waterfall)).mark_bar().encode(
        x=alt.X("profiles:Q", stack="zero", title="candidates"),
        y=alt.Y("segment:N", title=None),
        color=alt.Color("step:N", title="written / dropped by step"),
        order=alt.Order("step:N"),
        tooltip=["segment:N", "step:N", alt.Tooltip("profiles:Q", format=",")],
    ).properties(width=520, height=max(60, 26 * len(latest)),
                 title="Suppression per segment (latest export): written and dropped per step")
    table = [{**e, "dropped": sum(s["dropped"] or 0 for s in e["steps"])} for e in exports]
    body = [
        page.chart("activation_suppression", chart),
        "<h3>Export runs</h3>",
        _table(table[::-1], [("exported_at", "exported at"), ("segment", "segment"),
                             ("run_id", "run"), ("candidates", "candidates"),
                             ("dropped", "dropped"), ("written", "written"),
                             ("joined", "joined"), ("left", "left")],
               empty="no export yet (exports follow each publication)"),
    ]
    page.sections.append(("activation", "Activation", body))


def _long(con: duckdb.DuckDBPyConnection, table: str, kpi: str) -> Rows:
    return _rows(con, f"SELECT dimension_value, value, denominator FROM main.{table} "
                      "WHERE kpi = ? ORDER BY dimension_value", [kpi])


def _customers(page: _Page, con: duckdb.DuckDBPyConnection) -> None:
    table = "fct_kpi_customers"
    bands = []
    for kpi, title in (("profiles_by_churn_risk", "churn risk"),
                       ("profiles_by_recency_band", "recency"),
                       ("profiles_by_frequency_band", "frequency"),
                       ("profiles_by_monetary_band", "monetary")):
        bands += [{"band": title, "value": r["dimension_value"], "profiles": r["value"]}
                  for r in _long(con, table, kpi)]
    bands_chart = alt.Chart(alt.Data(values=bands)).mark_bar().encode(
        x=alt.X("profiles:Q"), y=alt.Y("value:N", title=None),
        row=alt.Row("band:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
        tooltip=["band:N", "value:N", alt.Tooltip("profiles:Q", format=",")],
    ).resolve_scale(y="independent").properties(width=380, title="RFM and churn bands")
    events = _rows(con, "SELECT dimension_value AS event, period_start AS month, value AS "
                        f"profiles FROM main.{table} WHERE kpi = 'life_events' ORDER BY 2")
    events_chart = alt.Chart(alt.Data(values=events)).mark_line(point=True).encode(
        x=alt.X("month:T", timeUnit="yearmonth", title="month"),
        y=alt.Y("profiles:Q"), color="event:N",
        tooltip=["event:N", alt.Tooltip("month:T", timeUnit="yearmonth"), "profiles:Q"],
    ).properties(width=520, height=200, title="Life events per month")
    contactable = [{"channel": r["dimension_value"], "share": r["value"]}
                   for r in _long(con, table, "contactable_share")]
    tickets = [{"class": r["dimension_value"], "tickets": r["value"]}
               for r in _long(con, table, "tickets")]
    body = [
        _headline(con, table),
        page.chart("customer_contactable", _bar(
            contactable, "share", "channel", "Contactable share per channel", fmt=".0%",
            x_title="share of profiles", sort="-x")),
        page.chart("customer_bands", bands_chart),
        page.chart("customer_life_events", events_chart),
        page.chart("customer_tickets", _bar(tickets, "tickets", "class",
                                            "Support tickets per class", y_title="class")),
    ]
    page.sections.append(("customers", "Customers", body))


def _gate_runs(runs_dir: Path) -> Rows:
    """Per run and checked table (from the run's ``quality_gate.json``): expectations passed
    and failed, and whether the run's gate passed.  Counts only: a failure's text may quote a
    value.  Failed runs count too: they are the loads the gate stopped."""
    found: Rows = []
    for path in sorted(runs_dir.glob("*/quality_gate.json")):
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for suite in raw.get("suites", []):
            found.append({"run_id": raw.get("run_id"), "gate": "passed" if raw.get("passed")
                          else "failed", "layer": suite.get("layer"),
                          "table": suite.get("table"), "passed": suite.get("passed", 0),
                          "failed": suite.get("failed", 0)})
    return found


def _gate_summary(runs: Rows) -> Rows:
    """One row per run and checked table: expectations passed, failed (newest run first)."""
    summary: dict[tuple[str, str], dict[str, Any]] = {}
    for row in runs:
        key = (str(row["run_id"]), str(row["table"]))
        entry = summary.setdefault(key, {"run_id": key[0], "table": key[1], "gate": row["gate"],
                                         "passed": 0, "failed": 0})
        entry["passed"] += row["passed"] or 0
        entry["failed"] += row["failed"] or 0
    return sorted(summary.values(), key=lambda r: (r["run_id"], r["table"]), reverse=True)


def _identity_quality(page: _Page, con: duckdb.DuckDBPyConnection, gate_runs: Rows) -> None:
    table = "fct_kpi_identity_quality"
    records = [{"source": r["dimension_value"], "records": r["value"]}
               for r in _long(con, table, "records")]
    edges = [{"status": r["dimension_value"], "edges": r["value"]}
             for r in _long(con, table, "identity_edges")]
    quarantine = _rows(con, f"""
        SELECT dimension_value AS source,
               max(value) FILTER (WHERE kpi = 'rows_loaded') AS loaded,
               max(value) FILTER (WHERE kpi = 'rows_quarantined') AS quarantined,
               max(value) FILTER (WHERE kpi = 'quarantine_rate') AS quarantine_rate,
               max(value) FILTER (WHERE kpi = 'rows_loaded_this_run') AS loaded_this_run,
               max(value) FILTER (WHERE kpi = 'rows_quarantined_this_run') AS quarantined_this_run
        FROM main.{table} WHERE dimension = 'source' AND kpi LIKE 'rows_%' OR kpi =
            'quarantine_rate'
        GROUP BY 1 ORDER BY 1""")
    changes = _rows(con, f"SELECT dimension_value AS change, value AS profiles FROM main.{table}"
                         " WHERE kpi = 'profile_id_changes' ORDER BY 1")
    body = [
        _headline(con, table),
        page.chart("identity_records", _bar(records, "records", "source",
                                            "Source records per source")),
        page.chart("identity_edges", _bar(edges, "edges", "status",
                                          "Identity edges per clustering decision")),
        page.chart("quality_quarantine", _bar(
            [{"source": q["source"], "rate": q["quarantine_rate"] or 0.0} for q in quarantine],
            "rate", "source", "Quarantined share of delivered rows", fmt=".1%",
            x_title="quarantined / (loaded + quarantined)")),
        "<h3>Loads and quarantine per source</h3>",
        _table(quarantine, [("source", "source"), ("loaded", "rows loaded"),
                            ("quarantined", "quarantined"), ("quarantine_rate", "rate"),
                            ("loaded_this_run", "loaded this run"),
                            ("quarantined_this_run", "quarantined this run")]),
        "<h3>Profile id changes this run</h3>",
        _table(changes, [("change", "change"), ("profiles", "ids")]),
    ]
    per_run: dict[str, dict[str, Any]] = {}
    for row in gate_runs:
        entry = per_run.setdefault(str(row["run_id"]), {"run": str(row["run_id"]), "failed": 0})
        entry["failed"] += row["failed"] or 0
    body += [
        page.chart("quality_gate_runs", alt.Chart(alt.Data(values=list(per_run.values())))
                   .mark_bar().encode(
                       x=alt.X("run:N", title="run", sort="ascending",
                               axis=alt.Axis(labelAngle=-30, labelLimit=160)),
                       y=alt.Y("failed:Q", title="failed expectations"),
                       tooltip=["run:N", alt.Tooltip("failed:Q", format=",")])
                   .properties(width=520, height=160,
                               title="Quality gate: failed expectations per run")),
        "<h3>Quality gate per run and checked table</h3>",
        _table(_gate_summary(gate_runs)[:60],
               [("run_id", "run"), ("table", "table"), ("gate", "gate"),
                ("passed", "expectations passed"), ("failed", "failed")],
               empty="no gate result recorded"),
    ]
    page.sections.append(("identity", "Identity & data quality", body))


def _trends(page: _Page, con: duckdb.DuckDBPyConnection) -> None:
    wanted = [(area, kpi, value) for area, kpi, value, _ in TREND_KPIS]
    titles = {(area, kpi, value): title for area, kpi, value, title in TREND_KPIS}
    points = _rows(con, """
        SELECT area, kpi, dimension_value, run_id, as_of, snapshot_at, value
        FROM main.fct_kpi_history
        WHERE period_start IS NULL
          AND list_contains(?, area || '/' || kpi || '/' || dimension_value)
        ORDER BY snapshot_at""", [["/".join(key) for key in wanted]])
    order = list(dict.fromkeys(p["run_id"] for p in points))  # oldest snapshot first
    for point in points:
        point["title"] = titles[(point["area"], point["kpi"], point["dimension_value"])]
        point["run"] = order.index(point["run_id"]) + 1
    runs = len(order)
    chart = alt.Chart(alt.Data(values=points)).mark_line(point=True).encode(
        x=alt.X("run:O", title="run (oldest first)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=["title:N", "run_id:N", "as_of:T", alt.Tooltip("value:Q", format=",.4~f")],
    ).properties(width=240, height=120).facet(
        facet=alt.Facet("title:N", title=None, sort=[t for *_, t in TREND_KPIS]), columns=3,
    ).resolve_scale(y="independent").properties(title=f"KPIs over the last {runs} run(s)")
    body = [page.chart("trends", chart),
            f"<p>{runs} snapshot(s) in fct_kpi_history; every run appends one.</p>"]
    page.sections.append(("trends", "Trends", body))


def _definitions(page: _Page, definitions: Rows) -> None:
    models = sorted({str(d["model"]) for d in definitions})
    body = []
    for model in models:
        own = [d for d in definitions if d["model"] == model]
        about = next((d["definition"] for d in own if d["kind"] == "model"), "")
        rows = [d for d in own if d["kind"] != "model"]
        body += [f"<h3>{html.escape(model)}</h3>", f"<p>{html.escape(str(about))}</p>",
                 _table(rows, [("name", "KPI / column"), ("definition", "definition")],
                        css="text")]
    page.sections.append(("definitions", "KPI definitions", body))


# ------------------------------------------------------------------------------ document


@cache
def _javascript() -> str:
    """Vega, Vega-Lite and vega-embed as one script (from the vl-convert wheel), for the
    Vega-Lite version Altair writes; it sets ``vegaEmbed`` on ``window``."""
    import vl_convert

    version = "v" + ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    snippet = "window.vegaEmbed = vegaEmbed; window.vegaLite = vegaLite; window.vega = vega;"
    return str(vl_convert.javascript_bundle(snippet, vl_version=version))


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { background: #1f3a5f; color: #fff; padding: 12px 24px; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; font-size: 13px; opacity: .85; }
nav { position: sticky; top: 0; background: #eef2f7; padding: 8px 24px; z-index: 1; }
nav a { margin-right: 16px; color: #1f3a5f; text-decoration: none; font-weight: 600; }
section { padding: 8px 24px 24px; border-bottom: 1px solid #ddd; }
.chart { display: inline-block; vertical-align: top; margin: 8px 24px 8px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.text td, table.text th { text-align: left; } table.text td:last-child { max-width: 900px; }
th { background: #f4f6f9; } td:first-child, th:first-child { text-align: left; }
.empty { color: #777; font-style: italic; }
"""


def _document(page: _Page, run_id: str, published_at: Any) -> str:
    nav = "".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title, _ in page.sections)
    sections = "".join(
        f'<section id="{key}"><h2>{html.escape(title)}</h2>{"".join(body)}</section>'
        for key, title, body in page.sections)
    # </script> inside a spec's strings must not close the script element
    specs = json.dumps(page.specs).replace("</", "<\\/")
    boot = """
window.__charts = {rendered: 0, errors: [], done: false};
const specs = JSON.parse(document.getElementById('chart-specs').textContent);
Promise.all(Object.entries(specs).map(([name, spec]) =>
  vegaEmbed('#chart-' + name, spec, {actions: false, renderer: 'svg'})
    .then(() => { window.__charts.rendered += 1; })
    .catch((error) => { window.__charts.errors.push(name + ': ' + error); })
)).then(() => { window.__charts.done = true; });
"""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>CDP controlling report - run {html.escape(run_id)}</title>
<style>{STYLE}</style>
<script>{_javascript()}</script>
</head><body>
<header><h1>CDP controlling report</h1>
<p>Publication of run {html.escape(run_id)}, published {html.escape(str(published_at))} UTC.
Counts and rates from the published warehouse; definitions from the dbt models.</p></header>
<nav>{nav}</nav>
{sections}
<script type="application/json" id="chart-specs">{specs}</script>
<script>{boot}</script>
</body></html>
"""
