"""What is held about a person (GDPR Art. 15): one JSON document and one HTML page.

:func:`build_access_report` reads the build file (``warehouse/build.duckdb``: raw, intermediate
and the marts, so everything the published file holds plus every raw version) and the exports
folder, and gathers for the person :func:`privacy.locate.locate` found:

``records``
    every source record of the person: source, record id, record time, profile, every column
    of its current raw version except ingest's metadata (columns starting with ``_``), and
    ``versions``: every version raw keeps (load time, file, record time, and the columns in
    which it differs from the current one); quarantined lines carrying the record's key, and
    what a model derived from the record alone (a support ticket's class).
``profiles``
    per profile id of the person: the golden record with the source and time of each value
    (``dim_profiles``), identifiers (``fct_profile_identifiers``), contact values, addresses,
    consent per channel and contact point (``dim_profile_consent``) and its history (the
    ``int_consent__events`` rows of the person's records), preferences, traits with their
    definitions (the column descriptions of ``dbt_project/models/marts/_marts.yml``), offers
    delivered and responses (``fct_offer_responses``), the identity links between the
    person's records and the profile id history.
``segments_and_exports``
    the ``segments.*`` tables holding one of the person's profile ids, and every export run
    (``exports/<segment>/<run id>/``) whose ``members.parquet`` or another of its files names
    one of them: segment, run id, ``exported_at`` from the manifest, files naming the person,
    and why an export left them out.
``suppression``
    the suppression-list entries of the person's e-mails and phones (hashes only).
``request``
    the request's identifiers, as SHA-256 hashes only; ``generated_at``.

Nothing of anyone else. A profile may hold records of another person (the resolver
over-merged; ``locate`` decided which records are this person's), so within a profile:

* only the person's records, identifiers, contact points, addresses and consent statements
  are listed; counts and first/last times are taken over the person's records;
* a golden value is *the person's* when one of the person's records of that profile carries
  it from the value's source at the value's time (``<attr>_source``/``<attr>_at`` name a
  source and a time, not a record, so the record is found through
  ``int_profile__attribute_records``: same source, same record time, same value -- the
  address by its normalised key). Any other golden value is replaced by :data:`WITHHELD`,
  keeping only the name of its source; so are a contact value, a preference save or the
  statement deciding a consent row that came from a record not the person's (the consent
  status itself stays: it is how the person's contact point is treated);
* traits are computed over the whole profile, so in a profile holding another person's
  records every trait value is :data:`WITHHELD` (the definitions stay); segment rows of
  such a profile list their columns only.

A profile holding only the person's records is shown as it is. Nothing here logs, and no
error message carries a personal value.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from core.config import read_yaml
from core.paths import DataPaths
from core.vocabulary import quote_identifier as q
from ingest.ledger import current_version_order, table_columns
from ingest.registry import Registry
from privacy.identifiers import Identifier, identifier_hash
from privacy.locate import Person, UnknownPerson

#: What stands in for a value that came from a record which is not the person's.
WITHHELD = "(held for another record of this profile)"
#: Column documentation of the marts (trait definitions).
#: Golden-record attributes: their columns and the column that identifies the value (mirrors
#: ``golden_attributes()`` in dbt_project/macros/survivorship.sql).
GOLDEN_ATTRIBUTES: dict[str, tuple[tuple[str, ...], str]] = {
    "first_name": (("first_name",), "first_name"),
    "last_name": (("last_name",), "last_name"),
    "birth_date": (("birth_date",), "birth_date"),
    "email": (("email",), "email"),
    "phone": (("phone",), "phone"),
    "address": (("street", "house_number", "postcode", "city", "country", "address_key"),
                "address_key"),
    "customer_number": (("customer_number",), "customer_number"),
}
#: Identity-graph columns that hold the person's identifiers.
IDENTIFIER_COLUMNS = ("email", "phone", "customer_number", "user_id", "anonymous_id",
                      "loyalty_card", "national_id_sha256")
_KEYS = "_access_records"  # temp table: the person's (source, record_id)

Row = dict[str, Any]


# --------------------------------------------------------------------------------------------
# building


def build_access_report(paths: DataPaths, registry: Registry, person: Person, *,
                        marts_yml: Path,
                        requested: Sequence[Identifier] | None = None,
                        generated_at: datetime | None = None) -> dict[str, Any]:
    """Everything held about ``person`` (see the module docstring), JSON-ready.

    ``marts_yml``: the dbt marts' documentation (``dbt_project/models/marts/_marts.yml``),
    where each trait's definition is read from. ``requested``: the identifiers the request
    named (hashed into ``request``); without it the identifiers ``locate`` knows for the
    person are reported, hashed. Raises :class:`UnknownPerson` when the person has no
    records, ``FileNotFoundError`` without a build file.
    """
    if not person.records:
        raise UnknownPerson("no record in the build file carries any of the requested "
                            "identifiers: nothing is held about this person")
    if not paths.build_db.is_file():
        raise FileNotFoundError(f"{paths.build_db}: no build file (run the pipeline first)")
    con = duckdb.connect(str(paths.build_db), read_only=True)
    try:
        return _Builder(con, paths, registry, person, marts_yml).build(requested, generated_at)
    finally:
        con.close()


class _Builder:
    def __init__(self, con: duckdb.DuckDBPyConnection, paths: DataPaths, registry: Registry,
                 person: Person, marts_yml: Path) -> None:
        self.con, self.paths, self.registry, self.person = con, paths, registry, person
        self.marts_yml = marts_yml
        self.keys = sorted((s, r) for s, ids in person.records.items() for r in ids)
        self.own = set(self.keys)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_KEYS} (source VARCHAR, record_id VARCHAR)")
        con.executemany(f"INSERT INTO {_KEYS} VALUES (?, ?)", self.keys)
        self.graph = self.rows(
            f"""SELECT g.* FROM main.fct_identity_graph g JOIN {_KEYS} USING (source, record_id)
                ORDER BY g.source, g.record_id""")
        self.graph_by_key = {(r["source"], r["record_id"]): r for r in self.graph}
        self.profile_ids = sorted(set(person.profile_ids)
                                  | {str(r["profile_id"]) for r in self.graph})

    def build(self, requested: Sequence[Identifier] | None,
              generated_at: datetime | None) -> dict[str, Any]:
        moment = generated_at or datetime.now(UTC)
        identifiers = sorted(requested) if requested is not None else sorted(
            self.person.identifiers)
        profiles = [self.profile(pid) for pid in self.profile_ids]
        records = self.records()
        segments = self.segments({p["profile_id"]: p["holds_other_records"] for p in profiles})
        exports = self.exports()
        report: dict[str, Any] = {
            "generated_at": moment.astimezone(UTC).isoformat(timespec="seconds"),
            "request": {
                "identifiers": [{"kind": i.kind, "sha256": i.hash} for i in identifiers],
                "note": "identifiers as SHA-256 hex of their normalised value (e-mail and "
                        "phone bare, other kinds as kind:value)",
            },
            "summary": {
                "records": len(records),
                "sources": sorted(self.person.records),
                "profiles": self.profile_ids,
                "segments": sorted({s["segment"] for s in segments}),
                "export_runs": len(exports),
            },
            "about": ABOUT,
            "records": records,
            "profiles": profiles,
            "segments_and_exports": {"segments": segments, "exports": exports},
            "suppression": self.suppression(),
        }
        return _plain(report)

    # -- helpers ----------------------------------------------------------------------------

    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> list[Row]:
        result = self.con.execute(sql, dict(params or {}))
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def has_table(self, schema: str, table: str) -> bool:
        return bool(table_columns(self.con, schema, table))

    def own_key(self, source: object, record_id: object) -> bool:
        return (str(source), str(record_id)) in self.own

    # -- records ----------------------------------------------------------------------------

    def records(self) -> list[Row]:
        found: list[Row] = []
        for source in sorted(self.person.records):
            found += self.source_records(source, sorted(self.person.records[source]))
        return found

    def source_records(self, source: str, ids: list[str]) -> list[Row]:
        spec = self.registry.sources.get(source)
        versions: dict[str, list[Row]] = {}
        quarantined: dict[str, list[Row]] = {}
        note = None
        if spec is None or not self.has_table("raw", spec.table):
            note = "the source is no longer registered: its raw rows were not read"
        else:
            key = f"CAST({q(spec.record_key)} AS VARCHAR)"
            for row in self.rows(
                    f"""SELECT {key} AS "__access_key", * FROM raw.{q(spec.table)}
                        WHERE {key} IN (SELECT unnest($ids))
                        ORDER BY 1, {current_version_order(spec.timestamp)}""", {"ids": ids}):
                versions.setdefault(str(row.pop("__access_key")), []).append(row)
            if self.has_table("raw", spec.rejected_table) and spec.record_key in table_columns(
                    self.con, "raw", spec.rejected_table):
                for row in self.rows(
                        f"""SELECT {key} AS "__access_key", _reason, _source_file,
                                   _line_number, _loaded_at, _raw_line
                            FROM raw.{q(spec.rejected_table)}
                            WHERE {key} IN (SELECT unnest($ids))
                            ORDER BY 1, _loaded_at, _line_number""", {"ids": ids}):
                    quarantined.setdefault(str(row.pop("__access_key")), []).append(
                        {"reason": row["_reason"], "file": row["_source_file"],
                         "line": row["_line_number"], "loaded_at": row["_loaded_at"],
                         "line_text": row["_raw_line"]})
        derived = self.derived(source, ids)
        out = []
        for record_id in ids:
            graph = self.graph_by_key.get((source, record_id), {})
            held = versions.get(record_id, [])
            current = held[0] if held else None
            values = {k: v for k, v in (current or {}).items() if not k.startswith("_")}
            entry: Row = {
                "source": source,
                "record_id": record_id,
                "time": graph.get("record_ts"),
                "profile_id": graph.get("profile_id"),
                "values": values,
                "version_count": len(held),
                "versions": [_version(v, values, spec.timestamp if spec else None, i == 0)
                             for i, v in enumerate(held)],
            }
            if quarantined.get(record_id):
                entry["quarantined_lines"] = quarantined[record_id]
            if derived.get(record_id):
                entry["derived"] = derived[record_id]
            if note or not held:
                entry["note"] = note or "no raw row of this record is held any more"
            out.append(entry)
        return out

    def derived(self, source: str, ids: list[str]) -> dict[str, Row]:
        """What a model derived from one record alone (a support ticket's class)."""
        if not self.has_table("intermediate", "int_support__ticket_classes"):
            return {}
        return {str(r.pop("record_id")): r for r in self.rows(
            """SELECT record_id, ticket_class, language
               FROM intermediate.int_support__ticket_classes
               WHERE source = $source AND record_id IN (SELECT unnest($ids))""",
            {"source": source, "ids": ids})}

    # -- profiles ---------------------------------------------------------------------------

    def profile(self, pid: str) -> Row:
        mine = [r for r in self.graph if r["profile_id"] == pid]
        total = self.rows("SELECT count(*) AS n FROM main.fct_identity_graph "
                          "WHERE profile_id = $pid", {"pid": pid})[0]["n"]
        mixed = int(total) > len(mine)
        return {
            "profile_id": pid,
            "holds_other_records": mixed,
            "your_records": [{"source": r["source"], "record_id": r["record_id"]}
                             for r in mine],
            "golden_record": self.golden(pid, mine, mixed),
            "identifiers": self.identifiers(pid, mine, mixed),
            "contact_values": self.contact_values(pid, mine),
            "addresses": self.addresses(pid, mixed),
            "consent": self.consent(pid, mine),
            "consent_history": self.rows(
                f"""SELECT e.channel, e.contact_point, e.status, e.decided_at, e.source,
                           e.record_id, e.reason, e.suppresses, e.lifts_suppression
                    FROM intermediate.int_consent__events e JOIN {_KEYS} USING (source, record_id)
                    WHERE e.profile_id = $pid
                    ORDER BY e.decided_at, e.channel, e.source, e.record_id""", {"pid": pid}),
            "preferences": self.preferences(pid),
            "traits": self.traits(pid, mixed),
            "offer_responses": self.rows(
                f"""SELECT o.offer_id, o.product_group, o.channel, o.response, o.responded_at,
                           o.source, o.record_id
                    FROM main.fct_offer_responses o JOIN {_KEYS} USING (source, record_id)
                    WHERE o.profile_id = $pid
                    ORDER BY o.responded_at, o.offer_id, o.source, o.record_id""",
                {"pid": pid}),
            "identity_links": self.links(),
            "profile_id_history": self.id_history(pid),
        }

    def golden(self, pid: str, mine: list[Row], mixed: bool) -> Row:
        found = self.rows("SELECT * FROM main.dim_profiles WHERE profile_id = $pid",
                          {"pid": pid})
        if not found:
            return {"attributes": [], "note": "no golden record is held for this profile"}
        row = found[0]
        records = self.rows(
            f"""SELECT a.* FROM intermediate.int_profile__attribute_records a
                JOIN {_KEYS} USING (source, record_id) WHERE a.profile_id = $pid""",
            {"pid": pid})
        attributes = []
        for name, (columns, key) in GOLDEN_ATTRIBUTES.items():
            if not all(c in row for c in columns):
                continue
            source, at = row.get(f"{name}_source"), row.get(f"{name}_at")
            values = {c: row[c] for c in columns}
            held = row[key] is not None
            yours = held and (not mixed or any(
                r["source"] == source and r["record_ts"] == at and r.get(key) == row[key]
                for r in records))
            if held and not yours:
                values = dict.fromkeys(columns, WITHHELD)
                at = WITHHELD
            attributes.append({"attribute": name, "values": values, "source": source,
                               "at": at, "from_your_records": yours if held else None})
        times = [r["record_ts"] for r in mine if r["record_ts"] is not None]
        return {
            "attributes": attributes,
            "record_count": len(mine),
            "sources": sorted({str(r["source"]) for r in mine}),
            "first_seen_at": min(times) if times else None,
            "last_seen_at": max(times) if times else None,
        }

    def identifiers(self, pid: str, mine: list[Row], mixed: bool) -> list[Row]:
        yours = {(c, str(r[c])) for r in mine for c in IDENTIFIER_COLUMNS if r[c] is not None}
        out = []
        for row in self.rows(
                """SELECT identifier_type, identifier_value, first_seen_at, last_seen_at,
                          record_count FROM main.fct_profile_identifiers
                   WHERE profile_id = $pid ORDER BY identifier_type, identifier_value""",
                {"pid": pid}):
            pair = (str(row["identifier_type"]), str(row["identifier_value"]))
            if pair not in yours:
                continue
            if mixed:  # the profile's figures count the other records too: take yours
                times = [r["record_ts"] for r in mine
                         if str(r[pair[0]]) == pair[1] and r["record_ts"] is not None]
                row["record_count"] = sum(1 for r in mine if str(r[pair[0]]) == pair[1])
                row["first_seen_at"] = min(times) if times else None
                row["last_seen_at"] = max(times) if times else None
            out.append(row)
        return out

    def contact_points(self, mine: list[Row]) -> set[str]:
        return {str(r[c]) for r in mine for c in ("email", "phone") if r[c] is not None}

    def contact_values(self, pid: str, mine: list[Row]) -> list[Row]:
        points = self.contact_points(mine)
        out = []
        for row in self.rows(
                """SELECT identifier_type, contact_point, given_value, deliverable_value,
                          given_by_source, given_by_record_id, given_at
                   FROM main.dim_profile_contact_values WHERE profile_id = $pid
                   ORDER BY identifier_type, contact_point""", {"pid": pid}):
            if str(row["contact_point"]) not in points:
                continue
            row["from_your_records"] = self.own_key(row["given_by_source"],
                                                    row["given_by_record_id"])
            if not row["from_your_records"]:
                row.update(given_value=WITHHELD, deliverable_value=WITHHELD,
                           given_by_record_id=None, given_at=WITHHELD)
            out.append(row)
        return out

    def addresses(self, pid: str, mixed: bool) -> list[Row]:
        if not self.has_table("main", "dim_profile_addresses"):
            return []
        records = self.rows(
            f"""SELECT a.source, a.record_ts, a.address_key
                FROM intermediate.int_profile__attribute_records a
                JOIN {_KEYS} USING (source, record_id)
                WHERE a.profile_id = $pid AND a.address_key IS NOT NULL""", {"pid": pid})
        keys = {str(r["address_key"]) for r in records}
        out = []
        for row in self.rows(
                """SELECT address_key, street, house_number, postcode, city, country,
                          valid_from, last_seen_at, is_current, record_count, sources
                   FROM main.dim_profile_addresses WHERE profile_id = $pid
                   ORDER BY valid_from, address_key""", {"pid": pid}):
            if str(row["address_key"]) not in keys:
                continue
            if mixed:
                carrying = [r for r in records if r["address_key"] == row["address_key"]]
                times = [r["record_ts"] for r in carrying if r["record_ts"] is not None]
                row.update(record_count=len(carrying),
                           sources=sorted({str(r["source"]) for r in carrying}),
                           valid_from=min(times) if times else None,
                           last_seen_at=max(times) if times else None)
            out.append(row)
        return out

    def consent(self, pid: str, mine: list[Row]) -> list[Row]:
        points = self.contact_points(mine) | {"postal", "none"}
        out = []
        for row in self.rows(
                f"""SELECT c.channel, c.contact_point, c.status, c.is_contactable,
                           c.is_suppressed, c.decided_by_source, c.decided_at,
                           c.decided_by_reason,
                           (SELECT min(e.record_id)
                            FROM intermediate.int_consent__events e
                            JOIN {_KEYS} k ON k.source = e.source AND k.record_id = e.record_id
                            WHERE e.profile_id = c.profile_id AND e.channel = c.channel
                              AND (e.contact_point = c.contact_point OR e.contact_point = '*')
                              AND e.decided_at = c.decided_at
                              AND e.source = c.decided_by_source AND e.status = c.status
                              AND e.reason IS NOT DISTINCT FROM c.decided_by_reason
                           ) AS decided_by_record_id
                    FROM main.dim_profile_consent c WHERE c.profile_id = $pid
                    ORDER BY c.channel, c.contact_point""", {"pid": pid}):
            if str(row["contact_point"]) not in points:
                continue
            decided = row["decided_at"] is not None
            row["decided_by_your_record"] = (row["decided_by_record_id"] is not None
                                             if decided else None)
            if decided and row["decided_by_record_id"] is None:
                row.update(decided_at=WITHHELD, decided_by_reason=WITHHELD)
            out.append(row)
        return out

    def preferences(self, pid: str) -> Row | None:
        found = self.rows(
            """SELECT max_contacts, contact_period, excluded_product_groups, decided_at,
                      decided_by_source, decided_by_record_id
               FROM main.dim_profile_preferences WHERE profile_id = $pid""", {"pid": pid})
        if not found:
            return None
        row = found[0]
        row["decided_by_your_record"] = self.own_key(row["decided_by_source"],
                                                     row["decided_by_record_id"])
        if not row["decided_by_your_record"]:
            row.update(max_contacts=WITHHELD, contact_period=WITHHELD,
                       excluded_product_groups=WITHHELD, decided_at=WITHHELD,
                       decided_by_record_id=None)
        return row

    def traits(self, pid: str, mixed: bool) -> Row | None:
        found = self.rows("SELECT * FROM main.dim_profile_traits WHERE profile_id = $pid",
                          {"pid": pid})
        if not found:
            return None
        model, columns = trait_definitions(self.marts_yml)
        row = found[0]
        row.pop("profile_id", None)
        as_of = row.pop("as_of", None)
        return {
            "as_of": as_of,
            "definition": model,
            "computed_over_other_records": mixed,
            "traits": [{"trait": name, "value": WITHHELD if mixed else value,
                        "definition": columns.get(name)} for name, value in row.items()],
        }

    def links(self) -> list[Row]:
        if not self.has_table("main", "fct_identity_links"):
            return []
        return self.rows(
            f"""SELECT l.source_l, l.record_id_l, l.source_r, l.record_id_r, l.edge_type, l.rule,
                       l.match_probability, l.match_weight, l.model, l.status
                FROM main.fct_identity_links l
                JOIN {_KEYS} a ON a.source = l.source_l AND a.record_id = l.record_id_l
                JOIN {_KEYS} b ON b.source = l.source_r AND b.record_id = l.record_id_r
                ORDER BY ALL""")

    def id_history(self, pid: str) -> list[Row]:
        """The profile id's history rows, following retired ids back to where they began."""
        ids, rows, seen = {pid}, [], set()
        while True:
            found = self.rows(
                """SELECT old_id, new_id, change, run_id, changed_at
                   FROM main.fct_profile_id_history WHERE new_id IN (SELECT unnest($ids))
                   ORDER BY changed_at, new_id, old_id NULLS FIRST""", {"ids": sorted(ids)})
            new = [r for r in found if tuple(r.values()) not in seen]
            if not new:
                break
            for r in new:
                seen.add(tuple(r.values()))
                rows.append(r)
            ids |= {str(r["old_id"]) for r in new if r["old_id"] is not None}
        return sorted(rows, key=lambda r: (r["changed_at"], str(r["new_id"]),
                                           str(r["old_id"] or "")))

    # -- segments, exports, suppression -----------------------------------------------------

    def segments(self, mixed: Mapping[str, bool]) -> list[Row]:
        tables = [str(t) for (t,) in self.con.execute(
            """SELECT DISTINCT table_name FROM information_schema.columns
               WHERE table_catalog = current_database() AND table_schema = 'segments'
                 AND column_name = 'profile_id' ORDER BY 1""").fetchall()]
        out = []
        for table in tables:
            for row in self.rows(
                    f"""SELECT * FROM segments.{q(table)}
                        WHERE CAST(profile_id AS VARCHAR) IN (SELECT unnest($ids))
                        ORDER BY CAST(profile_id AS VARCHAR)""", {"ids": self.profile_ids}):
                pid = str(row.pop("profile_id"))
                values = dict.fromkeys(row, WITHHELD) if mixed.get(pid, True) else row
                out.append({"segment": table, "profile_id": pid, "values": values})
        return out

    def exports(self) -> list[Row]:
        root = self.paths.exports
        if not root.is_dir():
            return []
        ids = set(self.profile_ids)
        out = []
        for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
            files, excluded = [], []
            for path in sorted(folder.iterdir()):
                hits = _profile_rows(self.con, path, ids)
                if hits:
                    files.append(path.name)
                    if path.name == "suppressed.csv":
                        excluded += [{k: v for k, v in r.items() if k != "profile_id"}
                                     for r in hits]
            if not files:
                continue
            manifest = _manifest(folder / "manifest.json")
            out.append({
                "segment": manifest.get("segment", folder.parent.name),
                "run_id": manifest.get("run_id", folder.name),
                "exported_at": manifest.get("exported_at"),
                "member": "members.parquet" in files,
                "files": files,
                "left_out": excluded,
            })
        return sorted(out, key=lambda e: (str(e["segment"]), str(e["exported_at"] or ""),
                                          str(e["run_id"])))

    def suppression(self) -> list[Row]:
        hashes = {identifier_hash(kind, str(r[kind])): kind for r in self.graph
                  for kind in ("email", "phone") if r[kind] is not None}
        if not hashes or not self.has_table("main", "dim_suppression_list"):
            return []
        return self.rows(
            """SELECT identifier_hash, identifier_type, channel, reason, suppressed_at,
                      first_suppressed_at, statements, source
               FROM main.dim_suppression_list
               WHERE identifier_hash IN (SELECT unnest($hashes))
               ORDER BY identifier_type, identifier_hash""", {"hashes": sorted(hashes)})


def _version(row: Row, current: Row, timestamp: str | None, is_current: bool) -> Row:
    """One raw version of a record: when it was loaded, and how it differs from the current."""
    return {
        "loaded_at": row.get("_loaded_at"),
        "file": row.get("_source_file"),
        "record_time": row.get(timestamp) if timestamp else None,
        "current": is_current,
        "differs_from_current": {} if is_current else {
            k: v for k, v in row.items() if not k.startswith("_") and current.get(k) != v},
    }


def _profile_rows(con: duckdb.DuckDBPyConnection, path: Path, ids: set[str]) -> list[Row]:
    """Rows of an export file (CSV with a header, or Parquet) naming one of ``ids``."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        if "profile_id" not in header:
            return []
        reader = "read_csv($path, header = true, all_varchar = true)"
    elif path.suffix == ".parquet":
        reader = "read_parquet($path)"
        names = [d[0] for d in con.execute(f"DESCRIBE SELECT * FROM {reader}",
                                           {"path": str(path)}).fetchall()]
        if "profile_id" not in names:
            return []
    else:
        return []
    result = con.execute(
        f"SELECT * FROM {reader} WHERE CAST(profile_id AS VARCHAR) IN (SELECT unnest($ids))",
        {"path": str(path), "ids": sorted(ids)})
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def trait_definitions(path: Path) -> tuple[str | None, dict[str, str]]:
    """``dim_profile_traits``' description and each of its columns' description."""
    document = read_yaml(path, required=False) or {}
    for model in document.get("models") or []:
        if isinstance(model, dict) and model.get("name") == "dim_profile_traits":
            columns = {str(c["name"]): " ".join(str(c.get("description") or "").split())
                       for c in model.get("columns") or [] if isinstance(c, dict)}
            described = " ".join(str(model.get("description") or "").split())
            return described or None, columns
    return None, {}


def _plain(value: Any) -> Any:
    """``value`` as JSON types: times ISO 8601, lists and mappings recursively."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


ABOUT = [
    "This report lists every record about you the customer data platform holds, what it "
    "derived from them, and where they were used (segments, exports).",
    "Records: each source record with every value its current version holds, and every "
    "earlier version kept (when it was loaded and how it differed).",
    "Profiles: the combined record (golden record) your records were merged into, with the "
    "source and time of each value; consent, preferences, traits and offers.",
    f"A profile may also hold records we do not attribute to you. Values that came from such "
    f"records are shown as \"{WITHHELD}\"; traits computed over such a profile are withheld "
    f"the same way.",
    "The identifiers this request named are shown only as SHA-256 hashes.",
]

# --------------------------------------------------------------------------------------------
# writing


def write_access_report(report: Mapping[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``access.json`` and ``access.html`` into ``folder`` (created, mode 0700 when
    new), each file mode 0600, written whole or not at all."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    json_path, html_path = folder / "access.json", folder / "access.html"
    _write_private(json_path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    _write_private(html_path, render_html(report))
    return json_path, html_path


def _write_private(path: Path, text: str) -> None:
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


# --------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem auto;
max-width:72rem;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;border-bottom:2px solid #444;padding-bottom:.3rem}
h2{font-size:1.3rem;margin-top:2.2rem;border-bottom:1px solid #bbb}
h3{font-size:1.1rem;margin-top:1.6rem}h4{font-size:1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.k{font-weight:600;background:#fafafa}
.scroll{overflow-x:auto}.muted{color:#666}.withheld{color:#8a4b00;font-style:italic}
code{font-size:.85em;word-break:break-all}ul{margin-top:.3rem}
@media print{body{margin:0;max-width:none}.scroll{overflow:visible}table{font-size:.7rem}}
"""


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained page (no scripts, no external assets), every value escaped."""
    summary = report.get("summary") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="de"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Auskunft nach Art. 15 DSGVO – Access report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Auskunft nach Art. 15 DSGVO <span class=\"muted\">· Access report</span></h1>",
        f"<p>Erstellt am / generated at: <strong>{_e(report.get('generated_at'))}</strong></p>",
        "<h2>Über diese Auskunft · About this report</h2>",
        "<ul>" + "".join(f"<li>{_e(t)}</li>" for t in report.get("about") or []) + "</ul>",
        _kv({"Datensätze / records": summary.get("records"),
             "Quellen / sources": summary.get("sources"),
             "Profile / profiles": summary.get("profiles"),
             "Segmente / segments": summary.get("segments"),
             "Exporte / export runs": summary.get("export_runs")}),
        "<h3>Angefragte Kennungen (gehasht) · Requested identifiers (hashed)</h3>",
        _table((report.get("request") or {}).get("identifiers") or [], ["kind", "sha256"]),
        "<h2>Datensätze · Records</h2>",
    ]
    parts += _records_html(report.get("records") or [])
    parts.append("<h2>Profile · Profiles</h2>")
    for profile in report.get("profiles") or []:
        parts += _profile_html(profile)
    seg = report.get("segments_and_exports") or {}
    parts += [
        "<h2>Segmente und Exporte · Segments and exports</h2>",
        "<h3>Segmente · Segments</h3>",
        _table([{"segment": s.get("segment"), "profile_id": s.get("profile_id"),
                 **(s.get("values") or {})} for s in seg.get("segments") or []]),
        "<h3>Exporte · Export runs</h3>",
        _table(seg.get("exports") or [],
               ["segment", "run_id", "exported_at", "member", "files", "left_out"]),
        "<h2>Sperrliste · Suppression list</h2>",
        _table(report.get("suppression") or []),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _records_html(records: Iterable[Mapping[str, Any]]) -> list[str]:
    by_source: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_source.setdefault(str(record.get("source")), []).append(record)
    parts = []
    for source, items in by_source.items():
        parts.append(f"<h3>Quelle · Source <code>{_e(source)}</code> "
                     f"<span class=\"muted\">({len(items)})</span></h3>")
        columns: dict[str, None] = {}
        for item in items:
            columns.update(dict.fromkeys(item.get("values") or {}))
        rows = [{"record_id": i.get("record_id"), "time": i.get("time"),
                 "profile_id": i.get("profile_id"), "versions": i.get("version_count"),
                 **(i.get("values") or {}),
                 **({"derived": i["derived"]} if i.get("derived") else {}),
                 **({"note": i["note"]} if i.get("note") else {})} for i in items]
        extra = [c for c in ("derived", "note") if any(c in r for r in rows)]
        # the record key column repeats the record id: shown once
        shown = [c for c in columns if not all(r.get(c) == r["record_id"] for r in rows)]
        parts.append(_table(rows, ["record_id", "time", "profile_id", "versions", *shown,
                                   *extra]))
        older = [{"record_id": i.get("record_id"), **v} for i in items
                 for v in i.get("versions") or [] if not v.get("current")]
        if older:
            parts.append("<h4>Frühere Versionen · Earlier versions</h4>")
            parts.append(_table(older, ["record_id", "loaded_at", "file", "record_time",
                                        "differs_from_current"]))
        lines = [{"record_id": i.get("record_id"), **line} for i in items
                 for line in i.get("quarantined_lines") or []]
        if lines:
            parts.append("<h4>Zurückgehaltene Zeilen · Quarantined lines</h4>")
            parts.append(_table(lines))
    return parts


def _profile_html(profile: Mapping[str, Any]) -> list[str]:
    golden = profile.get("golden_record") or {}
    parts = [f"<h3>Profil · Profile <code>{_e(profile.get('profile_id'))}</code></h3>"]
    if profile.get("holds_other_records"):
        parts.append(f"<p class=\"withheld\">Dieses Profil enthält auch Datensätze, die Ihnen "
                     f"nicht zugeordnet sind. This profile also holds records not attributed "
                     f"to you: their values are shown as {_e(WITHHELD)}.</p>")
    parts += [
        "<h4>Stammdaten (Golden Record) · Golden record</h4>",
        _table([{"attribute": a.get("attribute"),
                 "value": " ".join(str(v) for v in (a.get("values") or {}).values()
                                   if v is not None and v != WITHHELD) or (
                     WITHHELD if a.get("from_your_records") is False else None),
                 "source": a.get("source"), "at": a.get("at")}
                for a in golden.get("attributes") or []],
               ["attribute", "value", "source", "at"]),
        _kv({"your records": golden.get("record_count"), "sources": golden.get("sources"),
             "first seen": golden.get("first_seen_at"),
             "last seen": golden.get("last_seen_at")}),
        "<h4>Kennungen · Identifiers</h4>", _table(profile.get("identifiers") or []),
        "<h4>Kontaktdaten · Contact values</h4>", _table(profile.get("contact_values") or []),
        "<h4>Adressen · Addresses</h4>", _table(profile.get("addresses") or []),
        "<h4>Einwilligungen · Consent</h4>", _table(profile.get("consent") or []),
        "<h4>Einwilligungsverlauf · Consent history</h4>",
        _table(profile.get("consent_history") or []),
        "<h4>Präferenzen · Preferences</h4>",
        _kv(profile["preferences"]) if profile.get("preferences") else _none(),
    ]
    traits = profile.get("traits")
    parts.append("<h4>Merkmale · Traits</h4>")
    if traits:
        parts.append(f"<p>{_e(traits.get('definition'))} "
                     f"<span class=\"muted\">as of {_e(traits.get('as_of'))}</span></p>")
        parts.append(_table(traits.get("traits") or [], ["trait", "value", "definition"]))
    else:
        parts.append(_none())
    parts += [
        "<h4>Angebote und Reaktionen · Offers and responses</h4>",
        _table(profile.get("offer_responses") or []),
        "<h4>Verknüpfungen Ihrer Datensätze · Identity links between your records</h4>",
        _table(profile.get("identity_links") or []),
        "<h4>Profil-ID-Verlauf · Profile id history</h4>",
        _table(profile.get("profile_id_history") or []),
    ]
    return parts


def _none() -> str:
    return '<p class="muted">– keine / none –</p>'


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return _none()
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>"
                   for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>' \
           f"</table></div>"


def _kv(values: Mapping[str, Any]) -> str:
    body = "".join(f'<tr><td class="k">{_e(k)}</td>{_cell(v)}</tr>' for k, v in values.items())
    return f"<table><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value == WITHHELD:
        return f'<td class="withheld">{_e(value)}</td>'
    return f"<td>{_e(value)}</td>"


def _e(value: Any) -> str:
    """A value as escaped text: lists comma-separated, mappings as ``k: v`` pairs."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja / yes" if value else "nein / no"
    if isinstance(value, Mapping):
        return "; ".join(f"{_e(k)}: {_e(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_e(v) for v in value)
    return html.escape(str(value), quote=True)


__all__ = ["WITHHELD", "build_access_report", "render_html", "trait_definitions",
           "write_access_report"]
