"""KPI marts on a hand-made landing set, every expected value computed by hand.

Ten CRM customers (loyalty cards, e-mail addresses; the first five opted in to e-mail) get
one mail of offer OF-100 (product group garden) in ISO week 2026-W37: 10 deliveries, 3 opens,
1 click, 1 unsubscribe, 1 spam complaint. Customer 0 redeems the coupon at the till three
days later (40 EUR, garden) and buys garden for 20 EUR on day 10 (inside the 14-day window),
for 80 EUR on day 20 (outside) and fashion for 99 EUR on day 5 (another product group). One
till row has an amount that is no number: it is quarantined.

Run 1 builds that (ingest + dbt build, Splink inside), publishes and exports every segment.
Run 2 continues on a copy of the data directory with an eleventh customer who also gets the
mail: its activation KPIs are run 1's exports, fct_kpi_history holds two snapshots, and each
KPI has two points with the delta between them. Run 2 is then published
and the pipeline's report stage writes the controlling report, which headless Chromium opens
with the network off.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from report_browser import artifacts, render
from small_builds import ingest_and_build, read_build, write_landing_csv

from cdp.context import RunContext
from cdp.demo.sources import COLUMNS
from cdp.pipeline import export, publish, report
from cdp.settings import data_paths
from core.paths import DataPaths

pytestmark = pytest.mark.integration  # two ingest + dbt builds in the module fixture

AS_OF = datetime(2026, 11, 1)
NAMES = [("Anna", "Schmidt"), ("Ben", "Weber"), ("Clara", "Roth"), ("Dora", "Lang"),
         ("Emil", "Braun"), ("Felix", "Neumann"), ("Greta", "Vogel"), ("Hans", "Fischer"),
         ("Ida", "Wolf"), ("Jonas", "Koch"), ("Karla", "Mayer")]


def _crm(i: int) -> tuple[str, ...]:
    first, last = NAMES[i]
    return (f"C-{i}", f"K{100 + i}", "", first, last, "", f"{first}.{last}@example.com".lower(),
            "", f"Weg {i}", str(i + 1), "10115", "Berlin", "DE", f"L{100 + i}",
            "ja" if i < 5 else "", "", "", "01.01.2026 08:00")


def _mail(event: str, i: int, at: str) -> tuple[str, ...]:
    first, last = NAMES[i]
    return (f"E-{event}-{i}", at, f"{first}.{last}@example.com".lower(), event, "CMP-9",
            "OF-100", "garden")


CRM = [_crm(i) for i in range(10)]
EMAIL = [
    *(_mail("delivered", i, "2026-09-07T08:00:00") for i in range(10)),
    *(_mail("open", i, "2026-09-07T09:00:00") for i in range(3)),
    _mail("click", 0, "2026-09-07T09:05:00"),
    _mail("unsubscribe", 4, "2026-09-08T10:00:00"),
    _mail("complaint", 3, "2026-09-08T11:00:00"),
]
POS = [
    ("O-1", "2026-09-10T10:00:00", "S1", "L100", "40.00", "garden", "OF-100"),  # the coupon
    ("O-2", "2026-09-17T10:00:00", "S1", "L100", "20.00", "garden", ""),  # day 10: counts
    ("O-3", "2026-09-27T10:00:00", "S1", "L100", "80.00", "garden", ""),  # day 20: outside
    ("O-4", "2026-09-12T10:00:00", "S1", "L100", "99.00", "fashion", ""),  # other group
    ("O-5", "2026-09-12T10:00:00", "S1", "L101", "zwölf", "garden", ""),  # quarantined
]
RUN2_CRM = [_crm(10)]
RUN2_EMAIL = [_mail("delivered", 10, "2026-09-07T08:00:00")]


@pytest.fixture(scope="module")
def kpi_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, DataPaths]:
    """(run 1, run 2) data directories, each with a built warehouse; run 2 continues run 1's."""
    first = data_paths(tmp_path_factory.mktemp("kpi-1")).ensure()
    land = first.source_landing
    write_landing_csv(land("crm_customers") / "crm_1.csv", COLUMNS["crm_customers"], CRM, ";")
    write_landing_csv(land("email_events") / "email_1.csv", COLUMNS["email_events"], EMAIL)
    write_landing_csv(land("pos_orders") / "pos_1.csv", COLUMNS["pos_orders"], POS)
    ingest_and_build(first, "kpi-run-1", AS_OF)
    ctx = RunContext.at_edge(first.home, run_id="kpi-run-1", as_of=AS_OF)
    publish(ctx)
    export(ctx)  # what run 2's activation KPIs read
    second = data_paths(tmp_path_factory.mktemp("kpi-2") / "home")
    shutil.copytree(first.home, second.home)
    write_landing_csv(second.source_landing("crm_customers") / "crm_2.csv",
                      COLUMNS["crm_customers"], RUN2_CRM, ";")
    write_landing_csv(second.source_landing("email_events") / "email_2.csv",
                      COLUMNS["email_events"], RUN2_EMAIL)
    ingest_and_build(second, "kpi-run-2", AS_OF)
    return first, second


@pytest.fixture(scope="module")
def run1(kpi_builds: tuple[DataPaths, DataPaths]) -> Iterator[duckdb.DuckDBPyConnection]:
    yield from read_build(kpi_builds[0])


@pytest.fixture(scope="module")
def run2(kpi_builds: tuple[DataPaths, DataPaths]) -> Iterator[duckdb.DuckDBPyConnection]:
    yield from read_build(kpi_builds[1])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[dict[str, object]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _kpis(con: duckdb.DuckDBPyConnection, table: str) -> dict[tuple[str, str], float | None]:
    return {(str(r["kpi"]), str(r["dimension_value"])): r["value"]  # type: ignore[misc]
            for r in _rows(con, f"SELECT * FROM main.{table} WHERE period_start IS NULL"
                           if table == "fct_kpi_customers" else f"SELECT * FROM main.{table}")}


# ------------------------------------------------------------------------------ campaigns


def test_campaign_funnel_counts_rates_and_attributed_revenue(run1) -> None:
    rows = _rows(run1, "SELECT * FROM main.fct_kpi_campaign_funnel ORDER BY channel")
    assert [(r["offer_id"], r["channel"], r["iso_week"], str(r["week_start"])) for r in rows] == [
        ("OF-100", "email", "2026-W37", "2026-09-07"),
        ("OF-100", "pos", "2026-W37", "2026-09-07"),
    ]
    email, pos = rows
    assert {k: email[k] for k in ("product_group", "delivered", "opened", "clicked", "accepted",
                                   "rejected", "unsubscribed", "complaints")} == {
        "product_group": "garden", "delivered": 10, "opened": 3, "clicked": 1, "accepted": 0,
        "rejected": 0, "unsubscribed": 1, "complaints": 1}
    assert {k: email[k] for k in ("open_rate", "click_rate", "click_to_open_rate",
                                   "acceptance_rate", "unsubscribe_rate", "complaint_rate")} == {
        "open_rate": 0.3, "click_rate": 0.1, "click_to_open_rate": 0.3333,
        "acceptance_rate": 0.0, "unsubscribe_rate": 0.1, "complaint_rate": 0.1}
    # The coupon at the till: accepted once; revenue = the coupon order (40) + day 10 (20).
    assert (pos["delivered"], pos["accepted"], pos["open_rate"]) == (0, 1, None)
    assert (pos["attributed_orders"], pos["attributed_revenue"], pos["attribution_days"]) == (
        2, 60.0, 14)
    assert email["attributed_revenue"] == 0.0


# ------------------------------------------------------------------------------ customers


def test_customer_kpis(run1) -> None:
    kpis = _kpis(run1, "fct_kpi_customers")
    assert kpis[("profiles", "all")] == 10
    # opted in: customers 0-4; 3 complained and 4 unsubscribed: 0, 1, 2 remain
    assert kpis[("contactable_share", "email")] == 0.3
    assert kpis[("contactable_share", "sms")] == 0.0
    # customer 0: 3 valid orders (40 + 20 + 80 + 99 = 239 in 4 orders), last on 27 Sep
    assert kpis[("buyers", "all")] == 1
    assert kpis[("profiles_by_frequency_band", "4+ orders")] == 1
    assert kpis[("profiles_by_frequency_band", "0 orders")] == 9
    assert kpis[("profiles_by_recency_band", "31-90 days")] == 1  # 35 days before 1 Nov
    assert kpis[("profiles_by_monetary_band", "200+ EUR")] == 1
    assert kpis[("average_order_value", "all")] == 59.75
    assert kpis[("spam_complaint_profiles", "all")] == 1
    assert sum(v for (k, _), v in kpis.items() if k == "profiles_by_churn_risk") == 10


# ------------------------------------------------------------------------ identity, quality


def test_identity_and_quality_kpis(run1) -> None:
    kpis = _kpis(run1, "fct_kpi_identity_quality")
    assert kpis[("records", "crm_customers")] == 10
    assert kpis[("records", "email_events")] == 16
    assert kpis[("records", "pos_orders")] == 4
    assert kpis[("profiles", "all")] == 10
    assert kpis[("records_per_profile", "all")] == 3.0  # 30 records, 10 people
    assert kpis[("sources_per_profile", "all")] == 2.1  # CRM and e-mail each, one buyer: 21 / 10
    assert kpis[("multi_source_profile_share", "all")] == 1.0
    assert kpis[("rows_loaded", "pos_orders")] == 4
    assert kpis[("rows_quarantined", "pos_orders")] == 1
    assert kpis[("quarantine_rate", "pos_orders")] == 0.2
    assert kpis[("rows_quarantined_this_run", "pos_orders")] == 1
    assert kpis[("profile_id_changes", "new")] == 10
    assert kpis[("over_merge_refusals", "all")] == 0


def test_every_kpi_has_its_definition_from_the_yml(run1) -> None:
    definitions = {(r["model"], r["kind"], r["name"]): r["definition"] for r in _rows(
        run1, "SELECT * FROM main.dim_kpi_definitions")}
    assert definitions[("fct_kpi_campaign_funnel", "column", "open_rate")].startswith(
        "opened / delivered")
    for table in ("fct_kpi_customers", "fct_kpi_identity_quality"):
        named = {r["kpi"] for r in _rows(run1, f"SELECT DISTINCT kpi FROM main.{table}")}
        defined = {name for model, kind, name in definitions if model == table and kind == "kpi"}
        assert named <= defined, named - defined
    assert all(definitions.values())


# ----------------------------------------------------------------------------- activation


def test_activation_kpis_are_the_earlier_publications_exports(run1, run2, kpi_builds) -> None:
    # run 1 built before it exported: nothing yet
    assert run1.execute("SELECT count(*) FROM main.fct_kpi_activation").fetchone() == (0,)
    kpis = {(r["segment"], r["kpi"], r["dimension_value"]): r["value"] for r in _rows(
        run2, "SELECT * FROM main.fct_kpi_activation WHERE export_run_id = 'kpi-run-1'")}
    # email_newsletter: customers 0, 1, 2 (opted in, neither unsubscribed nor complained);
    # September's mail is outside the week the frequency cap counts; nobody has ad consent
    newsletter = {k[1:]: v for k, v in kpis.items() if k[0] == "email_newsletter"}
    assert newsletter[("candidates", "all")] == 3
    assert newsletter[("written", "all")] == 3
    assert (newsletter[("joined", "all")], newsletter[("left", "all")]) == (3, 0)
    assert {k[1]: v for k, v in newsletter.items() if k[0] == "dropped_by_step"} == {
        "consent": 0, "frequency_cap": 0, "cooldown": 0, "excluded_product_group": 0}
    assert newsletter[("dropped_by_purpose", "online_ads/no_opt_in")] == 3
    # churn_winback_email: the one buyer is at low churn risk (35 days since the last order),
    # so the segment never had a candidate and was not exported: no activation rows
    assert not any(k[0] == "churn_winback_email" for k in kpis)
    # every export: its steps drop exactly what lies between candidates and written
    for segment in {k[0] for k in kpis}:
        dropped = sum(v for k, v in kpis.items() if k[0] == segment and k[1] == "dropped_by_step")
        assert kpis[(segment, "candidates", "all")] - dropped == kpis[(segment, "written", "all")]
    history = dict(run2.execute(
        "SELECT run_id, value FROM main.fct_kpi_history WHERE area = 'activation' "
        "AND kpi = 'written' AND dimension_value = 'email_newsletter'").fetchall())
    assert history == {"kpi-run-2": 3.0}


# ----------------------------------------------------------------------------------- trend


def test_two_runs_give_every_kpi_two_points(run1, run2) -> None:
    first = _rows(run1, "SELECT DISTINCT run_id FROM main.fct_kpi_history")
    assert first == [{"run_id": "kpi-run-1"}]
    points = _rows(run2, """
        SELECT area, kpi, dimension_value, list(value ORDER BY as_of, run_id) AS values,
               list(run_id ORDER BY as_of, run_id) AS runs
        FROM main.fct_kpi_history WHERE period_start IS NULL
        GROUP BY ALL""")
    by_kpi = {(p["area"], p["kpi"], p["dimension_value"]): p for p in points}
    # every KPI of run 1 has its second point (activation starts with run 1's exports)
    assert all(p["runs"] == ["kpi-run-1", "kpi-run-2"] for p in points
               if p["area"] != "activation"), [
        p for p in points if p["runs"] != ["kpi-run-1", "kpi-run-2"]]
    assert by_kpi[("campaigns", "delivered", "email")]["values"] == [10.0, 11.0]
    assert by_kpi[("campaigns", "open_rate", "all")]["values"] == [0.3, 0.2727]  # 3/10, 3/11
    assert by_kpi[("campaigns", "attributed_revenue", "all")]["values"] == [60.0, 60.0]
    assert by_kpi[("customers", "profiles", "all")]["values"] == [10.0, 11.0]
    assert by_kpi[("identity_quality", "records", "crm_customers")]["values"] == [10.0, 11.0]


# ---------------------------------------------------------------------------------- report


@pytest.fixture(scope="module")
def published_report(kpi_builds: tuple[DataPaths, DataPaths]) -> tuple[DataPaths, dict]:
    """Run 2 published, then the report stage, as the pipeline's last two stages run."""
    paths = kpi_builds[1]
    ctx = RunContext.at_edge(paths.home, run_id="kpi-run-2", as_of=AS_OF)
    publish(ctx)
    return paths, report(ctx)


def test_report_stage_writes_one_self_contained_file(published_report) -> None:
    paths, stage = published_report
    page = paths.reports / "kpi" / "kpi-run-2.html"
    assert stage["path"] == str(page) and stage["publication_run_id"] == "kpi-run-2"
    assert stage["charts"] == 13
    html = page.read_text(encoding="utf-8")
    assert (paths.reports / "kpi" / "latest.html").read_text(encoding="utf-8") == html
    assert "vegaEmbed" in html and stage["bytes"] == len(html.encode())
    # the page around the inlined chart library: nothing to fetch (no script, style sheet or
    # image from anywhere), counts and rates only (no name or e-mail address of the landing
    # data)
    shown = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert len(shown) < len(html) / 2
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)\s*=", shown, re.I)
    for first, last in NAMES:
        assert not re.search(rf"\b({first}|{last})\b", shown), (first, last)
    assert "@example.com" not in shown and "OF-100" in shown


def test_report_renders_every_chart_offline_in_chromium(published_report) -> None:
    paths, stage = published_report
    shot = render(Path(stage["path"]), artifacts(paths.home) / "kpi-report-small.png")
    assert shot.page_errors == [] and shot.chart_errors == [], (shot.page_errors,
                                                               shot.chart_errors)
    assert shot.requests == []
    assert len(shot.charts) == stage["charts"] == shot.rendered
    assert all(svgs >= 1 for svgs in shot.charts.values()), shot.charts
    # what a person reads: the offer's row, the trend over both runs, the definitions
    assert re.search(r"OF-100\s+garden\s+11\s+3\s+1\s+1\s+0\s+1\s+1\s+27\.3%", shot.text)
    assert "2 snapshot(s) in fct_kpi_history" in shot.text
    assert "opened / delivered" in shot.text
    assert shot.screenshot.stat().st_size > 50_000
    print(f"screenshot: {shot.screenshot}")


def test_gate_results_per_run_and_table_are_counted_not_quoted(tmp_path: Path) -> None:
    """The report's quality-gate table: every run's gate (failed ones too, they are the loads
    it stopped), per checked table, counts only: a failure's text may quote a value."""
    from profiles.reporting.report import _gate_runs, _gate_summary

    runs = tmp_path / "runs"
    for run, passed, crm_failed in (("run-a", True, 0), ("run-b", False, 2)):
        (runs / run).mkdir(parents=True)
        (runs / run / "quality_gate.json").write_text(json.dumps({
            "run_id": run, "passed": passed,
            "failures": ["raw.crm_customers: email 'anna@example.com' does not parse"]
            if crm_failed else [],
            "suites": [
                {"layer": "raw", "suite": "raw.crm_customers", "table": "raw.crm_customers",
                 "passed": 3, "failed": 0},
                {"layer": "raw", "suite": "raw.crm_customers.formats",
                 "table": "raw.crm_customers", "passed": 1, "failed": crm_failed},
                {"layer": "profiles", "suite": "profiles.dim_profiles",
                 "table": "main.dim_profiles", "passed": 5, "failed": 0}]}))
    (runs / "run-c").mkdir()  # a run that stopped before its gate: no file, no row
    rows = _gate_runs(runs)
    assert "anna@example.com" not in json.dumps(rows)
    assert _gate_summary(rows) == [
        {"run_id": "run-b", "table": "raw.crm_customers", "gate": "failed", "passed": 4,
         "failed": 2},
        {"run_id": "run-b", "table": "main.dim_profiles", "gate": "failed", "passed": 5,
         "failed": 0},
        {"run_id": "run-a", "table": "raw.crm_customers", "gate": "passed", "passed": 4,
         "failed": 0},
        {"run_id": "run-a", "table": "main.dim_profiles", "gate": "passed", "passed": 5,
         "failed": 0},
    ]
