"""Ingestion on real files and a real DuckDB file: exactly once, nothing lost, loud failures."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.errors import IngestError, IngestRunError
from ingest.loader import load_all, load_source
from ingest.registry import RegistryError, load_registry

REPO = Path(__file__).resolve().parent.parent

REGISTRY = """\
sources:
  orders:
    kind: offline
    format: csv
    path: "*.csv"
    record_key: order_id
    timestamp: order_ts
    columns: {order_ts: timestamp, amount: double}
    identity: {email: email, loyalty_card: card}
  crm:
    kind: offline
    format: csv
    csv: {delimiter: ";", encoding: latin-1}
    path: "*.csv"
    record_key: row_id
    timestamp: geaendert
    timestamp_format: "%d.%m.%Y %H:%M"
    birth_date_format: "%d.%m.%Y"
    identity: {email: email, birth_date: geburtsdatum, last_name: nachname}
  events:
    kind: online
    format: jsonl
    path: "*.jsonl"
    record_key: event_id
    timestamp: event_ts
    identity: {anonymous_id: anonymous_id, email: email}
  accounts:
    kind: online
    format: parquet
    path: "*.parquet"
    record_key: account_id
    timestamp: updated_at
    columns: {updated_at: timestamp, visits: bigint}
    identity: {user_id: account_id, email: email}
"""

ORDERS_HEADER = "order_id,email,card,order_ts,amount\n"


@pytest.fixture()
def env(tmp_path: Path) -> dict:
    """A registry file, a landing root and a warehouse path under tmp_path."""
    registry_path = tmp_path / "config" / "sources.yml"
    registry_path.parent.mkdir()
    registry_path.write_text(REGISTRY)
    landing = tmp_path / "landing"
    for name in ("orders", "crm", "events", "accounts"):
        (landing / name).mkdir(parents=True)
    return {
        "registry": load_registry(registry_path),
        "landing": landing,
        "db": tmp_path / "warehouse" / "build.duckdb",
    }


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def scalar(db: Path, sql: str, params: list | None = None):  # type: ignore[no-untyped-def]
    return query(db, sql, params)[0][0]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def orders_csv(n: int, start: int = 1) -> str:
    lines = [ORDERS_HEADER]
    for i in range(start, start + n):
        lines.append(f"{i},user{i}@example.com,L{i},2024-03-{1 + i % 28:02d} 10:00:00,{i}.5\n")
    return "".join(lines)


@pytest.fixture(params=["staged", "streaming"])
def csv_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a CSV test through both fast paths (small files are staged; big ones stream)."""
    if request.param == "streaming":
        monkeypatch.setattr("ingest.readers.csv.PARALLEL_STAGE_MAX_BYTES", 0)
    return str(request.param)


def run(env: dict, run_id: str = "run", sources: list[str] | None = None, **kwargs):  # type: ignore[no-untyped-def]
    return load_all(env["db"], env["registry"], env["landing"], run_id, sources, **kwargs)


# --------------------------------------------------------------------------- exactly once


def test_same_bytes_twice_and_under_another_name_load_once(env: dict) -> None:
    orders = env["landing"] / "orders"
    write(orders / "2024-03-01.csv", orders_csv(5))
    write(orders / "copy-of-2024-03-01.csv", orders_csv(5))  # same bytes, other name

    [report] = run(env, "r1", ["orders"])
    assert report.files_loaded == 1 and report.files_skipped == 1
    assert scalar(env["db"], "SELECT count(*) FROM raw.orders") == 5

    # The same delivery again, and once more under a third name, in later runs.
    [again] = run(env, "r2", ["orders"])
    write(orders / "resent.csv", orders_csv(5))
    [resent] = run(env, "r3", ["orders"])
    assert again.files_loaded == 0 and resent.files_loaded == 0
    assert resent.files_skipped == 3
    assert scalar(env["db"], "SELECT count(*) FROM raw.orders") == 5
    assert scalar(env["db"], "SELECT count(*) FROM raw._load_ledger") == 1


def test_same_name_with_new_content_loads_as_new_version(env: dict) -> None:
    path = env["landing"] / "orders" / "daily.csv"
    write(path, orders_csv(3))
    run(env, "r1", ["orders"])
    text = orders_csv(4).replace("4.5\n", "40.5\n")  # a corrected re-delivery, same name
    write(path, text.replace("2.5\n", "20.5\n"))
    [report] = run(env, "r2", ["orders"])

    # Rows identical to what the first delivery loaded are not loaded again; the changed
    # record 2 and the new record 4 are.
    assert report.files_loaded == 1 and report.rows_loaded == 2
    assert report.files[0].rows_duplicate == 2 and report.files[0].rows_in_file == 4
    ledger = query(
        env["db"],
        "SELECT file_name, rows_in_file, rows_loaded, rows_duplicate, run_id "
        "FROM raw._load_ledger ORDER BY loaded_at",
    )
    assert ledger == [("daily.csv", 3, 3, 0, "r1"), ("daily.csv", 4, 2, 2, "r2")]
    # Raw is append-only: both versions of record 2 are kept, told apart by hash; the helper
    # view keeps the current version per record key.
    assert scalar(env["db"], "SELECT count(DISTINCT _file_sha256) FROM raw.orders") == 2
    assert scalar(env["db"], "SELECT count(*) FROM raw.orders") == 5
    assert query(env["db"], "SELECT order_id, amount FROM raw.orders__latest ORDER BY 1") == [
        ("1", 1.5), ("2", 20.5), ("3", 3.5), ("4", 40.5)]


def test_concurrent_doubled_tasks_create_no_duplicates(env: dict) -> None:
    write(env["landing"] / "orders" / "a.csv", orders_csv(20_000))
    errors: list[BaseException] = []

    def task(run_id: str) -> None:
        try:
            run(env, run_id, ["orders"])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=task, args=(f"r{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert scalar(env["db"], "SELECT count(*) FROM raw.orders") == 20_000
    assert scalar(env["db"], "SELECT count(DISTINCT order_id) FROM raw.orders") == 20_000
    assert scalar(env["db"], "SELECT count(*) FROM raw._load_ledger") == 1


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from ingest.loader import load_all
    from ingest.registry import load_registry
    registry = load_registry(Path({registry!r}))
    print("ready", flush=True)
    load_all(Path({db!r}), registry, Path({landing!r}), "killed", ["orders"])
    print("done", flush=True)
    """
)


@pytest.mark.integration  # kills a loading subprocess, ~6 s
def test_killed_load_then_rerun_leaves_exactly_one_copy(env: dict, tmp_path: Path) -> None:
    rows = 600_000
    write(env["landing"] / "orders" / "big.csv", orders_csv(rows))
    write(env["landing"] / "orders" / "small.csv", orders_csv(10, start=rows + 1))
    script = KILL_SCRIPT.format(
        repo=str(REPO),
        registry=str(env["registry"].path),
        db=str(env["db"]),
        landing=str(env["landing"]),
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    # Wait until rows are being written (DuckDB writes big appends to the file before the
    # commit), then kill the process hard in the middle of the transaction.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if env["db"].exists() and env["db"].stat().st_size > 8_000_000:
            break
        time.sleep(0.005)
    assert child.poll() is None, "the load finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    # Whatever the kill interrupted was rolled back as a whole: raw agrees with the ledger.
    if env["db"].exists():
        loaded_before = scalar(
            env["db"], "SELECT coalesce(sum(rows_loaded), 0) FROM raw._load_ledger"
        )
        assert scalar(env["db"], "SELECT count(*) FROM raw.orders") == loaded_before

    [report] = run(env, "rerun", ["orders"])
    assert report.ok
    total = rows + 10
    assert scalar(env["db"], "SELECT count(*) FROM raw.orders") == total
    assert scalar(env["db"], "SELECT count(DISTINCT order_id) FROM raw.orders") == total
    assert scalar(env["db"], "SELECT count(*) FROM raw._load_ledger") == 2
    assert scalar(env["db"], "SELECT sum(rows_loaded) FROM raw._load_ledger") == total


# --------------------------------------------------------------------------- quarantine


def test_broken_lines_go_to_quarantine_and_every_line_is_accounted_for(
    env: dict, csv_path: str
) -> None:
    content = (
        ORDERS_HEADER.encode()
        + b"1,a@example.com,L1,2024-03-01 10:00:00,1.5\n"  # line 2: good
        + b"2,b@example.com,L2,2024-03-01 10:00:00,2.5,surplus\n"  # line 3: too many fields
        + b"3,c\xff@example.com,L3,2024-03-01 10:00:00,3.5\n"  # line 4: bad UTF-8 byte
        + b"4,d@example.com,L4,31.02.2024 25:00,4.5\n"  # line 5: unparsable timestamp
        + b",e@example.com,L5,2024-03-01 10:00:00,5.5\n"  # line 6: no record key
        + b"6,f@example.com,L6,2024-03-01 10:00:00,six\n"  # line 7: not a number
        + b"7,g@example.com\n"  # line 8: too few fields
        + b"8,h@example.com,L8,,\n"  # line 9: good, empty typed values are NULL
    )
    write(env["landing"] / "orders" / "broken.csv", content)
    [report] = run(env, "r1", ["orders"])

    data_lines = content.count(b"\n") - 1
    assert report.rows_loaded + report.rows_rejected == data_lines == 8
    assert (report.rows_loaded, report.rows_rejected) == (2, 6)
    assert query(env["db"], "SELECT order_id, _row_number FROM raw.orders ORDER BY 2") == [
        ("1", 2),
        ("8", 9),
    ]
    rejected = dict(
        query(env["db"], "SELECT _line_number, _reason FROM raw.orders__rejected")
    )
    assert sorted(rejected) == [3, 4, 5, 6, 7, 8]
    assert "TOO MANY COLUMNS" in rejected[3]
    assert "INVALID ENCODING" in rejected[4]
    assert "'order_ts' is not a valid timestamp" in rejected[5]
    assert "missing record key 'order_id'" in rejected[6]
    assert "'amount' is not a valid double" in rejected[7]
    assert "MISSING COLUMNS" in rejected[8]
    raw_lines = dict(
        query(env["db"], "SELECT _line_number, _raw_line FROM raw.orders__rejected")
    )
    assert raw_lines[3] == "2,b@example.com,L2,2024-03-01 10:00:00,2.5,surplus"
    assert raw_lines[5] == "4,d@example.com,L4,31.02.2024 25:00,4.5"
    ledger = query(
        env["db"], "SELECT rows_in_file, rows_loaded, rows_rejected FROM raw._load_ledger"
    )
    assert ledger == [(8, 2, 6)]


def test_stray_quote_cannot_swallow_lines(env: dict, csv_path: str) -> None:
    """An unterminated quote makes DuckDB's reader merge or drop the following lines; the
    line-mode re-read must still account for every physical line."""
    lines = [ORDERS_HEADER]
    for i in range(1, 3001):
        if i == 10:
            lines.append(f'{i},"broken@example.com,L{i},2024-03-01 10:00:00,1.0\n')
        else:
            lines.append(f"{i},u{i}@example.com,L{i},2024-03-01 10:00:00,1.0\n")
    write(env["landing"] / "orders" / "quote.csv", "".join(lines))
    [report] = run(env, "r1", ["orders"])

    assert (report.rows_loaded, report.rows_rejected) == (2999, 1)
    assert report.files[0].mode == "csv_lines"
    assert query(env["db"], "SELECT _line_number FROM raw.orders__rejected") == [(11,)]
    assert scalar(
        env["db"], "SELECT count(*) FROM raw.orders WHERE _row_number = order_id::INT + 1"
    ) == 2999


def test_quoted_values_with_newlines_crlf_and_renumbering_after_rejects(
    env: dict, csv_path: str
) -> None:
    content = (
        "order_id,email,card,order_ts,amount\r\n"
        '1,"a@example.com","L 1, with comma",2024-03-01T10:00:00+02:00,1\r\n'
        "2,b@example.com,L2\r\n"  # rejected: too few fields
        '3,c@example.com,"two\r\nlines",2024-03-01 10:00:00,3\r\n'
        "4,d@example.com,L4,2024-03-01 10:00:00,4\r\n"
    )
    write(env["landing"] / "orders" / "crlf.csv", content)
    [report] = run(env, "r1", ["orders"])

    assert (report.rows_loaded, report.rows_rejected) == (3, 1)
    got = query(env["db"], "SELECT order_id, card, order_ts FROM raw.orders ORDER BY order_id")
    assert got[0][1] == "L 1, with comma"
    assert str(got[0][2]) == "2024-03-01 08:00:00"  # offset honoured, stored as UTC
    assert got[1][1] == "two\r\nlines"
    assert query(env["db"], "SELECT _line_number FROM raw.orders__rejected") == [(3,)]


@pytest.mark.parametrize("streaming", [False, True], ids=["staged", "streaming"])
def test_big_file_with_a_few_bad_lines_keeps_physical_line_numbers(
    env: dict, streaming: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if streaming:  # pretend the file is too big to stage: read_csv WITH ORDINALITY path
        monkeypatch.setattr("ingest.readers.csv.PARALLEL_STAGE_MAX_BYTES", 0)
    text = orders_csv(50_000)
    lines = text.splitlines(keepends=True)
    lines.insert(1001, "x,broken\n")  # file line 1002
    lines.insert(30001, "30000x,z@example.com,L,2024-03-01 10:00:00,nan-ish\n")
    write(env["landing"] / "orders" / "big.csv", "".join(lines))
    [report] = run(env, "r1", ["orders"])

    assert report.files[0].mode == ("csv_stream" if streaming else "csv")
    assert (report.rows_loaded, report.rows_rejected) == (50_000, 2)
    assert sorted(query(env["db"], "SELECT _line_number FROM raw.orders__rejected")) == [
        (1002,),
        (30002,),
    ]
    # Every loaded row carries its physical line number despite the rejected lines before it.
    offsets = query(
        env["db"],
        "SELECT _row_number - order_id::INT AS shift, count(*) FROM raw.orders "
        "GROUP BY ALL ORDER BY 1",
    )
    assert offsets == [(1, 1000), (2, 28999), (3, 20001)]


def test_empty_lines_inside_a_csv_are_skipped_and_numbering_stays_physical(
    env: dict, csv_path: str
) -> None:
    content = ORDERS_HEADER + (
        "1,a@example.com,L1,2024-03-01 10:00:00,1\n"
        "\n"
        "\n"
        "2,b@example.com\n"
        "3,c@example.com,L3,2024-03-01 10:00:00,3\n"
        "\n"
    )
    write(env["landing"] / "orders" / "gaps.csv", content)
    [report] = run(env, "r1", ["orders"])
    assert (report.rows_loaded, report.rows_rejected) == (2, 1)
    assert query(env["db"], "SELECT order_id, _row_number FROM raw.orders ORDER BY 2") == [
        ("1", 2),
        ("3", 6),
    ]
    assert query(env["db"], "SELECT _line_number FROM raw.orders__rejected") == [(5,)]


def test_gzipped_csv_loads(env: dict, csv_path: str) -> None:
    import gzip

    path = env["landing"] / "orders" / "day.csv.gz"
    path.write_bytes(gzip.compress((orders_csv(1000) + "oops\n").encode()))
    spec = env["registry"]["orders"].model_copy(update={"path": "*.csv.gz"})
    reports = load_all(env["db"], [spec], env["landing"], "r1")
    assert (reports[0].rows_loaded, reports[0].rows_rejected) == (1000, 1)
    assert query(env["db"], "SELECT _line_number FROM raw.orders__rejected") == [(1002,)]


def test_latin1_semicolon_source_with_formats(env: dict, csv_path: str) -> None:
    content = (
        "row_id;nachname;email;geburtsdatum;geaendert\n"
        "r1;Müller;m@example.com;24.12.1980;01.03.2024 10:15\n"
        "r2;Weiß;w@example.com;01.01.1990;kein datum\n"
    ).encode("latin-1")
    write(env["landing"] / "crm" / "export.csv", content)
    [report] = run(env, "r1", ["crm"])

    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert query(env["db"], "SELECT nachname, geaendert, geburtsdatum FROM raw.crm") == [
        ("Müller", __import__("datetime").datetime(2024, 3, 1, 10, 15), "24.12.1980")
    ]
    reason = scalar(env["db"], "SELECT _reason FROM raw.crm__rejected")
    assert "'geaendert' is not a valid timestamp (format '%d.%m.%Y %H:%M')" in reason


# --------------------------------------------------------------------------- schema drift


def test_file_missing_a_mapped_column_is_set_aside_and_later_files_load(env: dict) -> None:
    write(env["landing"] / "orders" / "a-good.csv", orders_csv(3))
    write(  # the loyalty card column ("card", mapped to loyalty_card) is gone
        env["landing"] / "orders" / "b-bad.csv",
        "order_id,email,order_ts,amount\n9,x@example.com,2024-03-01 10:00:00,1\n",
    )
    write(env["landing"] / "orders" / "c-later.csv", orders_csv(2, start=20))
    write(
        env["landing"] / "events" / "e.jsonl",
        '{"event_id": "e1", "event_ts": "2024-03-01T10:00:00Z", "anonymous_id": "a1"}\n',
    )
    with pytest.raises(IngestRunError) as caught:
        run(env, "r1", ["orders", "events"])

    message = str(caught.value)
    assert "orders" in message and "'card'" in message and "b-bad.csv" in message
    assert [r.source for r in caught.value.failed] == ["orders"]
    [orders] = caught.value.failed
    assert orders.files_loaded == 2 and orders.files_failed == 1
    assert scalar(env["db"], "SELECT count(*) FROM raw.orders") == 5  # a-good + c-later
    assert scalar(env["db"], "SELECT count(*) FROM raw.events") == 1
    assert query(env["db"], "SELECT source, file_name FROM raw._load_ledger ORDER BY 2") == [
        ("orders", "a-good.csv"), ("orders", "c-later.csv"), ("events", "e.jsonl")]
    assert query(env["db"], "SELECT source, file_name FROM raw._file_quarantine") == [
        ("orders", "b-bad.csv")]
    # The bad file is tried again (and fails again) until it is fixed or withdrawn.
    with pytest.raises(IngestRunError, match="b-bad.csv"):
        run(env, "r2", ["orders"])
    assert scalar(env["db"], "SELECT count(*) FROM raw.orders") == 5


def test_new_unmapped_column_is_kept_and_reported(env: dict) -> None:
    write(env["landing"] / "orders" / "1.csv", orders_csv(2))
    [first] = run(env, "r1", ["orders"])
    assert first.new_columns == []
    write(
        env["landing"] / "orders" / "2.csv",
        "order_id,email,card,order_ts,amount,channel\n"
        "10,x@example.com,L10,2024-03-02 10:00:00,1,web\n",
    )
    [second] = run(env, "r2", ["orders"])

    assert second.new_columns == ["channel"]
    [loaded] = [f for f in second.files if f.status == "loaded"]
    assert loaded.file_name == "2.csv" and loaded.new_columns == ["channel"]
    assert query(env["db"], "SELECT order_id, channel FROM raw.orders ORDER BY 1") == [
        ("1", None),
        ("10", "web"),
        ("2", None),
    ]
    assert scalar(
        env["db"], "SELECT new_columns FROM raw._load_ledger WHERE run_id = 'r2'"
    ) == ["channel"]


def test_unreadable_file_fails_source_with_clear_error(env: dict) -> None:
    write(env["landing"] / "accounts" / "broken.parquet", b"PAR1 this is not parquet")
    write(env["landing"] / "orders" / "ok.csv", orders_csv(2))
    reports = run(env, "r1", raise_on_error=False)
    by_source = {r.source: r for r in reports}
    error = by_source["accounts"].error or ""
    assert "accounts" in error and "broken.parquet" in error and "Parquet" in error
    assert by_source["orders"].ok and by_source["orders"].rows_loaded == 2


def test_empty_and_header_only_files_are_valid_deliveries(env: dict) -> None:
    write(env["landing"] / "orders" / "empty.csv", b"")
    write(env["landing"] / "orders" / "header.csv", ORDERS_HEADER)
    [report] = run(env, "r1", ["orders"])
    assert report.ok and report.files_loaded == 2 and report.rows_loaded == 0


# --------------------------------------------------------------------------- formats


def test_jsonl_source_loads_with_quarantine(env: dict) -> None:
    write(
        env["landing"] / "events" / "day.jsonl",
        '{"event_id": "e1", "event_ts": "2024-03-01T10:00:00Z", "anonymous_id": "a1",'
        ' "props": {"page": "/"}}\n'
        "\n"
        '{"event_id": "e2", "event_ts": "2024-03-01T10:01:00Z", "email": "x@example.com"}\n'
        '{"event_id": "e2", "event_ts": "2024-03-01T10:01:00Z", "email": "x@example.com"}\n'
        "{not json\n"
        '["an", "array"]\n'
        '{"event_ts": "2024-03-01T10:02:00Z"}\n'
        '{"event_id": "e3", "event_ts": "yesterday"}\n',
    )
    [report] = run(env, "r1", ["events"])

    assert (report.rows_loaded, report.rows_rejected) == (3, 4)
    assert query(
        env["db"], "SELECT event_id, _row_number, props FROM raw.events ORDER BY 2"
    ) == [("e1", 1, '{"page":"/"}'), ("e2", 3, None), ("e2", 4, None)]
    # Duplicate events stay in raw (append-only); the helper view keeps one per event id.
    assert scalar(env["db"], "SELECT count(*) FROM raw.events__latest") == 2
    rejected = dict(query(env["db"], "SELECT _line_number, _reason FROM raw.events__rejected"))
    assert rejected[5] == "invalid JSON line"
    assert rejected[6].startswith("JSON line is not an object")
    assert rejected[7] == "missing record key 'event_id'"
    assert "'event_ts' is not a valid timestamp" in rejected[8]


def test_parquet_source_loads_typed_and_stringifies_the_rest(env: dict) -> None:
    import datetime as dt

    table = pa.table(
        {
            "account_id": [101, 102, 103],
            "email": ["a@example.com", None, "c@example.com"],
            "updated_at": [dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2), None],
            "visits": ["3", "many", None],
            "tags": [["x"], [], None],
        }
    )
    pq.write_table(table, env["landing"] / "accounts" / "accounts.parquet")
    [report] = run(env, "r1", ["accounts"])

    assert (report.rows_loaded, report.rows_rejected) == (2, 1)
    assert query(
        env["db"], "SELECT account_id, visits, tags, _row_number FROM raw.accounts ORDER BY 1"
    ) == [("101", 3, '["x"]', 1), ("103", None, None, 3)]
    assert scalar(env["db"], "SELECT _line_number FROM raw.accounts__rejected") == 2
    types = dict(
        query(
            env["db"],
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'accounts'",
        )
    )
    assert types["updated_at"] == "TIMESTAMP" and types["visits"] == "BIGINT"
    assert types["account_id"] == "VARCHAR" and types["tags"] == "VARCHAR"


# --------------------------------------------------------------------------- future-dated

NOT_AFTER = __import__("datetime").datetime(2024, 3, 2, 0, 0)  # the run's as-of + tolerance


def test_rows_dated_after_the_run_are_quarantined_as_future_dated(
    env: dict, csv_path: str
) -> None:
    content = (
        ORDERS_HEADER
        + "1,a@example.com,L1,2024-03-01 10:00:00,1.5\n"  # line 2: before the limit
        + "2,b@example.com,L2,2024-03-02 00:00:00,2.5\n"  # line 3: exactly at it: loads
        + "3,c@example.com,L3,2024-03-23 10:00:00,3.5\n"  # line 4: three weeks ahead
        + "4,d@example.com,L4,,4.5\n"  # line 5: no timestamp: not future-dated
        + "5,e@example.com,L5,2024-03-02 00:00:01,six\n"  # line 6: future and not a number
    )
    write(env["landing"] / "orders" / "orders.csv", content)
    [report] = run(env, "r1", ["orders"], not_after=NOT_AFTER)

    assert (report.rows_loaded, report.rows_rejected, report.rows_future_dated) == (3, 2, 2)
    assert report.files[0].rows_future_dated == 2
    assert query(env["db"], "SELECT order_id FROM raw.orders ORDER BY 1") == [
        ("1",), ("2",), ("4",)]
    rejected = dict(query(env["db"], "SELECT _line_number, _reason FROM raw.orders__rejected"))
    assert rejected[4] == ("future_dated: column 'order_ts' is after 2024-03-02 00:00:00 "
                           "(the run's as-of time plus tolerance)")
    assert "'amount' is not a valid double" in rejected[6] and "future_dated" in rejected[6]
    assert scalar(env["db"], "SELECT _raw_line FROM raw.orders__rejected "
                  "WHERE _line_number = 4") == "3,c@example.com,L3,2024-03-23 10:00:00,3.5"
    # The ledger's record span is that of the loaded rows only.
    assert scalar(env["db"], "SELECT last_record_at FROM raw._load_ledger") == NOT_AFTER


def test_without_a_limit_every_date_loads(env: dict) -> None:
    write(env["landing"] / "orders" / "orders.csv",
          ORDERS_HEADER + "1,a@example.com,L1,2099-01-01 00:00:00,1.5\n")
    [report] = run(env, "r1", ["orders"])
    assert (report.rows_loaded, report.rows_future_dated) == (1, 0)


def test_future_dated_check_honours_formats_offsets_and_parquet_types(env: dict) -> None:
    import datetime as dt

    write(env["landing"] / "crm" / "export.csv", (
        "row_id;nachname;email;geburtsdatum;geaendert\n"
        "r1;Alt;a@example.com;24.12.1980;01.03.2024 10:15\n"
        "r2;Neu;n@example.com;24.12.1980;01.04.2024 10:15\n"  # strptime format, a month ahead
    ).encode("latin-1"))
    write(env["landing"] / "events" / "day.jsonl",
          # 01:30 at +02:00 is 23:30 UTC the day before the limit: loads
          '{"event_id": "e1", "event_ts": "2024-03-02T01:30:00+02:00"}\n'
          '{"event_id": "e2", "event_ts": "2024-03-02T00:30:00Z"}\n')
    pq.write_table(pa.table({
        "account_id": [1, 2], "email": ["a@example.com", "b@example.com"],
        "updated_at": [dt.datetime(2024, 3, 1), dt.datetime(2024, 6, 1)], "visits": [1, 2],
    }), env["landing"] / "accounts" / "accounts.parquet")
    # An aware limit is compared in UTC, as raw timestamps are.
    aware = NOT_AFTER.replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    reports = {r.source: r for r in run(env, "r1", ["crm", "events", "accounts"],
                                         not_after=aware)}

    assert {name: (r.rows_loaded, r.rows_future_dated) for name, r in reports.items()} == {
        "crm": (1, 1), "events": (1, 1), "accounts": (1, 1)}
    assert scalar(env["db"], "SELECT row_id FROM raw.crm") == "r1"
    assert scalar(env["db"], "SELECT event_id FROM raw.events") == "e1"
    for table in ("crm", "events", "accounts"):
        assert scalar(env["db"], f"SELECT _reason FROM raw.{table}__rejected").startswith(
            "future_dated: ")


# --------------------------------------------------------------------------- registry


def test_source_registry_table_lists_every_identity_mapping(env: dict) -> None:
    run(env, "r1", ["orders"])
    rows = query(
        env["db"],
        "SELECT source, kind, record_key, timestamp_column, birth_date_format, field, "
        "column_name FROM raw._source_registry ORDER BY source, field",
    )
    assert ("crm", "offline", "row_id", "geaendert", "%d.%m.%Y", "birth_date",
            "geburtsdatum") in rows
    assert ("orders", "offline", "order_id", "order_ts", None, "loyalty_card", "card") in rows
    assert len(rows) == 2 + 3 + 2 + 2
    # Every registered source has its raw and quarantine tables, even before data arrives.
    tables = {
        name
        for (name,) in query(
            env["db"],
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'",
        )
    }
    assert {"orders", "crm__rejected", "events", "accounts__rejected", "_load_ledger"} <= tables


def test_project_registry_is_valid() -> None:
    registry = load_registry(REPO / "config" / "sources.yml")
    assert "crm_customers" in registry.sources
    assert registry["crm_customers"].csv.delimiter == ";"


#: Each bad registry and the problem lines it must produce (file, dotted key, problem).
BAD_REGISTRIES = {
    "unknown_key": (
        "sources:\n  shop:\n    kind: online\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n    colums: {ts: timestamp}\n",
        ["sources.shop.colums: Extra inputs are not permitted"],
    ),
    "unknown_format": (
        "sources:\n  shop:\n    kind: online\n    format: xlsx\n    record_key: id\n"
        "    timestamp: ts\n",
        ["sources.shop.format: Input should be 'csv', 'jsonl' or 'parquet'"],
    ),
    "unknown_canonical_field": (
        "sources:\n  shop:\n    kind: online\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n    identity: {e_mail: mail}\n",
        ["sources.shop.identity.e_mail.[key]: unknown canonical field; one of ['email', "],
    ),
    "reserved_identity_column": (
        "sources:\n  shop:\n    kind: online\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n    identity: {email: _reason}\n",
        ["sources.shop.identity.email: column name is reserved for load metadata"],
    ),
    "missing_record_key": (
        "sources:\n  shop:\n    kind: online\n    format: csv\n    timestamp: ts\n",
        ["sources.shop.record_key: Field required"],
    ),
    "bad_source_name": (
        "sources:\n  Shop-Orders:\n    kind: online\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n",
        ["sources.Shop-Orders.[key]: bad source name: must match [a-z][a-z0-9_]*"],
    ),
    "sql_injection_name": (
        'sources:\n  "x; drop table raw.orders":\n    kind: online\n    format: csv\n'
        "    record_key: id\n    timestamp: ts\n",
        ["sources.x; drop table raw.orders.[key]: bad source name"],
    ),
    "unknown_column_type": (
        "sources:\n  shop:\n    kind: online\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n    columns: {ts: datetime}\n",
        ["sources.shop.columns.ts: Input should be 'varchar', 'date', 'timestamp', 'double', "
         "'bigint' or 'boolean'"],
    ),
    "unknown_kind": (
        "sources:\n  shop:\n    kind: realtime\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n",
        ["sources.shop.kind: Input should be 'online' or 'offline'"],
    ),
    "csv_options_on_jsonl": (
        "sources:\n  shop:\n    kind: online\n    format: jsonl\n    csv: {delimiter: ';'}\n"
        "    record_key: id\n    timestamp: ts\n",
        ["sources.shop.csv: csv options are only allowed for format csv"],
    ),
    "bad_delimiter": (
        "sources:\n  shop:\n    kind: online\n    format: csv\n    csv: {delimiter: ';;'}\n"
        "    record_key: id\n    timestamp: ts\n",
        ["sources.shop.csv.delimiter: delimiter must be one character other than quote or "
         "newline"],
    ),
    "two_problems": (
        "sources:\n  shop:\n    kind: realtime\n    format: csv\n    record_key: id\n"
        "    csv: {header: 'yes'}\n",
        ["sources.shop.kind: Input should be 'online' or 'offline'",
         "sources.shop.csv.header: Input should be a valid boolean"],
    ),
    "duplicate_source": (
        "sources:\n  shop:\n    kind: online\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n  shop:\n    kind: online\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n",
        ["line 7, column 3: duplicate key 'shop'"],
    ),
    "path_escapes_landing": (
        "sources:\n  shop:\n    kind: online\n    format: csv\n    record_key: id\n"
        "    timestamp: ts\n    path: ../../etc/*\n",
        ["sources.shop.path: glob must stay inside landing/<source>/"],
    ),
    "not_yaml": ("sources: [unclosed\n", ["line 2, column 1: not valid YAML"]),
    "no_sources": ("other: 1\n", ["sources: Field required",
                                   "other: Extra inputs are not permitted"]),
    "empty_sources": ("sources: {}\n", ["sources: Dictionary should have at least 1 item"]),
}


@pytest.mark.parametrize("case", sorted(BAD_REGISTRIES))
def test_registry_errors_name_file_key_and_problem(tmp_path: Path, case: str) -> None:
    text, fragments = BAD_REGISTRIES[case]
    path = write(tmp_path / f"{case}.yml", text)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    lines = caught.value.lines()
    assert len(lines) == len(fragments), lines
    for fragment in fragments:
        assert any(line.startswith(f"{path}: {fragment}") for line in lines), (fragment, lines)


def test_unknown_source_requested(env: dict) -> None:
    with pytest.raises(IngestError, match="unknown source"):
        run(env, "r1", ["nope"])


# --------------------------------------------------------------------------- logging


def test_logs_carry_counts_and_names_but_no_row_contents(
    env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        env["landing"] / "orders" / "pii.csv",
        ORDERS_HEADER
        + "1,secret.person@example.com,LOYAL-4711,2024-03-01 10:00:00,1\n"
        + "2,hidden.person@example.com,LOYAL-4712,not a date,1\n"
        + "3,third.person@example.com\n",
    )
    with caplog.at_level(logging.DEBUG, logger="ingest"):
        run(env, "r1", ["orders"])
    text = caplog.text
    assert "pii.csv" in text and "rejected=2" in text
    for secret in ("secret.person", "hidden.person", "third.person", "LOYAL-47"):
        assert secret not in text


def test_load_source_on_an_open_connection(env: dict, tmp_path: Path) -> None:
    write(env["landing"] / "orders" / "a.csv", orders_csv(3))
    con = duckdb.connect(str(tmp_path / "direct.duckdb"))
    try:
        report = load_source(
            con, env["registry"]["orders"], env["landing"] / "orders", "direct"
        )
        again = load_source(
            con, env["registry"]["orders"], env["landing"] / "orders", "direct-2"
        )
        count = con.execute("SELECT count(*) FROM raw.orders").fetchone()
    finally:
        con.close()
    assert report.rows_loaded == 3 and again.files_skipped == 1
    assert count == (3,)
