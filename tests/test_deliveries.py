"""Re-deliveries, withdrawals and per-delivery statistics on real files and a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingest.errors import IngestError
from ingest.loader import connect, load_all
from ingest.registry import RegistryError, parse_registry
from ingest.withdraw import reinstate, withdraw

REGISTRY = {
    "sources": {
        "orders": {
            "kind": "offline", "format": "csv", "delivery": "incremental",
            "record_key": "order_id", "timestamp": "order_ts",
            "columns": {"order_ts": "timestamp", "amount": "double"},
            "identity": {"email": "email"},
        },
        "crm": {
            "kind": "offline", "format": "csv", "csv": {"delimiter": ";", "encoding": "latin-1"},
            "record_key": "row_id", "timestamp": "geaendert",
            "identity": {"last_name": "nachname"},
        },
    }
}


@pytest.fixture()
def env(tmp_path: Path) -> dict:
    landing = tmp_path / "landing"
    for name in ("orders", "crm"):
        (landing / name).mkdir(parents=True)
    return {"registry": parse_registry(REGISTRY), "landing": landing,
            "db": tmp_path / "build.duckdb"}


def run(env: dict, run_id: str, **kwargs):  # type: ignore[no-untyped-def]
    return load_all(env["db"], env["registry"], env["landing"], run_id, **kwargs)


def query(env: dict, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(env["db"]), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_same_content_in_other_bytes_is_not_loaded_again(env: dict) -> None:
    crm = env["landing"] / "crm"
    (crm / "a.csv").write_bytes("row_id;nachname;geaendert\n1;Müller;2026-01-01\n"
                                "2;Weiß;2026-01-02\n".encode("latin-1"))
    run(env, "r1")
    # Same records: CRLF line ends, other column order, and row 2 changed.
    (crm / "b.csv").write_bytes("geaendert;row_id;nachname\r\n2026-01-01;1;Müller\r\n"
                                "2026-02-01;2;Weiß-Neu\r\n".encode("latin-1"))
    [_, report] = run(env, "r2")
    [item] = [f for f in report.files if f.file_name == "b.csv"]
    assert (item.rows_in_file, item.rows_loaded, item.rows_duplicate) == (2, 1, 1)
    assert query(env, "SELECT row_id, nachname FROM raw.crm ORDER BY _loaded_at, row_id") == [
        ("1", "Müller"), ("2", "Weiß"), ("2", "Weiß-Neu")]
    assert query(env, "SELECT row_id, nachname FROM raw.crm__latest ORDER BY 1") == [
        ("1", "Müller"), ("2", "Weiß-Neu")]
    assert query(env, "SELECT rows_in_file, rows_loaded, rows_duplicate, rows_known_key "
                 "FROM raw._load_ledger WHERE file_name = 'b.csv'") == [(2, 1, 1, 2)]


def test_an_older_version_delivered_later_is_history_not_current(env: dict) -> None:
    crm = env["landing"] / "crm"
    (crm / "1-update.csv").write_text("row_id;nachname;geaendert\n7;Neu;2026-11-01\n",
                                      encoding="latin-1")
    run(env, "r1")
    (crm / "2-replay.csv").write_text("row_id;nachname;geaendert\n7;Alt;2026-01-15\n",
                                      encoding="latin-1")
    run(env, "r2")
    assert query(env, "SELECT count(*) FROM raw.crm") == [(2,)]
    assert query(env, "SELECT nachname FROM raw.crm__latest") == [("Neu",)]


def test_withdraw_removes_rows_hands_over_redelivered_ones_and_refuses_the_bytes(
    env: dict,
) -> None:
    orders = env["landing"] / "orders"
    header = "order_id,email,order_ts,amount\n"
    (orders / "a.csv").write_text(header + "1,a@x.de,2026-01-01,1\n2,b@x.de,2026-01-02,2\n"
                                  "3,bad,not a date,3\n")
    (orders / "b.csv").write_text(header + "2,b@x.de,2026-01-02,2\n4,d@x.de,2026-01-04,4\n")
    run(env, "r1")
    assert query(env, "SELECT count(*) FROM raw.orders__rejected") == [(1,)]

    con = connect(env["db"])
    try:
        report = withdraw(con, env["registry"]["orders"], orders, "a.csv", "w1")
    finally:
        con.close()
    assert (report.status, report.rows_removed, report.rows_rejected_removed,
            report.rows_handed_over) == ("withdrawn", 1, 1, 1)
    # Order 2 was re-sent by b.csv: it stays, now as b.csv's row; order 1 is gone.
    assert query(env, "SELECT order_id, _source_file FROM raw.orders ORDER BY 1") == [
        ("2", "b.csv"), ("4", "b.csv")]
    assert query(env, "SELECT count(*) FROM raw.orders__rejected") == [(0,)]
    assert query(env, "SELECT file_name, status, rows_loaded, rows_duplicate FROM "
                 "raw._load_ledger ORDER BY file_name") == [
        ("a.csv", "withdrawn", 2, 0), ("b.csv", "loaded", 2, 0)]
    # The same bytes are not loaded again, under any name ...
    (orders / "a-again.csv").write_bytes((orders / "a.csv").read_bytes())
    [report] = run(env, "r2", sources=["orders"])
    assert report.rows_loaded == 0 and report.files_skipped == 3
    # ... until reinstated.
    con = connect(env["db"])
    try:
        reinstate(con, env["registry"]["orders"], orders, "a.csv")
    finally:
        con.close()
    [report] = run(env, "r3", sources=["orders"])
    assert report.rows_loaded == 1 and report.rows_duplicate == 1 and report.rows_rejected == 1


def test_withdraw_a_file_that_never_loaded_and_ambiguous_names(env: dict) -> None:
    orders = env["landing"] / "orders"
    (orders / "broken.csv").write_text("order_id,amount\n1,2\n")  # mapped columns missing
    (orders / "later.csv").write_text("order_id,email,order_ts,amount\n5,e@x.de,2026-01-05,5\n")
    [report, _] = run(env, "r1", raise_on_error=False)
    assert report.files_failed == 1 and report.rows_loaded == 1
    assert "broken.csv" in (report.error or "") and "withdraw" in (report.error or "")
    assert query(env, "SELECT file_name FROM raw._file_quarantine") == [("broken.csv",)]

    con = connect(env["db"])
    try:
        assert withdraw(con, env["registry"]["orders"], orders, "broken.csv", "w").status == (
            "blocked")
        with pytest.raises(IngestError, match="no loaded delivery named 'gone.csv'"):
            withdraw(con, env["registry"]["orders"], orders, "gone.csv", "w")
    finally:
        con.close()
    assert query(env, "SELECT count(*) FROM raw._file_quarantine") == [(0,)]
    [report] = run(env, "r2", sources=["orders"])
    assert report.ok and report.files_skipped == 2


def test_ledger_records_delivery_kind_and_record_time_span(env: dict) -> None:
    (env["landing"] / "orders" / "m.csv").write_text(
        "order_id,email,order_ts,amount\n1,a@x.de,2026-01-01 10:00,1\n2,b@x.de,2026-01-31,2\n")
    run(env, "r1", sources=["orders"])
    assert query(env, "SELECT delivery, first_record_at::VARCHAR, last_record_at::VARCHAR, "
                 "rows_known_key FROM raw._load_ledger") == [
        ("incremental", "2026-01-01 10:00:00", "2026-01-31 00:00:00", 0)]


def test_unknown_delivery_kind_is_named() -> None:
    bad = {"sources": {"x": {**REGISTRY["sources"]["orders"], "delivery": "daily"}}}
    with pytest.raises(RegistryError, match=r"^sources\.yml: sources\.x\.delivery: Input "
                       "should be 'snapshot' or 'incremental'$"):
        parse_registry(bad, "sources.yml")


def _gate_raw(env: dict, tmp_path: Path):  # type: ignore[no-untyped-def]
    from quality.gate import run_gate
    from quality.thresholds import Thresholds

    return run_gate(env["db"], ["raw"], tmp_path / "reports", thresholds=Thresholds(),
                    sources_config=tmp_path / "no-sources.yml")


def _orders(first: int, days: int, per_day: int = 1) -> str:
    lines = ["order_id,email,order_ts,amount\n"]
    for day in range(days):
        for n in range(per_day):
            i = first + day * per_day + n
            lines.append(f"{i},u{i}@x.de,2025-01-01 10:00:00,{i}\n".replace(
                "2025-01-01", f"(DAY{day})"))
    return "".join(lines)


def _dated(text: str, start: str) -> str:
    import datetime as dt
    import re

    base = dt.date.fromisoformat(start)
    return re.sub(r"\(DAY(\d+)\)",
                  lambda m: (base + dt.timedelta(days=int(m.group(1)))).isoformat(), text)


@pytest.mark.integration
def test_gate_compares_each_delivery_with_what_it_replaces(env: dict, tmp_path: Path) -> None:
    from quality.gate import QualityGateFailed

    orders = env["landing"] / "orders"
    (orders / "0-backfill.csv").write_text(_dated(_orders(1, 360, 3), "2025-01-01"))
    run(env, "r1", sources=["orders"])
    assert _gate_raw(env, tmp_path).success
    # Next month's file: a twelfth of the backfill, compared pro-rated, passes.
    (orders / "1-month.csv").write_text(_dated(_orders(5000, 30, 3), "2025-12-27"))
    run(env, "r2", sources=["orders"])
    result = _gate_raw(env, tmp_path)
    assert result.success
    # The month after is judged against the previous month: cut to a third, it fails.
    (orders / "2-month.csv").write_text(_dated(_orders(6000, 30, 1), "2026-01-26"))
    run(env, "r3", sources=["orders"])
    with pytest.raises(QualityGateFailed) as caught:
        _gate_raw(env, tmp_path)
    [failure] = caught.value.result.failures
    assert failure.suite == "raw.orders.deliveries"
    assert failure.examples == ("raw.orders@2-month.csv (incremental) vs 1-month.csv",)


def test_undeclared_snapshot_is_inferred_reported_and_checked(env: dict, tmp_path: Path) -> None:
    from quality.gate import QualityGateFailed

    crm = env["landing"] / "crm"
    rows = "".join(f"{i};Name{i};2026-01-01\n" for i in range(100))
    (crm / "full-1.csv").write_text("row_id;nachname;geaendert\n" + rows, encoding="latin-1")
    run(env, "r1", sources=["crm"])
    cut = "".join(f"{i};Name{i};2026-01-01\n" for i in range(30))
    (crm / "full-2.csv").write_text("geaendert;row_id;nachname\n".replace(
        "geaendert;row_id;nachname", "row_id;nachname;geaendert") + cut, encoding="latin-1")
    run(env, "r2", sources=["crm"])
    with pytest.raises(QualityGateFailed) as caught:
        _gate_raw(env, tmp_path)
    [failure] = caught.value.result.failures
    assert failure.examples == ("raw.crm@full-2.csv (snapshot) vs full-1.csv",)
    assert any("full-2.csv taken as snapshot (inferred" in note
               for note in caught.value.result.notes)
