"""No e-mail address or phone number a client sends comes back in an error or lands in a log:
422 bodies name the field, not the value; URLs carrying an identifier are refused; the access
log holds route templates, never URLs - in the app and under a real ``cdp serve``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from serving import cdp_serve
from test_segments import WINBACK, write_published

from cdp.settings import data_paths
from profiles.api.app import create_app
from profiles.api.settings import ApiConfigError

KEY = "privacy-test-key"
AUTH = {"X-API-Key": KEY}
EMAIL, PHONE = "anna@example.com", "+4915100000001"  # P01's, in the published scenario
HINT = "POST /profiles/lookup"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("api-privacy-home")
    (home / "warehouse").mkdir()
    write_published(home / "warehouse" / "published.duckdb")
    config = home / "config"
    config.mkdir()
    (config / "segments.yml").write_text(json.dumps({"segments": [WINBACK]}))
    (config / "api.yml").write_text("key_sha256: []\n")
    return home


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    app = create_app(data_paths(home), home / "config" / "api.yml",
                     home / "config" / "segments.yml", [KEY])
    with TestClient(app, headers=AUTH) as client:
        yield client


def test_the_api_refuses_to_start_without_keys_or_with_invalid_settings(home: Path,
                                                                         tmp_path: Path) -> None:
    segments = home / "config" / "segments.yml"
    with pytest.raises(ApiConfigError) as error:
        create_app(data_paths(home), home / "config" / "api.yml", segments, [" ", ""])
    assert error.value.lines() == [f"{home / 'config' / 'api.yml'}: key_sha256: no API keys "
                                   "configured: set CDP_API_KEYS or list key digests here"]
    api = tmp_path / "api.yml"
    api.write_text("page_size: {default: 0, max: 1000}\nmembers_max_age_seconds: soon\n")
    with pytest.raises(ApiConfigError) as error:
        create_app(data_paths(home), api, segments, [KEY])
    assert error.value.lines() == [
        f"{api}: page_size.default: Input should be greater than or equal to 1",
        f"{api}: members_max_age_seconds: Input should be a valid number, unable to parse "
        "string as a number",
    ]
    bad_segments = tmp_path / "segments.yml"
    bad_segments.write_text(json.dumps({"segments": [{**WINBACK, "channel": "fax"}]}))
    with pytest.raises(ApiConfigError, match=r"segments.yml: segments\[0\].channel: "):
        create_app(data_paths(home), home / "config" / "api.yml", bad_segments, [KEY])


def _absent(text: str, *values: str) -> None:
    for value in values:
        assert value not in text
        assert value.lstrip("+") not in text  # a phone number without its plus


# ----------------------------------------------------------------------------------- 422


@pytest.mark.parametrize(("body", "loc", "error_type"), [
    ({"email": "anna.alt@example"}, ["body", "email"], "value_error"),
    ({"phone": f"{PHONE}99999"}, ["body", "phone"], "value_error"),
    ({"email": [EMAIL]}, ["body", "email"], "string_type"),
    ({"email": EMAIL + "x" * 320}, ["body", "email"], "string_too_long"),
    ({"email": EMAIL, "phone": PHONE}, ["body"], "value_error"),
    ({"email": EMAIL, EMAIL: True}, ["body", "<redacted>"], "extra_forbidden"),
    ({"email": EMAIL, f"x{PHONE}": True}, ["body", "<redacted>"], "extra_forbidden"),
])
def test_422_names_the_field_but_never_echoes_the_value(
        client: TestClient, body: dict[str, Any], loc: list[str], error_type: str) -> None:
    response = client.post("/profiles/lookup", json=body)
    assert response.status_code == 422
    _absent(response.text, EMAIL, "anna.alt@example", PHONE)
    (error,) = response.json()["detail"]
    assert error["loc"] == loc and error["type"] == error_type and error["msg"]
    assert set(error) == {"loc", "msg", "type"}  # no "input", no "ctx"
    if loc == ["body"]:
        assert "email or phone" in error["msg"]


def test_422_for_broken_json_or_a_bad_path_does_not_echo_either(client: TestClient) -> None:
    broken = client.post("/profiles/lookup", content=f'{{"email": "{EMAIL}",'.encode(),
                         headers={"content-type": "application/json"})
    assert broken.status_code == 422
    _absent(broken.text, EMAIL)
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    path = client.get("/segments/Anna-Alt/members")
    assert path.status_code == 422 and "Anna-Alt" not in path.text
    assert path.json()["detail"][0]["loc"] == ["path", "name"]


# -------------------------------------------------------------------- identifiers in URLs


@pytest.mark.parametrize("url", [
    f"/profiles/{EMAIL}",
    "/profiles/anna%40example.com",
    f"/profiles/{PHONE}",
    "/profiles/0151%2000000001",
    "/profiles/%2B49%20(151)%2000000001",
    f"/segments/winback/members?email={EMAIL}",
    "/segments/winback/members?q=anna%40example.com&limit=5",
    "/segments/winback/members?phone=%2B4915100000001",
    "/segments/winback/members?phone=+49+151+00000001",
    "/segments/winback/changes?since=4915100000001",
    f"/segments/winback/members?{EMAIL}",
    f"/nowhere/{EMAIL}",
])
def test_an_identifier_in_the_url_is_refused_with_a_hint(client: TestClient, url: str) -> None:
    for headers in (AUTH, {"X-API-Key": ""}):  # before authentication: a 401 would not say why
        response = client.get(url, headers=headers)
        assert response.status_code == 400
        assert HINT in response.json()["detail"]
        _absent(response.text, EMAIL, "4915100000001", "00000001")


@pytest.mark.parametrize(("url", "status"), [
    ("/profiles/P01", 200),
    ("/profiles/P1234567890abcdef", 404),  # the shape of a real profile id: P + 16 hex
    ("/profiles/P0123456789012345", 404),
    ("/segments/winback/changes?since=manual-20260312T060000Z", 404),
    ("/segments/winback/changes?since=manual__2026-03-12T06:00:00%2B00:00", 404),
    ("/segments/seg_20260312/members", 404),
    ("/segments/winback/members?limit=1000000", 422),
    ("/segments/winback/members?cursor=-1234567-", 400),  # "invalid cursor", not the hint
])
def test_ids_run_ids_limits_and_cursors_are_not_taken_for_identifiers(
        client: TestClient, url: str, status: int) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert HINT not in response.text


@pytest.mark.parametrize("url", ["/segments/winback%0A/members", "/profiles/P01%0A",
                                 "/segments/winback/changes?since=run-1%0A"])
def test_path_and_query_patterns_match_the_whole_value(client: TestClient, url: str) -> None:
    """A trailing newline fails the patterns too (pydantic's "$" is the end of the text)."""
    response = client.get(url)
    assert response.status_code == 422, response.text


def test_paging_with_cursors_still_works(client: TestClient) -> None:
    ids, cursor = [], None
    while True:
        page = client.get("/segments/winback/members",
                          params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        ids += [item["profile_id"] for item in page.json()["items"]]
        if (cursor := page.json()["next_cursor"]) is None:
            break
    everyone = client.get("/segments/winback/members", params={"limit": 1000}).json()["items"]
    assert len(ids) > 1 and ids == [item["profile_id"] for item in everyone]


# ------------------------------------------------------------------------------ access log


def test_access_log_has_route_templates_and_never_the_url(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        client.get(f"/profiles/{EMAIL}")
        client.get("/segments/winback/members", params={"email": EMAIL, "phone": PHONE})
        client.get("/segments/winback/members", params={"limit": 2, "secret": "zz-token"})
        client.get("/profiles/P01")
        client.get("/no/such/page-qq")
    access = [r.getMessage() for r in caplog.records if r.name == "profiles.api.access"]
    assert [line.rsplit(" ", 2)[0] for line in access] == [
        "GET /profiles/{profile_id} 400",
        "GET /segments/{name}/members 400",
        "GET /segments/{name}/members 200",
        "GET /profiles/{profile_id} 200",
        "GET (no route) 404",
    ]
    server_side = "\n".join(r.getMessage() for r in caplog.records
                            if not r.name.startswith("httpx"))  # the test's own client
    _absent(server_side, EMAIL, PHONE, "zz-token", "limit=2", "P01", "page-qq")


@pytest.mark.integration  # a real `cdp serve` subprocess
def test_cdp_serve_logs_route_templates_instead_of_urls(home: Path) -> None:
    """Under ``cdp serve`` uvicorn's own access log (raw path and query) is off."""
    log_path = home / "serve.log"
    with (cdp_serve(home, KEY, log_path) as url,
          httpx.Client(base_url=url, headers=AUTH, timeout=30) as client):
        assert client.get(f"/profiles/{EMAIL}").status_code == 400
        assert client.get("/segments/winback/members",
                          params={"phone": PHONE}).status_code == 400
        assert client.get("/segments/winback/members",
                          params={"limit": 2}).status_code == 200
    written = log_path.read_text()
    assert "GET /profiles/{profile_id} 400" in written
    assert "GET /segments/{name}/members 200" in written
    assert "HTTP/1.1\"" not in written  # uvicorn's format: - "GET /path?query HTTP/1.1" 200
    _absent(written, EMAIL, PHONE, "limit=2", "/segments/winback")
