"""Segment exports and dry runs, read from the published warehouse only.

``exports/<segment>/<run_id>/`` holds, for one run of one segment after the suppression chain:

* ``members.csv`` - Mautic contact-import columns (``email``, ``firstname``, ``lastname``,
  ``phone``, ``address1``, ``zipcode``, ``city``, ``country``) plus ``profile_id``; email and
  phone are the deliverable values (the email as the customer gave it), not matching keys;
* ``members.parquet`` - the same rows, typed;
* ``google_customer_match.csv`` / ``meta_custom_audience.csv`` - hashed identifiers only
  (rules in ``profiles.activation.hashing``), of the members with ``online_ads`` consent, and
  only for a segment that declares ``ad_audiences`` (``profiles.activation.purposes``);
* ``joined.csv`` / ``left.csv`` - the delta against the segment's previous export, so a tool
  can remove someone who unsubscribed (a profile an erasure blanked in that export leaves,
  and joins again if its id is still a member); ``suppressed.csv`` - profile ids dropped and why;
* ``manifest.json`` - per file the consent purpose, rows written, rows dropped by reason and
  SHA-256, plus run id, publication run and the segment definition hash.

Every file is written by DuckDB ``COPY`` into a hidden temporary folder that is renamed into
place, so a tool polling the folder never sees a half-written export.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import duckdb

from core.vocabulary import safe_run_id
from profiles.activation.config import ActivationConfig
from profiles.activation.discovery import available_segments, find_segment
from profiles.activation.hashing import EMAIL_SQL, GOOGLE_PHONE_SQL, META_PHONE_SQL
from profiles.activation.purposes import (
    AD_FILES,
    AD_PURPOSE,
    NO_CONTACT_VALUES,
    build_ad_audience,
    contact_values,
    deliverable_sql,
    dropped_by_reason,
)
from profiles.activation.segment import Segment
from profiles.activation.suppression import STEPS, Suppressed, suppress
from profiles.publishing.published import PUBLISHED, open_published, publication_run_id

if TYPE_CHECKING:
    from quality.thresholds import Thresholds


class ExportError(RuntimeError):
    """An export could not be written; nothing was placed under exports/."""


@dataclass(frozen=True)
class ExportedFile:
    name: str
    rows: int
    sha256: str
    purpose: str | None = None
    """The consent its rows need (a channel); ``None`` for the audit file ``suppressed.csv``."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Rows its purpose removed, per reason (``profiles.activation.purposes``)."""


@dataclass(frozen=True)
class ExportManifest:
    segment: str
    run_id: str
    definition_hash: str
    publication_run_id: str | None
    exported_at: str
    rows: int
    """Members after suppression; ``file`` / ``sha256`` describe the members CSV."""
    file: str
    sha256: str
    candidates: int
    steps: list[dict[str, Any]]
    previous_run_id: str | None
    files: list[ExportedFile] = field(default_factory=list)
    quality_warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Per phase (select_and_suppress, files, quality_gate): where an export spends its time."""
    erasures: list[dict[str, Any]] = field(default_factory=list)
    """Erasures that rewrote this export afterwards (``cdp privacy forget``): request id, when,
    and the profile ids whose rows keep nothing but the id; the next export lists those rows in
    ``left.csv`` (and in ``joined.csv`` if the id is still a member, now someone else's
    values), so a marketing tool deletes the erased contact (GDPR Art. 19)."""


@dataclass(frozen=True)
class Export:
    directory: Path
    manifest: ExportManifest

    @property
    def members_file(self) -> Path:
        return self.directory / self.manifest.file


ROWS = "memory.main.export_rows"
"""The export's member rows (Mautic columns), materialised once for every output file."""
ADS, AD_DROPS = "memory.main.export_ad_rows", "memory.main.export_ad_drops"
"""The ad audiences' rows (members with online_ads consent) and the members they dropped."""


@cache
def country_names_sql() -> str:
    """``(VALUES (code, name), ...)``: ISO 3166-1 alpha-2 code -> English short name. The
    warehouse keeps codes; Mautic's country field takes names ("Germany", "United Kingdom")."""
    import pycountry

    rows = ", ".join("('{}', '{}')".format(country.alpha_2, country.name.replace("'", "''"))
                     for country in pycountry.countries)
    return f"(VALUES {rows})"


def member_rows_sql(members: str, values: str | None, published: str = PUBLISHED) -> str:
    """Mautic contact-import columns for the members table: the deliverable value of the
    channel's consented contact point as email or phone (from ``values``, see
    ``purposes.contact_values``), the postal address only when the contact point is postal,
    the country by name (:func:`country_names_sql`)."""
    value = deliverable_sql("m.contact_point", "m.profile_id", values)
    return f"""
        SELECT m.profile_id,
               CASE WHEN contains(m.contact_point, '@') THEN {value} END AS email,
               p.first_name AS firstname, p.last_name AS lastname,
               CASE WHEN starts_with(m.contact_point, '+') THEN {value} END AS phone,
               CASE WHEN m.contact_point = 'postal'
                    THEN concat_ws(' ', p.street, p.house_number) END AS address1,
               CASE WHEN m.contact_point = 'postal' THEN p.postcode END AS zipcode,
               p.city, coalesce(c.name, p.country) AS country
        FROM {members} AS m JOIN {published}.main.dim_profiles AS p USING (profile_id)
        LEFT JOIN {country_names_sql()} AS c(code, name) ON c.code = p.country"""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sql_path(path: Path) -> str:
    """Export files are our own paths, never user input; quote them as SQL strings."""
    return "'" + str(path).replace("'", "''") + "'"


def _open(published_db: Path) -> duckdb.DuckDBPyConnection:
    """The publication, read-only; an ExportError (not a traceback) while there is none."""
    if not published_db.exists():
        raise ExportError(f"no published warehouse at {published_db}: run the pipeline first")
    return open_published(published_db)


@contextmanager
def selected(
    published_db: Path, name: str, config: ActivationConfig, as_of: datetime | None = None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Segment, Suppressed]]:
    """A read-only session with the segment selected and suppressed into memory tables."""
    con = _open(published_db)
    try:
        segment = find_segment(config, con, name)
        yield con, segment, suppress(con, segment, config.policy, as_of, events=config.events)
    finally:
        con.close()


def previous_export(exports_dir: Path, segment: str, run_id: str) -> Export | None:
    """The segment's most recent export other than ``run_id`` (by export time)."""
    found: list[Export] = []
    for folder in (exports_dir / segment).glob("*/manifest.json"):
        if folder.parent.name.startswith(".") or folder.parent.name == safe_run_id(run_id):
            continue
        raw = json.loads(folder.read_text())
        if "definition_hash" not in raw:
            continue  # an export from before manifests described deltas
        raw["files"] = [ExportedFile(**f) for f in raw.get("files", [])]
        found.append(Export(folder.parent, ExportManifest(**raw)))
    return max(found, key=lambda e: e.manifest.exported_at, default=None)


@overload
def export_segment(
    published_db: Path, exports_dir: Path, segment: str, run_id: str, config: ActivationConfig,
    as_of: datetime | None = ..., reports_dir: Path | None = ..., *,
    thresholds: Thresholds | None = ..., skip_never_populated: Literal[False] = ...,
) -> Export: ...


@overload
def export_segment(
    published_db: Path, exports_dir: Path, segment: str, run_id: str, config: ActivationConfig,
    as_of: datetime | None = ..., reports_dir: Path | None = ..., *,
    thresholds: Thresholds | None = ..., skip_never_populated: bool,
) -> Export | None: ...


def export_segment(
    published_db: Path,
    exports_dir: Path,
    segment: str,
    run_id: str,
    config: ActivationConfig,
    as_of: datetime | None = None,
    reports_dir: Path | None = None,
    *,
    thresholds: Thresholds | None = None,
    skip_never_populated: bool = False,
) -> Export | None:
    """Select, suppress, write and validate one segment; replaces an export of the same run.

    The export quality gate (``quality.exports``) checks the members against the published
    warehouse before the folder is renamed into place (with ``thresholds``, default: the
    built-in ones); a failure leaves nothing behind. Its results go to ``reports_dir``
    (default: ``reports/`` next to ``exports_dir``).  With ``skip_never_populated`` a segment
    without candidates that was never exported before writes nothing and returns None (an
    example segment over sources this installation does not feed); once exported, an empty
    segment is still written, so the tools see who left.
    """
    from quality.exports import validate_export

    safe_run = safe_run_id(run_id)
    final_dir = exports_dir / segment / safe_run
    tmp_dir = exports_dir / segment / f".{safe_run}.tmp"
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return round(clock[-1] - clock[-2], 3)

    with selected(published_db, segment, config, as_of) as (con, definition, result):
        seconds = {"select_and_suppress": lap()}  # the name is a known segment from here on
        previous = previous_export(exports_dir, segment, run_id)
        if skip_never_populated and previous is None and result.candidates == 0:
            return None
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_dir.mkdir(parents=True)
        try:
            files = _write_files(con, definition, result, tmp_dir, previous)
            seconds["files"] = lap()
            # the clear-text identifiers hashed into each ad file, for the gate's own check
            audiences = (dict.fromkeys(AD_FILES, con.execute(
                f"SELECT profile_id, email, phone FROM {ADS}").df())
                if definition.ad_audiences else None)
            gate = validate_export(
                published_db, con.execute(f"SELECT profile_id, email, phone FROM {ROWS}").df(),
                definition.channel, previous.manifest.rows if previous else None,
                reports_dir or exports_dir.parent / "reports", thresholds, segment=segment,
                run_id=run_id, audiences=audiences)
            seconds["quality_gate"] = lap()
            manifest = ExportManifest(
                segment=segment, run_id=run_id, definition_hash=definition.definition_hash,
                publication_run_id=publication_run_id(con),
                exported_at=datetime.now(UTC).isoformat(timespec="microseconds"),
                rows=result.remaining, file="members.csv",
                sha256=next(f.sha256 for f in files if f.name == "members.csv"),
                candidates=result.candidates, steps=[asdict(s) for s in result.steps],
                previous_run_id=previous.manifest.run_id if previous else None, files=files,
                quality_warnings=[w.describe() for w in gate.warnings],
                notes=[] if contact_values(con) else [NO_CONTACT_VALUES], seconds=seconds,
            )
            (tmp_dir / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
    shutil.rmtree(final_dir, ignore_errors=True)
    os.replace(tmp_dir, final_dir)
    return Export(final_dir, manifest)


def _write_files(
    con: duckdb.DuckDBPyConnection, segment: Segment, result: Suppressed, folder: Path,
    previous: Export | None,
) -> list[ExportedFile]:
    con.execute(f"CREATE OR REPLACE TABLE {ROWS} AS "
                f"{member_rows_sql(result.members, contact_values(con))} ORDER BY profile_id")
    prior = (f"read_parquet({sql_path(previous.directory / 'members.parquet')})"
             if previous else f"(SELECT * FROM {ROWS} LIMIT 0)")
    erased = sorted({str(profile_id) for erasure in (previous.manifest.erasures if previous
                                                     else []) for profile_id in
                     erasure.get("profile_ids", [])})
    erased_ids = "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in erased) + "]::VARCHAR[]"
    step_order = ", ".join(f"'{s}'" for s in STEPS)
    chain = dropped_by_reason(con, result.drops)
    # name: (query, COPY options, purpose, dropped by reason)
    outputs: dict[str, tuple[str, str, str | None, dict[str, int]]] = {
        "members.csv": (f"SELECT * FROM {ROWS}", "HEADER", segment.channel, chain),
        "members.parquet": (f"SELECT * FROM {ROWS}", "FORMAT parquet, COMPRESSION zstd",
                            segment.channel, chain),
        "joined.csv": (f"SELECT * FROM {ROWS} WHERE profile_id NOT IN (SELECT profile_id "
                       f"FROM {prior}) OR list_contains({erased_ids}, profile_id) "
                       "ORDER BY profile_id", "HEADER", segment.channel, {}),
        "left.csv": (f"SELECT * FROM {prior} AS p WHERE p.profile_id NOT IN (SELECT profile_id "
                     f"FROM {ROWS}) OR list_contains({erased_ids}, p.profile_id) "
                     "ORDER BY profile_id", "HEADER", segment.channel, {}),
        "suppressed.csv": (f"SELECT * FROM {result.drops} ORDER BY "
                           f"list_position([{step_order}], step), profile_id", "HEADER", None, {}),
    }
    if segment.ad_audiences:
        outputs |= _ad_outputs(con, result.members)
    written: list[ExportedFile] = []
    for name, (query, options, purpose, dropped) in outputs.items():
        path = folder / name
        count = con.execute(f"COPY ({query}) TO {sql_path(path)} ({options})").fetchone()
        written.append(ExportedFile(name, int(count[0]) if count else 0, _sha256(path),
                                    purpose, dropped))
    return written


def _ad_outputs(con: duckdb.DuckDBPyConnection,
                members: str) -> dict[str, tuple[str, str, str | None, dict[str, int]]]:
    """The hashed audiences of the members with online_ads consent: each platform's rules on
    the deliverable email; phones are E.164 (deliverable value and key alike)."""
    build_ad_audience(con, members, ADS, AD_DROPS)
    hashes = "memory.main.export_hashes"  # the email digest is shared by both platforms
    con.execute(f"CREATE OR REPLACE TABLE {hashes} AS SELECT "
                f"{EMAIL_SQL.format('email')} AS email_sha256, "
                f"{GOOGLE_PHONE_SQL.format('phone_key')} AS google_phone_sha256, "
                f"{META_PHONE_SQL.format('phone_key')} AS meta_phone_sha256 FROM {ADS} "
                "ORDER BY profile_id")
    dropped = dropped_by_reason(con, AD_DROPS)
    google, meta = AD_FILES
    return {
        google: (f'SELECT email_sha256 AS "Email", google_phone_sha256 AS "Phone" FROM {hashes}',
                 "HEADER", AD_PURPOSE, dropped),
        meta: (f"SELECT email_sha256 AS email, meta_phone_sha256 AS phone FROM {hashes}",
               "HEADER", AD_PURPOSE, dropped),
    }


def export_all(
    published_db: Path, exports_dir: Path, run_id: str, config: ActivationConfig, *,
    thresholds: Thresholds | None = None, as_of: datetime | None = None,
) -> tuple[list[Export], list[str]]:
    """Export every configured segment and every published dbt segment (the pipeline stage),
    the suppression chain's windows ending at ``as_of`` (default: now).  Returns the exports
    and the segments skipped because they never had a candidate (see
    :func:`export_segment`)."""
    con = _open(published_db)
    try:
        names = sorted(available_segments(config, con))
    finally:
        con.close()
    exports: list[Export] = []
    skipped: list[str] = []
    for name in names:
        done = export_segment(published_db, exports_dir, name, run_id, config, as_of,
                              thresholds=thresholds, skip_never_populated=True)
        if done is None:
            skipped.append(name)
        else:
            exports.append(done)
    return exports, skipped


@dataclass(frozen=True)
class Preview:
    """A dry run: counts per step, sample profile ids per reason, change since the last export."""

    segment: str
    channel: str
    definition_hash: str
    candidates: int
    steps: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    previous_run_id: str | None
    previous_rows: int | None

    @property
    def members(self) -> int:
        return self.steps[-1]["remaining"] if self.steps else self.candidates

    @property
    def change(self) -> int | None:
        return None if self.previous_rows is None else self.members - self.previous_rows


def preview_segment(
    published_db: Path,
    exports_dir: Path,
    segment: str,
    config: ActivationConfig,
    sample: int = 5,
    as_of: datetime | None = None,
) -> Preview:
    """Run selection and suppression without writing anything; samples are profile ids only."""
    with selected(published_db, segment, config, as_of) as (con, definition, result):
        previous = previous_export(exports_dir, segment, run_id="")
        reasons = con.execute(
            f"SELECT step, reason, count(*) AS profiles, "
            f"list(profile_id ORDER BY profile_id)[1:?] AS sample "
            f"FROM {result.drops} GROUP BY step, reason "
            f"ORDER BY list_position(?, step), reason", [sample, list(STEPS)]
        ).fetchall()
    return Preview(
        segment=segment, channel=definition.channel,
        definition_hash=definition.definition_hash, candidates=result.candidates,
        steps=[asdict(s) for s in result.steps],
        reasons=[{"step": s, "reason": r, "profiles": n, "sample": list(ids)}
                 for s, r, n, ids in reasons],
        previous_run_id=previous.manifest.run_id if previous else None,
        previous_rows=previous.manifest.rows if previous else None,
    )
