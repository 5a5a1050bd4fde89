"""The serving store beside each publication: built by publish, same answers as the warehouse,
gone with the publication it belongs to."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from test_api import _big_scenario
from test_publish import _make_build
from test_segments import write_published

from profiles.api import queries
from profiles.api.routes import _json_default
from profiles.publishing.publish import publish, rollback
from profiles.publishing.published import open_published
from profiles.serving.store import ServingStore, store_folder, store_path


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
        live = json.loads(json.dumps(queries.profile(con.cursor(), profile_id),
                                     default=_json_default))
        document = store.document(profile_id)
        assert document is not None and json.loads(document) == live, profile_id
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
