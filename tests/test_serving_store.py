"""The serving store beside each publication: built by publish, same answers as the warehouse,
gone with the publication it belongs to."""

from __future__ import annotations

import json
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_api import _big_scenario
from test_publish import _make_build
from test_segments import write_published

from profiles.api import queries
from profiles.publishing.publish import publish, rollback
from profiles.publishing.published import open_published
from profiles.serving.store import ServingStore, store_folder, store_path


def _expected_document(con: duckdb.DuckDBPyConnection, profile_id: str) -> dict[str, Any]:
    """The document as the API documents it, assembled row by row in Python: the golden
    record (e-mail and phone as their deliverable values), consent rows, traits."""

    def one(sql: str) -> dict[str, Any] | None:
        cur = con.execute(sql, [profile_id])
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description or []], row, strict=True)) if row else None

    has_values = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'pub' "
                             "AND table_name = 'dim_profile_contact_values'").fetchone() == (1,)

    def deliverable(point: str | None) -> str | None:
        if not has_values:
            return point
        found = con.execute("SELECT deliverable_value FROM pub.main.dim_profile_contact_values "
                            "WHERE profile_id = ? AND contact_point = ?",
                            [profile_id, point]).fetchone()
        return found[0] if found else point

    record = one("SELECT * FROM pub.main.dim_profiles WHERE profile_id = ?") or {}
    record["email"], record["phone"] = deliverable(record["email"]), deliverable(record["phone"])
    cur = con.execute("SELECT channel, contact_point, status, is_contactable, decided_at "
                      "FROM pub.main.dim_profile_consent WHERE profile_id = ? "
                      "ORDER BY channel, contact_point", [profile_id])
    names = [d[0] for d in cur.description or []]
    record["consent"] = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    record["traits"] = one("SELECT * FROM pub.main.dim_profile_traits WHERE profile_id = ?")
    return json.loads(json.dumps(record, default=lambda value: value.isoformat()))


def _build(path: Path, unsubscribed: tuple[str, ...] = ()) -> Path:
    """A build file holding the contracted marts (publish adds ``_publication`` itself)."""
    return write_published(path, _big_scenario(unsubscribed), omit=("main._publication",))


def test_publish_writes_a_store_answering_exactly_as_the_warehouse(tmp_path: Path) -> None:
    published = tmp_path / "published.duckdb"
    publish(_build(tmp_path / "build.duckdb"), published, "run-1")
    store = ServingStore.of(published, "run-1")
    assert store is not None and store.path == store_path(published, "run-1")
    con = open_published(published)
    ids = [row[0] for row in con.execute("SELECT profile_id FROM pub.main.dim_profiles ORDER BY 1")
           .fetchall()]
    assert len(ids) > 2_500
    for profile_id in [*ids[:20], *ids[20::25]]:  # the scenario's people, then a sample
        document = store.document(profile_id)
        assert document is not None, profile_id
        assert json.loads(document) == _expected_document(con, profile_id), profile_id
        assert queries.profile_document(con.cursor(), profile_id) == document
    assert store.document("nobody") is None
    queries.build_identity_hashes(con)
    hashes = con.execute(f"SELECT kind, digest, profile_id FROM {queries.IDENTITY_HASHES}"
                         ).fetchall()
    assert hashes
    for kind, digest, _ in hashes:
        assert store.profiles_with_hash(kind, digest) == queries.profiles_with_hash(
            con.cursor(), kind, digest)
    assert store.profiles_with_hash("email", "0" * 64) == []


def test_stores_live_and_die_with_their_publications(tmp_path: Path) -> None:
    published, build = tmp_path / "published.duckdb", tmp_path / "build.duckdb"
    for run, unsubscribed in (("run-1", ()), ("run-2", ("P01",)), ("run-3", ("P01", "P04"))):
        build.unlink(missing_ok=True)
        publish(_build(build, unsubscribed), published, run, keep=1)
    # the current publication and the one archived publication a rollback may restore
    assert sorted(p.name for p in store_folder(published).iterdir()) == [
        "run-2.sqlite", "run-3.sqlite"]
    current = ServingStore.of(published, "run-3")
    assert current is not None
    assert json.loads(current.document("P04") or "{}")["consent"][0]["status"] == "opted_out"
    rollback(published)
    assert [p.name for p in store_folder(published).iterdir()] == ["run-2.sqlite"]
    restored = ServingStore.of(published, "run-2")
    assert restored is not None
    assert json.loads(restored.document("P04") or "{}")["consent"][0]["status"] == "opted_in"


def test_a_publication_without_the_profile_marts_has_no_store(tmp_path: Path) -> None:
    published, build = tmp_path / "published.duckdb", tmp_path / "build.duckdb"
    _make_build(build, 1)
    publish(build, published, "run-1")
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM main.dim_profiles").fetchone() == (1_000,)
    assert ServingStore.of(published, "run-1") is None
    assert not store_folder(published).exists()


def test_the_demo_publication_is_served_from_its_store(demo_run) -> None:
    """The pipeline's own publish wrote the store: documents with deliverable values and traits
    as the marts say, every identifier hash, next best offers as the chain decides them."""
    from cdp.context import RunContext
    from profiles.activation.offers import next_best_offers
    from profiles.serving.offers import Catalogue

    paths, summary = demo_run
    published = paths.published_db
    store = ServingStore.of(published, summary.run_id)
    assert store is not None
    ctx = RunContext.at_edge(paths.home)
    catalogue = Catalogue(ctx.offers, ctx.activation)
    con = open_published(published)
    ids = [row[0] for row in con.execute(
        "SELECT profile_id FROM pub.main.dim_profiles ORDER BY profile_id").fetchall()]
    now = time.time()
    reasons = set()
    for profile_id in ids[::20]:
        assert json.loads(store.document(profile_id) or "null") == _expected_document(
            con, profile_id), profile_id
        for channel in ("email", "sms"):
            stored = store.offers(catalogue, profile_id, channel, now)
            assert stored is not None, profile_id
            chain = next_best_offers(con, catalogue.offers, catalogue.config, profile_id,
                                     channel)
            assert [(v.offer.id, v.step, v.reason) for v in stored] == [
                (v.offer.id, v.step, v.reason) for v in chain], (profile_id, channel)
            reasons |= {v.reason for v in stored}
    assert {None, "not_eligible", "not_offered_in_channel"} < reasons  # not all alike
    # another catalogue: the stored verdicts are not used
    assert store.offers(Catalogue({}, catalogue.config), ids[0], "email", now) is None
    graph = con.execute("SELECT DISTINCT sha256(email), profile_id FROM pub.main."
                        "fct_identity_graph WHERE email IS NOT NULL").fetchall()
    for digest, profile_id in graph[::10]:
        assert profile_id in store.profiles_with_hash("email", digest)


def test_stored_verdicts_hold_until_a_cool_down_ends_or_a_cap_period_starts(
        tmp_path: Path) -> None:
    """P07 rejected the voucher on the phone on 2 March 15:00: with a two-day cool-down the
    stored verdict (excluded) holds until 4 March 15:00, when the chain would offer it again;
    everyone else's holds until the week ends (a frequency cap counts per week)."""
    import sqlite3
    from datetime import datetime

    from profiles.activation.config import ActivationConfig
    from profiles.activation.offers import load_offers, next_best_offers
    from profiles.activation.suppression import SuppressionPolicy
    from profiles.serving.offers import Catalogue, UnknownProfile, stored_verdicts, write_offers

    published = write_published(tmp_path / "published.duckdb")
    spec = tmp_path / "offers.yml"
    spec.write_text("offers:\n  - {id: winback_voucher_10, product_group: vouchers, "
                    "channels: [email], eligible: \"city = 'Berlin'\", priority: 1}\n")
    catalogue = Catalogue(load_offers(spec), ActivationConfig({}, SuppressionPolicy(
        cooldown_days=2)))
    now = datetime(2026, 3, 3, 9)  # a Tuesday
    con, store = open_published(published), sqlite3.connect(":memory:")
    write_offers(con, store, catalogue, now)
    until = dict(store.execute("SELECT profile_id, valid_until FROM offers").fetchall())
    assert until["P07"] == datetime(2026, 3, 4, 15, tzinfo=UTC).timestamp()
    assert until["P01"] == datetime(2026, 3, 9, tzinfo=UTC).timestamp()  # next Monday

    def chain(at: datetime) -> str | None:
        return next_best_offers(con, catalogue.offers, catalogue.config, "P07", "email",
                                as_of=at)[0].reason

    stored = stored_verdicts(store, catalogue.offers, "P07", "email", now.replace(
        tzinfo=UTC).timestamp())
    assert stored is not None and stored[0].reason == chain(now) == "offer_rejected_via_phone"
    later = datetime(2026, 3, 4, 16)
    assert chain(later) is None  # the cool-down is over ...
    assert stored_verdicts(store, catalogue.offers, "P07", "email",  # ... and the store knows
                           later.replace(tzinfo=UTC).timestamp()) is None
    with pytest.raises(UnknownProfile):
        stored_verdicts(store, catalogue.offers, "nobody", "email", 0.0)
