"""The API answers from the publication's serving store, and an event posted to one worker of
``cdp serve --workers 2`` counts at once in the other: a real server over a copy of the
1,000-person demo run, a new connection per request (the kernel spreads them over both
workers)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest
from serving import cdp_serve

from core.paths import DataPaths
from profiles.publishing.published import open_published, publication_run_id
from profiles.serving.store import ServingStore

pytestmark = pytest.mark.integration

READ, WRITE = "serving-read-key", "serving-write-key"
REPO = Path(__file__).resolve().parent.parent


def test_two_workers_answer_from_the_store_and_both_honour_an_opt_out_at_once(
        demo_home_copy: DataPaths) -> None:
    paths = demo_home_copy
    shutil.copytree(REPO / "config", paths.home / "config")
    (paths.home / "config" / "api.yml").write_text(
        "key_sha256: []\nrate_limit: {per_second: 100000, burst: 100000}\n")
    con = open_published(paths.published_db)
    run_id = publication_run_id(con)
    con.close()
    store = ServingStore.of(paths.published_db, run_id)
    assert store is not None
    read, write = {"X-API-Key": READ}, {"X-API-Key": WRITE}
    with cdp_serve(paths.home, READ, paths.home / "server.log", write_keys=WRITE,
                   workers=2) as url:
        assert httpx.get(f"{url}/health").json() == {"status": "ok",
                                                     "publication_run_id": run_id}
        ids = _store_ids(store)[:200]
        offered = {}
        for profile_id in ids:
            body = httpx.get(f"{url}/profiles/{profile_id}/offers",
                             params={"channel": "email"}, headers=read).json()
            assert body["publication_run_id"] == run_id
            offered[profile_id] = [o["offer_id"] for o in body["offers"]]
        person = next(p for p, offers in offered.items() if offers)
        document = httpx.get(f"{url}/profiles/{person}", headers=read)
        assert document.status_code == 200 and document.text == store.document(person)

        posted = httpx.post(f"{url}/events", headers=write, json={"events": [
            {"event_id": "serving-unsub-1", "type": "unsubscribe", "channel": "email",
             "profile_id": person}]})
        assert posted.status_code == 200, posted.text
        consent = [row for row in httpx.get(f"{url}/profiles/{person}", headers=read).json()[
            "consent"] if row["channel"] == "email"]
        assert any(row["status"] == "opted_out" and not row["is_contactable"]
                   for row in consent)  # the document shows it too, at once
        for _ in range(20):  # each on a new connection: both workers answer some
            body = httpx.get(f"{url}/profiles/{person}/offers", params={"channel": "email"},
                             headers=read).json()
            assert body["offers"] == []
            assert {o["reason"] for o in body["excluded"]} & {
                "opted_out", "suppressed_identifier"}
        # everyone else is still answered as before (from the store)
        for profile_id in ids[:50]:
            if profile_id != person:
                body = httpx.get(f"{url}/profiles/{profile_id}/offers",
                                 params={"channel": "email"}, headers=read).json()
                assert [o["offer_id"] for o in body["offers"]] == offered[profile_id]
    log = (paths.home / "server.log").read_text()
    assert log.count("Started server process") == 2  # two workers really ran


def _store_ids(store: ServingStore) -> list[str]:
    con = sqlite3.connect(f"file:{store.path}?mode=ro&immutable=1", uri=True)
    try:
        return [row[0] for row in con.execute("SELECT profile_id FROM profiles ORDER BY 1")]
    finally:
        con.close()
