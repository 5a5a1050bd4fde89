"""A record key made of two columns (issue 16): ``record_key: [store_id, receipt_no]``.

Real ingest into a real DuckDB file: the key is composed once, at ingest, into
``raw.<source>._record_key`` (parts trimmed, ``|`` and ``\\`` escaped, joined by ``|``), and
everything keyed by the record key (versions, the latest view, quarantine, the identity graph)
reads that one column. The last test carries a record through a small dbt build into
``fct_identity_graph``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from small_builds import configuration_with_only, ingest_and_build, write_landing_csv

from cdp.dbt_sources import source_tables
from cdp.settings import data_paths
from ingest.errors import IngestRunError
from ingest.loader import connect, load_all
from ingest.registry import RegistryError, compose_key, composed_key_sql, parse_registry
from ingest.withdraw import withdraw
from privacy.landing import rewrite_landing

HEADER = ("store_id", "receipt_no", "email", "amount")
SOURCES = {
    "receipts": {
        "kind": "offline", "format": "csv", "delivery": "snapshot",
        "record_key": ["store_id", "receipt_no"],
        "columns": {"amount": "double"}, "identity": {"email": "email"},
    },
    "tills": {
        "kind": "offline", "format": "parquet",
        "record_key": ["system", "id"], "columns": {"id": "bigint"},
    },
}


@pytest.fixture()
def env(tmp_path: Path) -> dict:
    landing = tmp_path / "landing"
    for name in SOURCES:
        (landing / name).mkdir(parents=True)
    return {"registry": parse_registry({"sources": SOURCES}), "landing": landing,
            "db": tmp_path / "build.duckdb"}


def run(env: dict, run_id: str, **kwargs):  # type: ignore[no-untyped-def]
    return load_all(env["db"], env["registry"], env["landing"], run_id, **kwargs)


def query(env: dict, sql: str) -> list[tuple]:
    with duckdb.connect(str(env["db"]), read_only=True) as con:
        return con.execute(sql).fetchall()


def receipts(env: dict, name: str, rows: list[tuple[str, ...]]) -> None:
    write_landing_csv(env["landing"] / "receipts" / name, HEADER, rows)


def test_two_column_key_is_composed_once_into_the_raw_table(env: dict) -> None:
    receipts(env, "a.csv", [("S1", "R1", "a@example.org", "1.5"),
                            (" S1 ", "R2", "b@example.org", "2")])
    run(env, "r1")
    assert query(env, "SELECT store_id, receipt_no, _record_key, amount FROM raw.receipts "
                      "ORDER BY _row_number") == [
        ("S1", "R1", "S1|R1", 1.5), (" S1 ", "R2", "S1|R2", 2.0)]
    # the registry table and the dbt source name the one key column downstream reads
    assert query(env, "SELECT DISTINCT record_key FROM raw._source_registry "
                      "WHERE source = 'receipts'") == [("_record_key",)]
    [table] = [t for t in source_tables(env["registry"]) if t["name"] == "receipts"]
    assert table["config"]["meta"]["record_key"] == "_record_key"
    assert [c["name"] for c in table["columns"]][:5] == [
        "store_id", "receipt_no", "email", "amount", "_record_key"]


def test_redelivered_snapshot_replaces_by_the_composite_key(env: dict) -> None:
    receipts(env, "1.csv", [("S1", "R1", "a@example.org", "1"),
                            ("S1", "R2", "b@example.org", "2"),
                            ("S2", "R1", "c@example.org", "3")])
    run(env, "r1")
    # the full set again, one row changed: only that row is a new version
    receipts(env, "2.csv", [("S1", "R1", "a@example.org", "1"),
                            ("S1", "R2", "b@example.org", "20"),
                            ("S2", "R1", "c@example.org", "3")])
    [report, _] = run(env, "r2")
    [item] = [f for f in report.files if f.file_name == "2.csv"]
    assert (item.rows_in_file, item.rows_loaded, item.rows_duplicate) == (3, 1, 2)
    assert query(env, "SELECT rows_known_key FROM raw._load_ledger "
                      "WHERE file_name = '2.csv'") == [(3,)]
    assert query(env, "SELECT _record_key, amount FROM raw.receipts__latest ORDER BY 1") == [
        ("S1|R1", 1.0), ("S1|R2", 20.0), ("S2|R1", 3.0)]


def test_rows_differing_in_one_part_or_in_where_a_bar_falls_stay_apart(env: dict) -> None:
    receipts(env, "a.csv", [("S1", "R1", "", "1"), ("S1", "R1 ", "", "1"),  # same after trim
                            ("S1", "R2", "", "2"),
                            ("S|1", "R", "", "3"), ("S", "1|R", "", "4")])
    [report, _] = run(env, "r1")
    assert report.rows_loaded == 5
    assert query(env, "SELECT _record_key FROM raw.receipts__latest ORDER BY 1") == [
        ("S1|R1",), ("S1|R2",), ("S\\|1|R",), ("S|1\\|R",)]


def test_a_row_missing_a_key_part_is_quarantined_naming_the_column(env: dict) -> None:
    receipts(env, "a.csv", [("S1", "R1", "a@example.org", "1"),
                            ("S1", " ", "secret@example.org", "2"),
                            ("", "R3", "other@example.org", "3")])
    [report, _] = run(env, "r1")
    assert (report.rows_loaded, report.rows_rejected) == (1, 2)
    assert query(env, "SELECT _line_number, _reason, _record_key FROM raw.receipts__rejected "
                      "ORDER BY 1") == [
        (3, "missing record key 'receipt_no'", None), (4, "missing record key 'store_id'", None)]


def test_a_file_without_a_key_column_is_set_aside_naming_source_file_and_column(
    env: dict,
) -> None:
    write_landing_csv(env["landing"] / "receipts" / "a.csv", ("store_id", "email", "amount"),
                      [("S1", "a@example.org", "1")])
    with pytest.raises(IngestRunError) as caught:
        run(env, "r1")
    [report] = [r for r in caught.value.reports if r.source == "receipts"]
    assert report.error is not None
    assert "source receipts: file a.csv: missing mapped column(s) 'receipt_no'" in report.error
    assert "a@example.org" not in report.error


def test_withdrawal_hands_a_resent_record_over_by_the_composite_key(env: dict) -> None:
    receipts(env, "a.csv", [("S1", "R1", "", "1"), ("S1", "R2", "", "2")])
    receipts(env, "b.csv", [("S1", "R2", "", "2"), ("S2", "R1", "", "3")])
    run(env, "r1")
    con = connect(env["db"])
    try:
        report = withdraw(con, env["registry"]["receipts"], env["landing"] / "receipts",
                          "a.csv", "w1")
    finally:
        con.close()
    assert (report.rows_removed, report.rows_handed_over) == (1, 1)
    assert query(env, "SELECT _record_key, _source_file FROM raw.receipts ORDER BY 1") == [
        ("S1|R2", "b.csv"), ("S2|R1", "b.csv")]


def test_erasure_rewrites_landing_files_by_the_composed_key(env: dict) -> None:
    receipts(env, "a.csv", [("S1", "R1", "", "1"), ("S1", "R2", "", "2"), ("S2", "R1", "", "3")])
    pq.write_table(pa.table({"system": ["pos", "pos"], "id": pa.array([7, 8], pa.int64())}),
                   env["landing"] / "tills" / "a.parquet")
    run(env, "r1")
    con = connect(env["db"])
    try:
        files = rewrite_landing(con, env["registry"], env["landing"],
                                {"receipts": {"S1|R2"}, "tills": {"pos|8"}}, set())
    finally:
        con.close()
    assert sorted((f.source, f.rows_removed) for f in files) == [("receipts", 1), ("tills", 1)]
    lines = (env["landing"] / "receipts" / "a.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in lines[1:]] == [["S1", "R1"], ["S2", "R1"]]
    assert pq.read_table(env["landing"] / "tills" / "a.parquet")["id"].to_pylist() == [7]


def test_typed_parquet_parts_compose_from_their_text(env: dict) -> None:
    table = pa.table({"system": ["pos", "pos", "web"], "id": pa.array([7, 8, 7], pa.int64())})
    pq.write_table(table, env["landing"] / "tills" / "a.parquet")
    run(env, "r1")
    assert query(env, "SELECT _record_key, id FROM raw.tills ORDER BY 1") == [
        ("pos|7", 7), ("pos|8", 8), ("web|7", 7)]


@pytest.mark.parametrize("parts", [["S1", "R1"], [" S|1 ", "R\\2"], ["a\\|", "b"], ["x", ""],
                                   ["x", None], [" ", "y"]])
def test_python_composition_matches_the_sql_of_ingest(parts: list[str | None]) -> None:
    """identity.landing and erasure's landing rewrite compose in Python: same key as SQL."""
    texts = ["NULL" if p is None else "'" + p.replace("'", "''") + "'" for p in parts]
    [(sql,)] = duckdb.sql(f"SELECT {composed_key_sql(texts)}").fetchall()
    assert compose_key(parts) == sql


@pytest.mark.parametrize(("record_key", "problem"), [
    (["store_id", "Store_ID"], "record_key lists a column twice"),
    ([], "record_key must name at least one column"),
    (["store_id", "_reason"], "column name is reserved for load metadata"),
    (["store_id", "_record_key"], "column name is reserved for load metadata"),
    ({"a": "b"}, "record_key must be a column name or a list of column names"),
])
def test_registry_refuses_a_bad_key_list(record_key: object, problem: str) -> None:
    source = {"kind": "offline", "format": "csv", "record_key": record_key}
    with pytest.raises(RegistryError) as caught:
        parse_registry({"sources": {"receipts": source}}, "sources.yml")
    assert any(line.startswith("sources.yml: sources.receipts.record_key")
               and problem in line for line in caught.value.lines()), caught.value.lines()


def test_a_one_column_list_is_a_plain_key() -> None:
    spec = parse_registry({"sources": {"s": {"kind": "offline", "format": "csv",
                                             "record_key": ["id"]}}})["s"]
    assert (spec.record_key, spec.composite_key, spec.raw_columns) == ("id", False, ["id"])


@pytest.mark.integration  # an ingest and a dbt build (Splink inside)
def test_the_composed_key_is_the_record_id_in_the_identity_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configuration_with_only(
        tmp_path / "config",
        "sources:\n  receipts:\n    kind: offline\n    format: csv\n"
        "    delivery: snapshot\n    record_key: [store_id, receipt_no]\n"
        "    identity: {email: email, first_name: given, last_name: family}\n")
    monkeypatch.setenv("CDP_CONFIG", str(config))
    paths = data_paths(tmp_path / "home").ensure()
    rows = [(f"S{i % 3}", f"R{i // 3}", f"p{i}@example.org", f"Given{i}", f"Family{i}")
            for i in range(30)]
    rows.append(("S0", "R0x", "p0@example.org", "Given0", "Family0"))  # same person as S0|R0
    write_landing_csv(paths.landing / "receipts" / "a.csv",
                      ("store_id", "receipt_no", "email", "given", "family"), rows)

    ingest_and_build(paths, "composite-keys", datetime(2026, 11, 1))

    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        graph = dict(con.execute(
            "SELECT record_id, profile_id FROM main.fct_identity_graph "
            "WHERE source = 'receipts'").fetchall())
    assert len(graph) == 31
    assert {"S0|R0", "S1|R0", "S2|R0", "S0|R9"} <= set(graph)
    assert graph["S0|R0"] == graph["S0|R0x"] != graph["S1|R0"]
