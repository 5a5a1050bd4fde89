"""``cdp report``: the controlling report (KPIs, trends, definitions) of the publication."""

from __future__ import annotations

from cdp.commands.options import HomeOption, console, fail, paths_for


def report(home: HomeOption = None) -> None:
    """Write the KPI report of the current publication: one self-contained HTML file under
    reports/kpi/ (<run id>.html and latest.html) that opens without network."""
    from profiles.reporting.report import ReportError, build_report

    paths = paths_for(home)
    try:
        written = build_report(paths.published_db, paths.reports, paths.exports)
    except ReportError as error:
        fail(error)
    console.print(f"{len(written.charts)} charts, {written.bytes / 1e6:.1f} MB, "
                  f"{written.seconds:.1f} s (publication of run {written.run_id})")
    print(written.path)
