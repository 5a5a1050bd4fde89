"""``cdp privacy forget``: take a person out of every file of the data directory (Art. 17, 19).

One request runs as a sequence of idempotent steps, journaled in a plan file
(``privacy/pending/<request id>.json``, mode 0600, the only place their values are written
while the request runs; removed when it completes). A rerun of the same request after a kill
resumes with the steps not yet done; the plan is written before anything is changed, because
once raw no longer holds the person, nothing else could find their records again.

1. ``register``: their hashed identifiers into ``raw._erased_identifiers`` (suppressed for good;
   a replayed delivery holding them is quarantined with reason ``erased``) and the request into
   ``raw._erasure_requests``;
2. ``raw``: every version of their records, quarantined lines naming them, set-aside
   re-deliveries;
3. ``landing``: their rows out of the landing files, the ledger following the new bytes;
4. ``rebuild``: the pipeline's own stages (identity, dbt build, gate, publish) on what is left,
   so identity splits where their records were the bridge and the id history records it; a
   gate that refuses the rebuild leaves the publication to be scrubbed in place;
5. ``archives``: archived publications that hold them are dropped (a rollback must not bring
   them back), and with them their serving stores (a scrubbed publication's store is written
   again);
6. ``exports``: their export rows keep only the profile id (the next export lists them as
   left), hashed audience rows go;
7. ``files``: every value of theirs in reports, logs, data docs, dbt artefacts and task logs
   becomes ``[erased]``;
8. ``finish``: the request log (hashes, times, counts: never values) and the report under
   ``reports/privacy/``; then the build file is rewritten (``compact``) and the plan removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from core.paths import DataPaths
from ingest.ledger import ERASED_IDENTIFIERS, ERASURE_REQUESTS, RAW, ensure_raw_schema
from ingest.loader import connect
from ingest.registry import Registry
from ingest.sql import qualified
from privacy.files import export_runs_with, scrub_exports, scrub_text
from privacy.identifiers import Identifier, InvalidRequest
from privacy.landing import rewrite_landing
from privacy.locate import Person, UnknownPerson, locate
from privacy.warehouse import compact, delete_raw, holds_person, scrub_database
from profiles.publishing.publish import archive_dir, prune_serving_stores, scrub_in_place

log = logging.getLogger(__name__)

STEPS = ("register", "raw", "landing", "rebuild", "archives", "exports", "files", "finish")
#: Identifier kinds whose hashes stay (suppression: e-mail and phone; replay guard: all).
KEPT_KINDS = ("email", "phone", "customer_number", "national_id", "loyalty_card")


@dataclass
class ForgetReport:
    """What one erasure did: hashes, counts and names of places, never a value."""

    request_id: str
    identifier_hashes: list[str]
    status: str = "in_progress"
    records: dict[str, int] = field(default_factory=dict)
    profiles: int = 0
    removed: dict[str, Any] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)
    export_runs: list[str] = field(default_factory=list)
    split: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    requested_at: str = ""
    completed_at: str | None = None
    seconds: float = 0.0


def request_id(identifiers: list[Identifier]) -> str:
    """The same identifiers are the same request (a rerun resumes it)."""
    text = "\n".join(sorted(i.hash for i in identifiers))
    return "erasure-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_path(paths: DataPaths, rid: str) -> Path:
    return paths.home / "privacy" / "pending" / f"{rid}.json"


@dataclass(frozen=True)
class Erasure:
    """Where an erasure runs and what it may call, resolved at the edge (``cdp``): the data
    directory, the source registry, the one writer lock of the build file, and ``rebuild``,
    which runs the pipeline's identity, build, gate and publish stages under the run id it is
    given and says whether the gate let the rebuild publish."""

    paths: DataPaths
    registry: Registry
    writer_lock: Callable[[], AbstractContextManager[None]]
    rebuild: Callable[[str], bool]


def forget(job: Erasure, identifiers: list[Identifier],
           on_step: Callable[[str], None] | None = None) -> ForgetReport:
    """Forget the person ``identifiers`` name; raises :class:`UnknownPerson` (nothing
    changed) when no record carries any of them."""
    if not identifiers:
        raise InvalidRequest("name at least one identifier")
    started = time.perf_counter()
    paths = job.paths
    rid = request_id(identifiers)
    plan_file = plan_path(paths, rid)
    plan = _load_plan(plan_file) if plan_file.exists() else _new_plan(job, identifiers, rid)
    if not plan_file.exists():
        _save_plan(plan_file, plan)
    else:
        plan["report"]["resumed"] = True
    person = Person.from_json(plan["person"])
    for step in STEPS:
        if step in plan["done"]:
            continue
        if on_step is not None:
            on_step(step)
        plan["done"][step] = _STEPS[step](job, person, plan)
        _save_plan(plan_file, plan)
    with job.writer_lock():
        compact(paths.build_db)
    report = ForgetReport(**{**plan["report"], "status": "completed",
                             "removed": plan["done"]})
    report.seconds = round(time.perf_counter() - started, 2)
    plan_file.unlink()
    return report


def _new_plan(job: Erasure, identifiers: list[Identifier], rid: str) -> dict[str, Any]:
    paths = job.paths
    if not paths.build_db.exists():
        raise UnknownPerson("no warehouse yet: nothing is held about anyone")
    with job.writer_lock():
        con = duckdb.connect(str(paths.build_db), read_only=True)
        try:
            person = locate(con, job.registry, identifiers)
            segments = _segments_with(con, person.profile_ids)
        finally:
            con.close()
    if not person.records:
        raise UnknownPerson(f"no record carries any of the {len(identifiers)} identifier(s) "
                            "given: nothing was changed")
    runs = export_runs_with(paths.exports, person.profile_ids)
    report = ForgetReport(
        request_id=rid, identifier_hashes=sorted({i.hash for i in identifiers}),
        records={s: len(ids) for s, ids in sorted(person.records.items())},
        profiles=len(person.profile_ids),
        segments=sorted({*segments, *(segment for segment, _ in runs)}),
        export_runs=[f"{segment}/{run}" for segment, run in runs],
        requested_at=datetime.now(UTC).isoformat())
    log.info("erasure %s: %d records in %d profiles", rid, person.record_count,
             len(person.profile_ids))
    return {"request_id": rid, "person": person.to_json(), "done": {},
            "report": report.__dict__}


def _load_plan(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _save_plan(path: Path, plan: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(plan, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _segments_with(con: duckdb.DuckDBPyConnection, profile_ids: set[str]) -> list[str]:
    """Segment tables of the build that hold one of the profiles."""
    names = [str(r[0]) for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'segments' "
        "ORDER BY 1").fetchall()]
    found = []
    for name in names:
        hit = con.execute(f'SELECT count(*) FROM segments."{name}" '
                          "WHERE profile_id IN (SELECT unnest($ids))",
                          {"ids": sorted(profile_ids)}).fetchone()
        if hit and hit[0]:
            found.append(name.removeprefix("seg_"))
    return found


@contextmanager
def _writing(job: Erasure) -> Iterator[duckdb.DuckDBPyConnection]:
    """The build file, read-write, under its one writer lock."""
    with job.writer_lock():
        con = connect(job.paths.build_db)
        try:
            yield con
        finally:
            con.close()


def _register(job: Erasure, person: Person, plan: dict[str, Any]) -> dict[str, Any]:
    kept = sorted({(i.hash, i.kind) for i in person.identifiers if i.kind in KEPT_KINDS})
    with _writing(job) as con:
        ensure_raw_schema(con)
        con.executemany(
            f"INSERT OR IGNORE INTO {qualified(RAW, ERASED_IDENTIFIERS)} "
            "VALUES (?, ?, ?, now()::TIMESTAMP)",
            [[h, kind, plan["request_id"]] for h, kind in kept])
        con.execute(
            f"INSERT OR IGNORE INTO {qualified(RAW, ERASURE_REQUESTS)} "
            "(request_id, identifier_hashes, requested_at, status) "
            "VALUES (?, ?, ?::TIMESTAMP, 'in_progress')",
            [plan["request_id"], plan["report"]["identifier_hashes"],
             plan["report"]["requested_at"][:26]])
    return {"identifier_hashes_kept": len(kept)}


def _raw(job: Erasure, person: Person, plan: dict[str, Any]) -> dict[str, Any]:
    with _writing(job) as con:
        return delete_raw(con, job.registry, person.records, person.needles)


def _landing(job: Erasure, person: Person, plan: dict[str, Any]) -> dict[str, Any]:
    with _writing(job) as con:
        files = rewrite_landing(con, job.registry, job.paths.landing, person.records,
                                person.needles)
    return {"files_rewritten": sum(f.new_sha256 is not None for f in files),
            "files_deleted": sum(f.new_sha256 is None for f in files),
            "rows_removed": sum(f.rows_removed for f in files)}


def _rebuild(job: Erasure, person: Person, plan: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's stages on what is left, under a run id naming the request; a gate that
    refuses the rebuild leaves the current publication, which is then scrubbed in place."""
    run_id = f"{plan['request_id']}__rebuild"
    if not job.rebuild(run_id):
        scrubbed = scrub_in_place(job.paths.published_db,
                                  lambda published: scrub_database(published, person))
        log.warning("erasure %s: the rebuild did not pass the gate; the publication was "
                    "scrubbed in place instead", plan["request_id"])
        return {"republished": False, "published_rows_removed": scrubbed}
    plan["report"]["split"] = _split(job, person)
    return {"republished": True, "run_id": run_id}


def _split(job: Erasure, person: Person) -> dict[str, int]:
    """How the person's former profiles came out: the profiles their other records are in."""
    con = duckdb.connect(str(job.paths.published_db), read_only=True)
    try:
        row = con.execute(
            "SELECT count(DISTINCT new_id) FROM main.fct_profile_id_history "
            "WHERE change = 'split' AND old_id IN (SELECT unnest($ids))",
            {"ids": sorted(person.profile_ids)}).fetchone()
        kept = con.execute(
            "SELECT count(*) FROM main.dim_profiles WHERE profile_id IN (SELECT unnest($ids))",
            {"ids": sorted(person.profile_ids)}).fetchone()
    finally:
        con.close()
    return {"former_profiles": len(person.profile_ids),
            "former_ids_still_in_use": int(kept[0]) if kept else 0,
            "new_ids_split_off": int(row[0]) if row else 0}


def _archives(job: Erasure, person: Person, plan: dict[str, Any]) -> dict[str, Any]:
    dropped = 0
    for archived in sorted(archive_dir(job.paths.published_db).glob("published-*.duckdb")):
        if holds_person(archived, person.records, person.needles):
            archived.unlink()
            dropped += 1
    prune_serving_stores(job.paths.published_db)  # a dropped publication's store holds them too
    return {"archived_publications_dropped": dropped}


def _exports(job: Erasure, person: Person, plan: dict[str, Any]) -> dict[str, Any]:
    folders = scrub_exports(job.paths.exports, person.profile_ids, person.needles,
                            _audience_hashes(person), plan["request_id"])
    return {"export_folders_rewritten": folders}


def _audience_hashes(person: Person) -> set[str]:
    """The person's rows in hashed ad audiences: each platform's hash of their e-mails (as
    given: trimmed, lower-cased) and phones (E.164 with and without +)."""
    from profiles.activation.hashing import sha256_hex

    found = set()
    for value in person.needles | {i.value for i in person.identifiers}:
        text = value.strip().lower()
        if "@" in text:
            found.add(sha256_hex(text))
    for identifier in person.identifiers:
        if identifier.kind == "phone":
            found |= {sha256_hex(identifier.value), sha256_hex(identifier.value.lstrip("+"))}
    return found


def _files(job: Erasure, person: Person, plan: dict[str, Any]) -> dict[str, Any]:
    paths = job.paths
    roots = [p for p in paths.home.iterdir()
             if p.name not in {"landing", "warehouse", "exports", "privacy"}]
    roots += [paths.exports]  # manifests, never values; checked anyway
    return {"text_files_scrubbed": scrub_text(roots, person.needles | person.names)}


def _finish(job: Erasure, person: Person, plan: dict[str, Any]) -> dict[str, Any]:
    """The request log row and the report: hashes, times and counts."""
    completed = datetime.now(UTC)
    plan["report"]["completed_at"] = completed.isoformat()
    removed = dict(plan["done"])
    with _writing(job) as con:
        con.execute(
            f"UPDATE {qualified(RAW, ERASURE_REQUESTS)} SET status = 'completed', "
            "completed_at = ?::TIMESTAMP, removed = ? WHERE request_id = ?",
            [completed.isoformat()[:26], json.dumps(removed), plan["request_id"]])
    folder = job.paths.reports / "privacy"
    folder.mkdir(parents=True, exist_ok=True)
    report = {**plan["report"], "status": "completed", "removed": removed}
    (folder / f"{plan['request_id']}.json").write_text(json.dumps(report, indent=2))
    return {"report": str(folder / f"{plan['request_id']}.json")}


_STEPS: dict[str, Callable[[Erasure, Person, dict[str, Any]], dict[str, Any]]] = {
    "register": _register, "raw": _raw, "landing": _landing, "rebuild": _rebuild,
    "archives": _archives, "exports": _exports, "files": _files, "finish": _finish,
}
