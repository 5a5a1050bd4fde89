"""Real-time events: an opt-out posted to ``POST /events`` counts at once for the API and for an
export started right after, before any batch run; the next run ingests it exactly once.

A real ``cdp serve`` over a copy of the 1,000-person demo run, a real export, a real pipeline
run (``cdp run``'s ``run_pipeline``) after the post.
"""

from __future__ import annotations

import csv
import shutil
from contextlib import AbstractContextManager
from pathlib import Path

import duckdb
import httpx
import pytest
from serving import cdp_serve

from cdp.context import RunContext
from cdp.run import demo_as_of, run_pipeline
from core.paths import DataPaths
from profiles.activation import hot_events
from profiles.activation.export import export_segment
from profiles.publishing.published import open_published

pytestmark = pytest.mark.integration

READ, WRITE = "events-read-key", "events-write-key"
REPO = Path(__file__).resolve().parent.parent
SEGMENT = "email_newsletter"


def _members(client: httpx.Client) -> list[dict[str, str]]:
    items: list[dict[str, str]] = []
    cursor = None
    while True:
        body = client.get(f"/segments/{SEGMENT}/members",
                          params={"limit": 1000, **({"cursor": cursor} if cursor else {})}).json()
        items += body["items"]
        if (cursor := body["next_cursor"]) is None:
            return items


def _csv_ids(path: Path) -> set[str]:
    with path.open(newline="") as handle:
        return {row["profile_id"] for row in csv.DictReader(handle)}


def _serve(paths: DataPaths) -> AbstractContextManager[str]:
    return cdp_serve(paths.home, READ, paths.home / "server.log", write_keys=WRITE)


def test_an_opt_out_counts_at_once_and_the_next_run_ingests_it_once(
        demo_home_copy: DataPaths) -> None:
    paths = demo_home_copy
    shutil.copytree(REPO / "config", paths.home / "config")
    activation = RunContext.at_edge(paths.home, paths.home / "config").activation
    as_of = demo_as_of(paths)
    event = {"event_id": "app-unsub-1", "type": "unsubscribe", "channel": "email",
             "occurred_at": "2026-10-31T12:00:00+00:00"}

    with _serve(paths) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.headers["X-API-Key"] = READ
        before = _members(client)
        person = next(m for m in before if m["email"])
        others = {m["profile_id"] for m in before} - {person["profile_id"]}
        # identified by the address as typed, in another spelling than the one published
        posted = {**event, "email": f"  {person['email'].upper()} "}
        assert client.post("/events", json={"events": [posted]}).status_code == 401  # read key
        write = {"X-API-Key": WRITE}
        assert httpx.get(f"{url}/segments", headers=write).status_code == 401
        first = client.post("/events", json={"events": [posted]}, headers=write)
        assert first.status_code == 200, first.text
        assert first.json() == {"written": ["app-unsub-1"], "duplicates": []}

        after = {m["profile_id"] for m in _members(client)}
        assert person["profile_id"] not in after and after == others

        export = export_segment(paths.published_db, paths.exports, SEGMENT, "after-post",
                                activation, as_of)
        assert person["profile_id"] not in _csv_ids(export.members_file)
        drops = {(row["profile_id"], row["step"], row["reason"]) for row in
                 csv.DictReader((export.directory / "suppressed.csv").open(newline=""))}
        assert (person["profile_id"], "consent", "suppressed_identifier") in drops

    with _serve(paths) as url:  # a restarted server still knows the id
        again = httpx.post(f"{url}/events", json={"events": [posted]},
                           headers={"X-API-Key": WRITE})
        assert again.json() == {"written": [], "duplicates": ["app-unsub-1"]}
    landed = hot_events.landed_files(paths.source_landing(hot_events.EVENTS_SOURCE))
    assert len(landed) == 1

    summary = run_pipeline(paths)
    assert summary.succeeded, (summary.failed_tasks, summary.errors)
    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.api_events "
                           "WHERE event_id = 'app-unsub-1'").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM raw._load_ledger WHERE source = 'api_events'"
                           ).fetchone() == (1,)
    con = open_published(paths.published_db)
    try:
        linked = con.execute(
            "SELECT profile_id FROM pub.main.fct_identity_graph "
            "WHERE source = 'api_events' AND record_id = 'app-unsub-1'").fetchall()
        assert linked == [(person["profile_id"],)]
        hot_events.load_hot_events(con, activation.events)
        assert con.execute(f"SELECT count(*) FROM {hot_events.OPT_OUTS}").fetchone() == (0,)
    finally:
        con.close()
    exported = export_segment(paths.published_db, paths.exports, SEGMENT, "after-run",
                              activation, as_of)
    assert person["profile_id"] not in _csv_ids(exported.members_file)  # now published
