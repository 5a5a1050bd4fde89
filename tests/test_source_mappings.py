"""A user's source mapped without preprocessing (issue 16): a birth date split over three
columns, impossible dates that still state a year, records with no identifying field.

One real pipeline run (``run_pipeline``, what ``cdp run`` calls) on a configuration holding
only that source; the checks read the real build and publication.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest
from small_builds import configuration_with_only

from cdp.run import run_pipeline
from cdp.settings import data_paths

pytestmark = pytest.mark.integration

SOURCE = "register"
REGISTER = f"""sources:
  {SOURCE}:
    kind: offline
    format: csv
    delivery: snapshot
    path: "*.csv"
    record_key: entry
    identity:
      first_name: given
      last_name: family
      birth_year: born_y
      birth_month: born_m
      birth_day: born_d
      city: town
      email: mail
"""
PEOPLE = 60


def _rows() -> list[dict[str, str]]:
    rows = []
    for person in range(PEOPLE):
        row = {"entry": f"E{person}", "given": f"Given{person % 17}",
               "family": f"Family{person}", "born_y": str(1950 + person % 40),
               "born_m": str(1 + person % 12), "born_d": str(1 + person % 28),
               "town": "Hamburg", "mail": f"p{person}@example.org", "note": "kept"}
        rows.append(row)
        if person % 3 == 0:  # a second entry: same person, month impossible (13)
            rows.append({**row, "entry": f"E{person}x", "born_m": "13", "mail": ""})
    # three entries that carry no identifying field at all
    blank = {"given": "", "family": "", "born_y": "", "born_m": "", "born_d": "", "town": "",
             "mail": "", "note": "no identity"}
    rows += [{"entry": f"B{i}", **blank} for i in range(3)]
    return rows


def test_split_birth_date_partial_dates_and_records_without_identifiers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configuration_with_only(tmp_path / "config", REGISTER)
    paths = data_paths(tmp_path / "home").ensure()
    rows = _rows()
    (paths.landing / SOURCE).mkdir(parents=True)
    with open(paths.landing / SOURCE / "register.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.setenv("CDP_CONFIG", str(config))

    summary = run_pipeline(paths)

    assert summary.succeeded, (summary.failed_tasks, summary.errors)
    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        dates = dict(con.execute(
            "SELECT record_id, birth_date FROM intermediate.int_identity__records "
            "WHERE record_id IN ('E5', 'E3x')").fetchall())
        parts = con.execute(
            "SELECT birth_year, birth_month, birth_day FROM "
            "intermediate.int_identity__normalised WHERE record_id = 'E3x'").fetchall()
    # three columns make the date; an impossible month still states year and day
    assert str(dates["E5"]) == "1955-06-06" and dates["E3x"] is None
    assert parts == [(1953, None, 4)]
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        graph = dict(con.execute(
            "SELECT record_id, profile_id FROM main.fct_identity_graph").fetchall())
    assert len(graph) == len(rows)  # no record vanishes
    blanks = {graph[f"B{i}"] for i in range(3)}
    assert len(blanks) == 3  # each record without identifiers is a profile of its own
    assert not blanks & {graph[r["entry"]] for r in rows if not r["entry"].startswith("B")}
