"""One clock per run: traits, suppression windows and ingest's future-dated check all use the
run's as-of time (``RunContext.as_of``: the DAG's ``as_of`` param or data interval end,
``cdp run --as-of``, the demo's reference date), never the newest timestamp in the data."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from cdp.context import RunContext, parse_as_of
from cdp.dbt import run_environment
from cdp.demo.model import REFERENCE_DATE
from cdp.run import RunSummary, demo_as_of, load_dag, run_pipeline
from core.paths import DataPaths
from core.vocabulary import safe_run_id

DEMO_AS_OF = REFERENCE_DATE.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- the clock


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T00:00", datetime(2026, 11, 1, tzinfo=UTC)),
    (" 2026-11-01 06:30:15 ", datetime(2026, 11, 1, 6, 30, 15, tzinfo=UTC)),
    ("2026-11-01T01:00:00+01:00", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
])
def test_as_of_is_iso_8601_and_utc_unless_an_offset_says_otherwise(
    text: str, expected: datetime
) -> None:
    parsed = parse_as_of(text)
    assert parsed == expected and parsed.tzinfo == UTC


def test_an_unparsable_as_of_is_refused_naming_the_expected_form() -> None:
    with pytest.raises(ValueError, match="expected ISO 8601 such as 2026-11-01T00:00"):
        parse_as_of("1.11.2026")
    result = CliRunner(env={"COLUMNS": "500"}).invoke(
        app, ["run", "--as-of", "next tuesday", "--home", "/nonexistent/never-created"])
    assert result.exit_code == 2
    assert "as-of time 'next tuesday': expected ISO 8601" in " ".join(result.stderr.split())
    assert not Path("/nonexistent/never-created").exists()


def test_dbt_gets_the_run_clock_as_naive_utc(tmp_path: Path) -> None:
    berlin = timezone(timedelta(hours=1))
    ctx = RunContext.at_edge(tmp_path, as_of=datetime(2026, 11, 1, 1, 0, tzinfo=berlin))
    assert ctx.as_of == DEMO_AS_OF
    assert run_environment(ctx)["CDP_AS_OF"] == "2026-11-01 00:00:00"
    # Built without one, a context runs on the time it was built, not on the data.
    before = datetime.now(UTC)
    assert before <= RunContext.at_edge(tmp_path).as_of <= datetime.now(UTC)


def _task_context(params: dict[str, object], **dates: object) -> dict[str, object]:
    run_after = datetime(2026, 12, 3, 4, 5, tzinfo=UTC)
    return {"params": params, "dag_run": SimpleNamespace(run_after=run_after), **dates}


def test_the_dag_clock_is_the_param_else_the_data_interval_end_else_the_run() -> None:
    from cdp.orchestration import run_clock as clock

    interval_end = datetime(2026, 11, 2, tzinfo=UTC)
    logical = datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert clock(_task_context({"as_of": "2026-10-01T00:00"}, data_interval_end=interval_end)
                 ) == datetime(2026, 10, 1, tzinfo=UTC)
    assert clock(_task_context({"as_of": None}, data_interval_end=interval_end,
                               logical_date=logical)) == interval_end
    assert clock(_task_context({}, data_interval_end=None, logical_date=logical)) == logical
    # A manual or asset-triggered run without a logical date: when it was queued.
    assert clock(_task_context({}, data_interval_end=None, logical_date=None)) == datetime(
        2026, 12, 3, 4, 5, tzinfo=UTC)


def test_the_dag_declares_a_validated_as_of_param() -> None:
    params = load_dag().params
    assert params["as_of"] is None
    param = params.get_param("as_of")
    for good in ("2026-11-01", "2026-11-01T00:00", "2026-11-01T00:00:00+01:00"):
        param.resolve(good)
    with pytest.raises(Exception, match="does not match"):
        param.resolve("01.11.2026")


def test_generated_demo_data_runs_as_of_its_reference_date(demo_run) -> None:
    paths, summary = demo_run
    assert demo_as_of(paths) == DEMO_AS_OF
    assert summary.as_of == DEMO_AS_OF.isoformat()
    assert demo_as_of(DataPaths(paths.home / "no-demo-here")) is None
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        clocks = con.execute("SELECT DISTINCT as_of FROM main.dim_profile_traits").fetchall()
    assert clocks == [(REFERENCE_DATE,)]


# --------------------------------------------------------------------------- end to end


def _traits(paths: DataPaths) -> dict[str, tuple[Any, ...]]:
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        rows = con.execute(
            "SELECT profile_id, as_of, recency_days, churn_score, churn_risk, lifetime_value "
            "FROM main.dim_profile_traits").fetchall()
    return {row[0]: row[1:] for row in rows}


def _sizes(summary: RunSummary) -> dict[str, int]:
    return {e["segment"]: e["rows"] for e in summary.exports}


def _letters(number: int) -> str:
    """A distinct letters-only suffix per number (0 -> "aa", 1 -> "ab", ...)."""
    return chr(97 + number // 26 % 26) + chr(97 + number % 26)


def _redeliver_shop_with_sign_ups(paths: DataPaths, new: int, future: int) -> None:
    """The shop's next snapshot: every account again, ``new`` sign-ups of the last weeks
    (without newsletter opt-in or orders: no segment takes them) and ``future`` sign-ups
    dated three weeks after the run's as-of time (opted in to the newsletter)."""
    folder = paths.source_landing("shop_accounts")
    with (folder / "accounts.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    empty = {column: "" for column in rows[0]}
    for i in range(new + future):
        stamp = (DEMO_AS_OF + (timedelta(weeks=3) if i >= new else -timedelta(days=14 + i % 7))
                 ).strftime("%Y-%m-%dT%H:%M:%S")
        rows.append({**empty, "account_id": f"U-NEW-{i:03d}", "created_at": stamp,
                     "updated_at": stamp, "email": f"signup{i:03d}@example.org",
                     # letters only: names lose their digits in normalisation, and 155
                     # people called "zoe neu" would shift every name's term frequency
                     "first_name": "Zoe", "last_name": "Neu" + _letters(i),
                     "newsletter_opt_in": "true" if i >= new else "false"})
    with (folder / "accounts-next.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_future_dated_sign_ups_are_quarantined_and_move_no_trait_or_segment(
    demo_run, demo_home_copy: DataPaths
) -> None:
    _, first = demo_run
    paths = demo_home_copy
    before, sizes = _traits(paths), _sizes(first)
    assert sizes and first.succeeded
    _redeliver_shop_with_sign_ups(paths, new=150, future=5)

    summary = run_pipeline(paths)

    assert summary.succeeded, (summary.failed_tasks, summary.errors)
    after = _traits(paths)
    assert {profile: after[profile] for profile in before} == before  # churn, recency, LTV
    assert {row[0] for row in after.values()} == {REFERENCE_DATE}
    assert _sizes(summary) == sizes
    # The run says why: counted in the load report, quarantined with the reason and line.
    assert summary.future_dated_per_source == {**{s: 0 for s in summary.records_per_source},
                                               "shop_accounts": 5}
    assert summary.future_dated_after == (DEMO_AS_OF + timedelta(days=1)).isoformat()
    report = json.loads((paths.run_reports(summary.run_id) / "ingest__shop_accounts.json")
                        .read_text())
    assert (report["rows_loaded"], report["rows_rejected"], report["rows_future_dated"]) == (
        150, 5, 5)
    [file_report] = [f for f in report["files"] if f["file_name"] == "accounts-next.csv"]
    assert file_report["rows_future_dated"] == 5
    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        quarantined = con.execute(
            "SELECT account_id, _reason, _raw_line FROM raw.shop_accounts__rejected "
            "WHERE _run_id = ? ORDER BY account_id", [summary.run_id]).fetchall()
        graph = con.execute("SELECT count(*) FROM main.fct_identity_graph "
                            "WHERE starts_with(record_id, 'U-NEW-')").fetchone()
    assert [row[0] for row in quarantined] == [f"U-NEW-{i}" for i in range(150, 155)]
    assert all(row[1].startswith("future_dated: column 'updated_at' is after 2026-11-02 ")
               for row in quarantined)
    assert all(row[2].startswith("U-NEW-") for row in quarantined)  # whole raw lines
    assert graph == (150,)
    # Counts and names only in the reports, never a quarantined row's content.
    assert "example.org" not in json.dumps(report)


def test_only_future_dated_new_rows_fail_the_raw_gate_and_publish_nothing(
    demo_home_copy: DataPaths
) -> None:
    paths = demo_home_copy
    published = paths.published_db.read_bytes()
    _redeliver_shop_with_sign_ups(paths, new=0, future=5)

    summary = run_pipeline(paths)

    # Everything new in the delivery was quarantined: the raw gate's share check stops it.
    assert summary.failed_tasks.get("quality_gate") == "failed"
    assert summary.future_dated_per_source["shop_accounts"] == 5
    assert summary.quality is not None
    assert [f["suite"] for f in summary.quality["failures"]] == ["raw.shop_accounts.load"]
    assert paths.published_db.read_bytes() == published


def test_a_later_as_of_ages_traits_by_the_days_between_and_the_size_gate_stops_the_jump(
    demo_home_copy: DataPaths,
) -> None:
    paths = demo_home_copy
    before = _traits(paths)
    later = DEMO_AS_OF + timedelta(days=120)

    summary = run_pipeline(paths, as_of=later)

    after = _traits(paths)
    assert summary.as_of == later.isoformat()
    assert after.keys() == before.keys()
    assert {row[0] for row in after.values()} == {later.replace(tzinfo=None)}
    for profile, (_, recency, churn, _, _) in before.items():
        _, recency_now, churn_now, _, _ = after[profile]
        assert recency_now == (None if recency is None else recency + 120)
        assert churn_now >= churn
    # Churn risk grew for many: the win-back segment jumps and the export gate refuses it;
    # the report of the exports is not rewritten (the publication's own report stands).
    assert not summary.succeeded
    assert summary.failed_tasks == {"export": "failed", "report": "upstream_failed"}
    error = summary.errors["export"]
    assert error.startswith("export gate failed: [exports] exports.churn_winback_email.size")
    assert "segment churn_winback_email (previous export " in error and " members, now " in error
    assert not (paths.exports / "churn_winback_email" / safe_run_id(summary.run_id)).exists()
