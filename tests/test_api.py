"""The read-only API against a real uvicorn server (``cdp serve``) on a hand-made publication."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from serving import cdp_serve
from test_segments import WINBACK, scenario_rows, write_published

from profiles.activation.config import ActivationConfig
from profiles.activation.export import export_segment
from profiles.activation.segment import build_segment
from profiles.activation.suppression import SuppressionPolicy

pytestmark = pytest.mark.integration  # a real uvicorn server (`cdp serve`) in a subprocess

KEY = "test-key-not-a-secret"
AUTH = {"X-API-Key": KEY}
EXTRA = 2_500  # enough members for many pages


def _big_scenario(unsubscribed: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """The suppression scenario plus EXTRA contactable high-value Berliners."""
    rows = scenario_rows(unsubscribed)
    decided = datetime(2026, 2, 1)
    for i in range(EXTRA):
        pid, email = f"Q{i:05d}", f"q{i}@example.org"
        rows["main.dim_profiles"].append((pid, "Q", f"Nr{i}", email, None, None, None, None,
                                          None, "Berlin", "DE", None))
        rows["main.dim_profile_traits"].append((pid, 5, 1, 300.0, 600.0, 0.8, "high", None,
                                                None))
        rows["main.dim_profile_consent"].append((pid, "email", email, "opted_in", True,
                                                 "consent_log", decided))
        rows["main.fct_identity_graph"].append((pid, "shop_accounts", f"s{i}", decided, email,
                                                None, None))
    return rows


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("api-home")
    (home / "warehouse").mkdir()
    write_published(home / "warehouse" / "published.duckdb", _big_scenario())
    config = home / "config"
    config.mkdir()
    (config / "segments.yml").write_text(json.dumps({"segments": [WINBACK]}))
    (config / "api.yml").write_text("key_sha256: []\npage_size: {default: 50, max: 1000}\n")
    segment = build_segment(WINBACK)
    export_segment(home / "warehouse" / "published.duckdb", home / "exports", "winback",
                   "run-1", ActivationConfig({segment.name: segment}, SuppressionPolicy()))
    return home


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[str]:
    """``cdp serve`` on a free port; stopped after the module."""
    with cdp_serve(home, f"other-key,{KEY}", home / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers=AUTH, timeout=30) as client:
        yield client


def _all_members(client: httpx.Client, segment: str, limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/segments/{segment}/members", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [item["profile_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
@pytest.mark.parametrize("path", ["/segments", "/segments/winback/members", "/profiles/P01"])
def test_every_endpoint_requires_a_valid_key(server: str, headers: dict[str, str],
                                             path: str) -> None:
    response = httpx.get(f"{server}{path}", headers=headers)
    assert response.status_code == 401
    assert httpx.post(f"{server}/profiles/lookup", json={"email": "anna@example.com"},
                      headers=headers).status_code == 401


def test_only_the_events_endpoint_writes(server: str, client: httpx.Client) -> None:
    schema = httpx.get(f"{server}/openapi.json").json()
    methods = {(path, m) for path, ops in schema["paths"].items() for m in ops}
    assert {m for _, m in methods} <= {"get", "post"}
    # a read-only search, and the events in (a write key: see test_api_events.py)
    assert {p for p, m in methods if m == "post"} == {"/profiles/lookup", "/events"}
    assert client.post("/events", json={"events": []}).status_code == 401  # a read key
    assert client.delete("/segments/winback/members").status_code == 405
    assert client.put("/profiles/P01", json={}).status_code == 405


def test_segments_are_listed_with_their_last_export(client: httpx.Client) -> None:
    segments = {s["name"]: s for s in client.get("/segments").json()}
    assert segments["winback"]["last_export_run_id"] == "run-1"
    assert segments["winback"]["kind"] == "rule"
    assert segments["seg_email_newsletter"]["kind"] == "dbt"


def test_paging_is_complete_stable_and_matches_the_export(home: Path,
                                                           client: httpx.Client) -> None:
    with open(home / "exports" / "winback" / "run-1" / "members.csv", newline="") as handle:
        exported = [row["profile_id"] for row in csv.DictReader(handle)]
    first = _all_members(client, "winback", limit=97)
    assert first == exported  # same suppression chain, same order
    assert len(first) == len(set(first)) >= EXTRA
    assert _all_members(client, "winback", limit=1000) == first
    page = client.get("/segments/winback/members", params={"limit": 3}).json()
    again = client.get("/segments/winback/members",
                       params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert [i["profile_id"] for i in again["items"]] == first[3:6]
    assert page["items"][0]["email"] == "anna@example.com"
    assert "P02" not in first and "P04" not in first  # opted out; suppressed identifier


def test_profile_lookup_by_id_email_and_phone(client: httpx.Client) -> None:
    profile = client.get("/profiles/P01").json()
    assert profile["first_name"] == "Anna" and profile["traits"]["churn_risk"] == "high"
    assert profile["consent"][0]["channel"] == "email"
    for identifier in ({"email": "  ANNA@Example.com "}, {"email": "anna+news@example.com"},
                       {"phone": "0151 0000 0001"}, {"phone": "+49 151 00000001"}):
        response = client.post("/profiles/lookup", json=identifier)
        assert response.status_code == 200, response.text
        assert response.json()["matches"][0]["profile_id"] == "P01"
    assert client.post("/profiles/lookup", json={"email": "nobody@example.com"}).json() == {
        "matches": []}


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("get", "/profiles/nobody", {}, 404),
    ("get", "/profiles/%27%20or%201=1", {}, 422),
    ("get", "/segments/nope/members", {}, 404),
    ("get", "/segments/Bad-Name/members", {}, 422),
    ("get", "/segments/winback/members", {"params": {"limit": 0}}, 422),
    ("get", "/segments/winback/members", {"params": {"limit": 10**6}}, 422),
    ("get", "/segments/winback/members", {"params": {"cursor": "not-a-cursor"}}, 400),
    ("get", "/segments/winback/members", {"params": {"cursor": "e30="}}, 400),
    ("get", "/segments/winback/changes", {}, 422),
    ("get", "/segments/winback/changes", {"params": {"since": "../../etc"}}, 422),
    ("get", "/segments/winback/changes", {"params": {"since": "run-9"}}, 404),
    ("post", "/profiles/lookup", {"json": {}}, 422),
    ("post", "/profiles/lookup", {"json": {"email": "a@b.de", "phone": "+4930123456"}}, 422),
    ("post", "/profiles/lookup", {"json": {"email": "not an email"}}, 422),
    ("post", "/profiles/lookup", {"json": {"phone": "12"}}, 422),
    ("post", "/profiles/lookup", {"json": {"email_sha256": "ab"}}, 422),
    ("post", "/profiles/lookup", {"content": b"{", "headers": {"content-type":
                                                               "application/json"}}, 422),
])
def test_bad_input_gets_a_clear_4xx(client: httpx.Client, method: str, path: str,
                                    kwargs: dict[str, Any], status: int) -> None:
    response = client.request(method.upper(), path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_property_based_requests_never_get_a_5xx(server: str, mode: GenerationMode) -> None:
    """Schemathesis draws requests for every operation of /openapi.json (valid ones, then ones
    that break the schema); none may get a 5xx or a response the schema does not describe."""
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, checks=[
            not_a_server_error, status_code_conformance, response_schema_conformance])

    check()


def test_a_publication_swap_is_picked_up_and_shows_as_a_change(home: Path,
                                                               client: httpx.Client) -> None:
    before = _all_members(client, "winback", limit=1000)
    write_published(home / "warehouse" / "published.duckdb",
                    _big_scenario(unsubscribed=("P01",)))
    after = _all_members(client, "winback", limit=1000)
    assert "P01" in before and after == [p for p in before if p != "P01"]
    changes = client.get("/segments/winback/changes", params={"since": "run-1"}).json()
    assert changes["items"] == [{"profile_id": "P01", "change": "left"}]
    pipeline_run = "manual__2026-03-12T06:00:00+00:00"  # listed as is, stored as a safe name
    export_segment(home / "warehouse" / "published.duckdb", home / "exports", "winback",
                   pipeline_run, ActivationConfig({"winback": build_segment(WINBACK)},
                                                  SuppressionPolicy()))
    listed = {s["name"]: s for s in client.get("/segments").json()}["winback"]
    assert listed["last_export_run_id"] == pipeline_run
    assert client.get("/segments/winback/changes",
                      params={"since": pipeline_run}).json()["items"] == []


def test_the_latest_controlling_report_is_served(client: httpx.Client, home: Path) -> None:
    """GET /report: reports/kpi/latest.html as the report stage wrote it, byte for byte;
    404 before the first one."""
    latest = home / "reports" / "kpi" / "latest.html"
    if not latest.exists():
        missing = client.get("/report")
        assert missing.status_code == 404 and "no report yet" in missing.text
    latest.parent.mkdir(parents=True, exist_ok=True)
    latest.write_text("<!DOCTYPE html><html><body><h1>Campaigns – Wochen</h1></body></html>",
                      encoding="utf-8")
    served = client.get("/report")
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/html")
    assert served.content == latest.read_bytes()
    assert httpx.get(client.base_url.join("/report")).status_code == 401  # the key is required
