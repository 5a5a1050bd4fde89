"""The API's guards, on a hand-made publication: write keys apart from read keys (both stored
as digests), the request size limit, the per-key rate limit, /health without a key, an
OpenAPI schema with tags and a typed response for every operation, events validated and
logged without the identifiers they carry, and landed once per event id."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
from fastapi.testclient import TestClient
from test_segments import WINBACK, write_published

from cdp.settings import data_paths
from core.vocabulary import CHANNELS
from profiles.activation.hot_events import EVENTS_SOURCE, FIELDS, landed_files
from profiles.api.app import create_app
from profiles.api.events import EventLog
from profiles.api.models import Channel
from profiles.api.settings import ApiConfigError

READ, WRITE = "hardening-read", "hardening-write"
EMAIL = "anna@example.com"  # P01's, in the published scenario
EVENT = {"event_id": "e1", "type": "unsubscribe", "channel": "email", "email": EMAIL}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "warehouse").mkdir()
    write_published(tmp_path / "warehouse" / "published.duckdb")
    config = tmp_path / "config"
    config.mkdir()
    (config / "segments.yml").write_text(json.dumps({"segments": [WINBACK]}))
    (config / "api.yml").write_text(json.dumps({
        "key_sha256": [_digest(READ)], "write_key_sha256": [_digest(WRITE)],
        "max_request_bytes": 2000, "rate_limit": {"per_second": 0.5, "burst": 6}}))
    return tmp_path


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    app = create_app(data_paths(home), home / "config" / "api.yml",
                     home / "config" / "segments.yml")
    with TestClient(app) as client:
        yield client


def test_write_and_read_keys_are_separate_digests(client: TestClient, home: Path) -> None:
    read, write = {"X-API-Key": READ}, {"X-API-Key": WRITE}
    assert client.post("/events", json={"events": [EVENT]}, headers=read).status_code == 401
    assert client.get("/segments", headers=write).status_code == 401
    assert client.post("/events", json={"events": [EVENT]}, headers=write).json() == {
        "written": ["e1"], "duplicates": []}
    members = client.get("/segments/winback/members", headers=read).json()["items"]
    assert "P01" not in {m["profile_id"] for m in members}  # the hot list, at once
    assert len(landed_files(home / "landing" / EVENTS_SOURCE)) == 1
    with pytest.raises(ApiConfigError, match="a write key must not also be a read key"):
        create_app(data_paths(home), home / "config" / "api.yml",
                   home / "config" / "segments.yml", write_keys=[READ])


def test_bodies_over_the_limit_are_refused(client: TestClient) -> None:
    write = {"X-API-Key": WRITE}
    big = {"events": [{**EVENT, "event_id": f"e{i}"} for i in range(40)]}
    assert client.post("/events", json=big, headers=write).status_code == 413
    chunks = (b'{"events": [' + b" " * 500 for _ in range(6))  # no Content-Length
    assert client.post("/events", content=chunks, headers=write).status_code == 413


def test_each_key_has_a_request_rate(client: TestClient) -> None:
    statuses = [client.get("/segments", headers={"X-API-Key": READ}).status_code
                for _ in range(8)]
    assert statuses[:6] == [200] * 6 and statuses[6:] == [429, 429]
    limited = client.get("/segments", headers={"X-API-Key": READ})
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.post("/events", json={"events": [EVENT]},
                       headers={"X-API-Key": WRITE}).status_code == 200  # its own bucket


def test_the_api_channels_are_the_vocabulary() -> None:
    assert get_args(Channel) == CHANNELS


def test_health_needs_no_key_and_every_operation_is_tagged_and_typed(
        client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "publication_run_id": "run-test"}
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation["tags"], (method, path)
            ok = operation["responses"]["200"]["content"]
            typed = "$ref" in json.dumps(ok.get("application/json", {}).get("schema", {}))
            assert typed or (path == "/report" and "text/html" in ok), (method, path)


@pytest.mark.parametrize("event", [
    {**EVENT, "type": "consent"},  # no status
    {**EVENT, "channel": "all", "type": "delivery", "offer_id": "x"},
    {**EVENT, "email": "not an address"},
    {**EVENT, "event_id": "../../etc"},
    {"event_id": "e2", "type": "unsubscribe", "channel": "email"},  # nobody named
])
def test_bad_events_are_refused_without_echoing_them(client: TestClient,
                                                     event: dict[str, str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="profiles.api.access"):
        response = client.post("/events", json={"events": [event]},
                               headers={"X-API-Key": WRITE})
    assert response.status_code == 422
    assert EMAIL not in response.text and "not an address" not in response.text
    assert [r.getMessage().split(" ")[:3] for r in caplog.records] == [["POST", "/events",
                                                                        "422"]]


def test_events_land_once_per_id_across_batches_and_restarts(tmp_path: Path) -> None:
    folder = tmp_path / "landing" / EVENTS_SOURCE
    first = EventLog(folder).land([{"event_id": "e1"}, {"event_id": "e2"}, {"event_id": "e1"}])
    assert (first.written, first.duplicates) == (["e1", "e2"], ["e1"])
    restarted = EventLog(folder).land([{"event_id": "e2"}, {"event_id": "e3"}])
    assert (restarted.written, restarted.duplicates) == (["e3"], ["e2"])
    files = landed_files(folder)
    assert len(files) == 2 and not [p for p in folder.rglob(".*.tmp")]
    lines = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert [line["event_id"] for line in lines] == ["e1", "e2", "e3"]
    assert all(list(line) == list(FIELDS) for line in lines)  # every file has every column
