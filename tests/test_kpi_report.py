"""The controlling report of a real pipeline run (the session's demo run, 1,000 people).

The pipeline's last stage wrote it for the publication, and the export DAG wrote it again
with that publication's exports; headless Chromium (Debian's, network off) renders every
chart; a screenshot goes to ``$CDP_TEST_ARTIFACTS``, else the demo run's data directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
from report_browser import artifacts, render

from cdp.pipeline import read_stage_reports


def test_every_publication_gets_its_report_with_its_exports(demo_run) -> None:
    paths, summary = demo_run
    stage = read_stage_reports(paths, summary.run_id)["report"]
    page = Path(stage["path"])
    assert page.parent == paths.reports / "kpi" and stage["publication_run_id"] == summary.run_id
    assert (paths.reports / "kpi" / "latest.html").read_bytes() == page.read_bytes()
    html = page.read_text(encoding="utf-8")
    # the activation section lists each segment's export of this publication with its counts
    exports = read_stage_reports(paths, summary.run_id)["export"]["exports"]
    assert exports
    for export in exports:
        manifest = json.loads((Path(export["path"]).parent / "manifest.json").read_text())
        row = (rf"<td>{re.escape(export['segment'])}</td><td>{re.escape(manifest['run_id'])}"
               rf"</td><td>{manifest['candidates']:,}</td><td>[\d,]+</td>"
               rf"<td>{export['rows']:,}</td>")
        assert re.search(row, html), export["segment"]
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        profiles = con.execute("SELECT count(*) FROM main.dim_profiles").fetchone()
        kpi = con.execute("SELECT value FROM main.fct_kpi_history WHERE run_id = ? AND "
                          "area = 'customers' AND kpi = 'profiles'", [summary.run_id]).fetchone()
    assert profiles is not None and kpi is not None and kpi[0] == profiles[0]


def test_demo_report_renders_every_chart_offline_in_chromium(demo_run) -> None:
    paths, summary = demo_run
    stage = read_stage_reports(paths, summary.run_id)["report"]
    shot = render(Path(stage["path"]), artifacts(paths.home) / "kpi-report-demo.png")
    assert shot.page_errors == [] and shot.chart_errors == [], (shot.page_errors,
                                                               shot.chart_errors)
    assert shot.requests == []
    assert len(shot.charts) == stage["charts"] == shot.rendered == 13
    assert all(svgs >= 1 for svgs in shot.charts.values()), shot.charts
    for section in ("Campaigns", "Activation", "Customers", "Identity & data quality",
                    "Trends", "KPI definitions"):
        assert section in shot.text
    # the demo run's own gate, per checked table: every table it checked, nothing failed
    gate = read_stage_reports(paths, summary.run_id)["quality_gate"]
    tables = {suite["table"] for suite in gate["suites"]}
    assert "raw.crm_customers" in tables
    for table in tables:
        assert re.search(rf"{re.escape(summary.run_id)}\s+{re.escape(table)}\s+passed\s+"
                         rf"[\d,]+\s+0\b", shot.text), table
    assert shot.screenshot.stat().st_size > 100_000
    print(f"screenshot: {shot.screenshot}")
