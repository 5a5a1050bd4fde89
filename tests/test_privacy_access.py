"""The access report (GDPR Art. 15): everything held about one person, nothing of anyone else.

The pipeline tests read the shared demo run: a true person (demo truth) whose records the
resolver put into one profile of their own is located by e-mail, and the report must hold
every one of their records, no record of another person and no other person's e-mail. A
profile that over-merged two people shows one of them only their own values.
"""

from __future__ import annotations

import csv
import html
import json
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cdp.context import RunContext
from cdp.settings import REPO_ROOT
from core.paths import DataPaths
from core.vocabulary import quote_identifier as q
from ingest.registry import Registry, parse_registry
from privacy.access import (
    WITHHELD,
    build_access_report,
    render_html,
    write_access_report,
)
from privacy.identifiers import Identifier, parse
from privacy.locate import Person, UnknownPerson, locate

MARTS_YML = REPO_ROOT / "dbt_project" / "models" / "marts" / "_marts.yml"

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}


@dataclass
class Demo:
    paths: DataPaths
    registry: Registry
    truth: dict[tuple[str, str], str]  # (source, record id) -> person id
    emails: dict[tuple[str, str], set[str]]  # raw e-mails (every version), lower-cased


@dataclass
class Access:
    demo: Demo
    person_id: str
    requested: list[Identifier]
    person: Person
    report: dict[str, Any]
    json_path: Path
    html_path: Path


class _Page(HTMLParser):
    """Text and structure of a page: tags must balance, nothing may load or run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag in ("script", "iframe", "object", "embed", "img", "link"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name in ("src", "href") or (value and "url(" in value):
                self.problems.append(f"{tag}[{name}]")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unbalanced </{tag}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse_page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def demo(demo_run) -> Demo:
    paths, _ = demo_run
    registry = RunContext.at_edge(paths.home).registry
    with (paths.truth / "demo_truth.csv").open(newline="", encoding="utf-8") as handle:
        truth = {(r["source"], r["record_id"]): r["person_id"] for r in csv.DictReader(handle)}
    emails: dict[tuple[str, str], set[str]] = {}
    con = duckdb.connect(str(paths.build_db), read_only=True)
    try:
        for spec in registry:
            column = spec.identity.get("email")
            if column is None:
                continue
            for key, value in con.execute(
                    f"SELECT CAST({q(spec.record_key)} AS VARCHAR), CAST({q(column)} AS VARCHAR) "
                    f"FROM raw.{q(spec.table)} WHERE {q(column)} IS NOT NULL").fetchall():
                if value.strip():
                    emails.setdefault((spec.name, key), set()).add(value.strip().lower())
    finally:
        con.close()
    return Demo(paths, registry, truth, emails)


def _truth_table(con: duckdb.DuckDBPyConnection, demo: Demo) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE truth (source VARCHAR, record_id VARCHAR, "
                "person_id VARCHAR)")
    con.executemany("INSERT INTO truth VALUES (?, ?, ?)",
                    [(s, r, p) for (s, r), p in sorted(demo.truth.items())])


@pytest.fixture(scope="module")
def access(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Access:
    con = duckdb.connect(str(demo.paths.build_db), read_only=True)
    try:
        _truth_table(con, demo)
        # One profile holding exactly this person's records, and an e-mail; most sources first
        # (the fullest report), then the person id: deterministic.
        picked = con.execute(
            """WITH t AS (
                   SELECT t.person_id, g.* FROM truth t
                   JOIN main.fct_identity_graph g USING (source, record_id)),
               people AS (
                   SELECT person_id, any_value(profile_id) AS profile_id,
                          count(DISTINCT profile_id) AS profiles, count(*) AS records,
                          count(DISTINCT source) AS sources, min(email) AS email
                   FROM t GROUP BY person_id),
               profiles AS (
                   SELECT profile_id, count(*) AS records FROM main.fct_identity_graph
                   GROUP BY profile_id)
               SELECT p.person_id, p.email FROM people p JOIN profiles f USING (profile_id)
               WHERE p.profiles = 1 AND f.records = p.records AND p.email IS NOT NULL
               ORDER BY p.sources DESC, p.records DESC, p.person_id LIMIT 1""").fetchone()
        assert picked, "the demo run has no person resolved into a profile of their own"
        person_id, email = picked
        requested = [parse(f"email:{email}")]
        person = locate(con, demo.registry, requested)
    finally:
        con.close()
    report = build_access_report(demo.paths, demo.registry, person, requested=requested,
                                 marts_yml=MARTS_YML)
    folder = tmp_path_factory.mktemp("access") / "request"
    json_path, html_path = write_access_report(report, folder)
    return Access(demo, person_id, requested, person, report, json_path, html_path)


def _own_and_other_emails(demo: Demo, person_id: str) -> tuple[set[str], set[str]]:
    """The person's raw e-mails, and every other person's that is not one of them nor part
    of one (``a@b.de`` in ``xa@b.de``)."""
    own = {e for key, found in demo.emails.items() if demo.truth.get(key) == person_id
           for e in found}
    other = {e for key, found in demo.emails.items() if demo.truth.get(key) != person_id
             for e in found}
    return own, {e for e in other if not any(e in mine for mine in own)}


# --------------------------------------------------------------------------------------------
# the demo person


def test_every_record_of_the_person_is_reported(access: Access) -> None:
    expected = {key for key, p in access.demo.truth.items() if p == access.person_id}
    reported = {(r["source"], r["record_id"]) for r in access.report["records"]}
    assert expected <= reported
    assert access.report["summary"]["records"] == len(reported)
    assert {r["source"] for r in access.report["records"]} == set(
        access.report["summary"]["sources"])


def test_no_record_of_another_person_is_reported(access: Access) -> None:
    others = [(r["source"], r["record_id"]) for r in access.report["records"]
              if access.demo.truth.get((r["source"], r["record_id"])) != access.person_id]
    assert others == []


def test_records_hold_their_raw_values_and_versions(access: Access) -> None:
    for record in access.report["records"]:
        spec = access.demo.registry[record["source"]]
        assert record["values"][spec.record_key] == record["record_id"]
        assert not any(column.startswith("_") for column in record["values"])
        assert record["version_count"] == len(record["versions"]) >= 1
        assert [v["current"] for v in record["versions"]].count(True) == 1
        assert all(v["loaded_at"] for v in record["versions"])


def test_every_raw_version_of_a_record_is_counted(demo: Demo) -> None:
    con = duckdb.connect(str(demo.paths.build_db), read_only=True)
    try:
        held = None
        for spec in demo.registry:
            key = q(spec.record_key)
            held = con.execute(
                f"SELECT CAST({key} AS VARCHAR), count(*) FROM raw.{q(spec.table)} "
                f"GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 1").fetchone()
            if held:
                source = spec.name
                break
    finally:
        con.close()
    if held is None:
        pytest.skip("no record of the demo run has more than one raw version")
    record_id, versions = held
    report = build_access_report(demo.paths, demo.registry,
                                 Person(records={source: {record_id}}), marts_yml=MARTS_YML)
    (record,) = report["records"]
    assert record["version_count"] == versions == len(record["versions"])
    assert [v["current"] for v in record["versions"]] == [True] + [False] * (versions - 1)


def test_the_profile_is_shown_whole(access: Access) -> None:
    (profile,) = access.report["profiles"]
    assert profile["holds_other_records"] is False
    assert WITHHELD not in json.dumps({k: v for k, v in access.report.items() if k != "about"},
                                      ensure_ascii=False)
    golden = profile["golden_record"]
    held = [a for a in golden["attributes"] if a["from_your_records"] is not None]
    assert held and all(a["from_your_records"] for a in held)
    assert golden["record_count"] == len(access.report["records"])
    assert {(i["identifier_type"], i["identifier_value"]) for i in profile["identifiers"]} >= {
        ("email", access.requested[0].value)}
    assert {c["channel"] for c in profile["consent"]} >= {"email", "post"}
    traits = profile["traits"]
    assert traits["traits"] and all(t["definition"] for t in traits["traits"])
    assert traits["definition"]


def test_the_request_is_reported_hashed_only(access: Access) -> None:
    text = access.json_path.read_text(encoding="utf-8")
    assert json.loads(text) == access.report
    (identifier,) = access.report["request"]["identifiers"]
    assert identifier == {"kind": "email", "sha256": access.requested[0].hash}
    assert access.requested[0].value not in json.dumps(access.report["request"])
    assert datetime.fromisoformat(access.report["generated_at"]).tzinfo is not None


def test_the_files_are_private(access: Access) -> None:
    for path in (access.json_path, access.html_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {p.name for p in access.json_path.parent.iterdir()} == {"access.json",
                                                                    "access.html"}


def test_the_page_parses_and_names_every_record(access: Access) -> None:
    text = access.html_path.read_text(encoding="utf-8")
    page = _parse_page(text)
    assert page.problems == []
    assert page.stack == []
    assert {"html", "head", "body", "h1", "h2", "table"} <= page.tags
    assert '<meta charset="utf-8">' in text
    shown = "\n".join(page.text)
    for record in access.report["records"]:
        assert record["record_id"] in shown


def test_no_other_persons_email_appears(access: Access) -> None:
    own, others = _own_and_other_emails(access.demo, access.person_id)
    assert own and others
    texts = {
        "json": access.json_path.read_text(encoding="utf-8").lower(),
        "html": html.unescape(access.html_path.read_text(encoding="utf-8")).lower(),
    }
    for name, text in texts.items():
        leaked = sorted(e for e in others if e in text)
        assert not leaked, f"{len(leaked)} e-mails of other people in the {name} report"


def test_exports_naming_the_person_are_listed(access: Access) -> None:
    profile_ids = set(access.person.profile_ids)
    con = duckdb.connect()
    try:
        expected = set()
        for members in sorted(access.demo.paths.exports.glob("*/*/members.parquet")):
            found = con.execute(
                "SELECT count(*) FROM read_parquet($p) "
                "WHERE profile_id IN (SELECT unnest($ids))",
                {"p": str(members), "ids": sorted(profile_ids)}).fetchone()
            if found and found[0]:
                manifest = json.loads((members.parent / "manifest.json").read_text("utf-8"))
                expected.add((manifest["segment"], manifest["run_id"], manifest["exported_at"]))
    finally:
        con.close()
    reported = access.report["segments_and_exports"]["exports"]
    assert {(e["segment"], e["run_id"], e["exported_at"]) for e in reported
            if e["member"]} == expected
    assert all(e["files"] for e in reported)


# --------------------------------------------------------------------------------------------
# an over-merged profile


def test_an_over_merged_profile_shows_only_the_persons_own_values(
        demo: Demo, tmp_path: Path) -> None:
    """A profile holding two people: the report for one of them (their records as locate
    would separate them) withholds what came from the other's records."""
    con = duckdb.connect(str(demo.paths.build_db), read_only=True)
    try:
        _truth_table(con, demo)
        picked = con.execute(
            """WITH t AS (SELECT t.person_id, g.profile_id, g.source, g.record_id, g.email
                          FROM truth t JOIN main.fct_identity_graph g USING (source, record_id)),
               mixed AS (SELECT profile_id FROM t GROUP BY profile_id
                         HAVING count(DISTINCT person_id) > 1)
               SELECT profile_id, person_id FROM t JOIN mixed USING (profile_id)
               GROUP BY profile_id, person_id HAVING count(email) > 0
               ORDER BY count(*) DESC, profile_id, person_id LIMIT 1""").fetchone()
    finally:
        con.close()
    if picked is None:
        pytest.skip("the resolver over-merged no profile in the demo run")
    profile_id, person_id = picked
    person = Person(profile_ids={profile_id})
    for (source, record_id), owner in demo.truth.items():
        if owner == person_id:
            person.records.setdefault(source, set()).add(record_id)
    report = build_access_report(demo.paths, demo.registry, person, marts_yml=MARTS_YML)
    write_access_report(report, tmp_path / "mixed")

    profile = next(p for p in report["profiles"] if p["profile_id"] == profile_id)
    assert profile["holds_other_records"] is True
    assert all(t["value"] == WITHHELD for t in profile["traits"]["traits"])
    assert {(r["source"], r["record_id"]) for r in profile["your_records"]} <= {
        (s, r) for s, ids in person.records.items() for r in ids}
    _, others = _own_and_other_emails(demo, person_id)
    for name in ("access.json", "access.html"):
        text = html.unescape((tmp_path / "mixed" / name).read_text(encoding="utf-8")).lower()
        assert not [e for e in others if e in text], name


# --------------------------------------------------------------------------------------------
# no such person


def test_an_unknown_identifier_is_an_unknown_person(demo: Demo) -> None:
    value = "niemand.unbekannt.4711@example.invalid"
    con = duckdb.connect(str(demo.paths.build_db), read_only=True)
    try:
        person = locate(con, demo.registry, [parse(f"email:{value}")])
    finally:
        con.close()
    assert person.records == {} and person.profile_ids == set()
    with pytest.raises(UnknownPerson) as raised:
        build_access_report(demo.paths, demo.registry, person, marts_yml=MARTS_YML)
    assert isinstance(raised.value, LookupError)
    assert value not in str(raised.value) and "niemand" not in str(raised.value)
    assert "nothing is held" in str(raised.value)


def test_an_empty_person_needs_no_warehouse(tmp_path: Path) -> None:
    registry = parse_registry({"sources": {"crm": {"kind": "offline", "format": "csv",
                                                    "record_key": "id"}}})
    with pytest.raises(UnknownPerson):
        build_access_report(DataPaths(tmp_path), registry, Person(), marts_yml=MARTS_YML)


# --------------------------------------------------------------------------------------------
# writing


def test_the_page_escapes_every_value(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script> & Müller'
    report = {
        "generated_at": datetime(2026, 1, 2, tzinfo=UTC).isoformat(),
        "request": {"identifiers": [{"kind": "email", "sha256": "ab" * 32}]},
        "summary": {"records": 1, "sources": ["crm"], "profiles": ["P1"]},
        "about": ["Über diese Auskunft"],
        "records": [{"source": "crm", "record_id": "R<1>", "time": None, "profile_id": "P1",
                     "values": {"name": hostile}, "version_count": 1,
                     "versions": [{"loaded_at": "2026-01-01", "current": True}]}],
        "profiles": [], "segments_and_exports": {"segments": [], "exports": []},
        "suppression": [],
    }
    json_path, html_path = write_access_report(report, tmp_path / "a" / "b")
    page_text = html_path.read_text(encoding="utf-8")
    assert "<script>" not in page_text and "&lt;script&gt;" in page_text
    assert "Müller" in page_text and "Über" in page_text
    page = _parse_page(page_text)
    assert page.problems == [] and page.stack == []
    assert hostile in "".join(page.text) and "R<1>" in "".join(page.text)
    assert json.loads(json_path.read_text(encoding="utf-8")) == report
    assert render_html(report) == page_text
    for path in (json_path, html_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # rewriting replaces the files and keeps them private
    write_access_report({**report, "about": ["zweite Fassung"]}, tmp_path / "a" / "b")
    assert "zweite Fassung" in html_path.read_text(encoding="utf-8")
    assert stat.S_IMODE(html_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["access.html",
                                                                        "access.json"]
