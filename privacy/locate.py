"""Which records are the person a request names.

A request names identifiers; the person is more than the records carrying them, and less than
the profile they resolved into (a profile may have merged two people, or this person may be
the bridge between two):

1. *seeds*: every record whose normalised e-mail, phone, customer number, national id or
   loyalty card is a requested one; a requested profile id: every record of that profile;
2. then every record that carries no other person's name (no name; or a found last name with
   a found first name, its initial, or none; or a found first name and no last name) and
   shares an identifier (e-mail, phone, customer number, loyalty card, user id, cookie id)
   with a record found, in any profile (a merge the resolver missed is still this person) -
   unless a record with another person's name carries that identifier too (a relative's
   customer number quoted on the phone: it is not theirs to give away); and within the
   profiles found every record carrying a found record's full name, and every nameless record
   of a profile whose named records all are the person's; repeated until nothing is added.

Read from the build file's identity tables, so it sees what the last build resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from ingest.registry import Registry
from privacy.identifiers import GRAPH_COLUMNS, Identifier

#: Identity-graph columns that tie records of one person together.
LINKING_COLUMNS = ("email", "phone", "customer_number", "national_id", "loyalty_card",
                   "user_id", "anonymous_id")
#: Of those, the ones read from the normalised records (the graph holds only their hash).
NORMALISED_COLUMNS = ("national_id",)
#: Identifier kinds a found record's values are kept (and hashed) as.
KEPT_COLUMNS = ("email", "phone", "customer_number", "national_id", "loyalty_card")
#: Canonical fields whose values are searched for in files a row-level rewrite cannot parse
#: (logs, quarantined raw lines): the identifiers, and the name.
NEEDLE_FIELDS = ("email", "phone", "customer_number", "national_id", "loyalty_card",
                 "user_id")


class UnknownPerson(LookupError):
    """No record carries any of a request's identifiers: nothing is held about them, and an
    erasure changes nothing (the message names no value)."""


@dataclass
class Person:
    """The records a request is about, and how to recognise their values elsewhere."""

    records: dict[str, set[str]] = field(default_factory=dict)  # source -> record ids
    profile_ids: set[str] = field(default_factory=set)
    identifiers: set[Identifier] = field(default_factory=set)  # normalised, incl. found ones
    needles: set[str] = field(default_factory=set)  # values as the sources wrote them
    names: set[str] = field(default_factory=set)  # "first last" as the sources wrote them

    @property
    def record_count(self) -> int:
        return sum(len(ids) for ids in self.records.values())

    @property
    def hashes(self) -> list[str]:
        return sorted({i.hash for i in self.identifiers})

    def to_json(self) -> dict[str, Any]:
        return {"records": {s: sorted(ids) for s, ids in sorted(self.records.items())},
                "profile_ids": sorted(self.profile_ids),
                "identifiers": [[i.kind, i.value] for i in sorted(self.identifiers)],
                "needles": sorted(self.needles), "names": sorted(self.names)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Person:
        return cls(records={str(s): set(ids) for s, ids in dict(data["records"]).items()},
                   profile_ids=set(data["profile_ids"]),
                   identifiers={Identifier(str(k), str(v)) for k, v in data["identifiers"]},
                   needles=set(data["needles"]), names=set(data["names"]))


def locate(con: duckdb.DuckDBPyConnection, registry: Registry,
           requested: list[Identifier]) -> Person:
    """The person ``requested`` names, in the build file ``con`` is connected to (empty when
    no record carries any of the identifiers)."""
    wanted = {(i.kind, i.value) for i in requested}
    rows = _rows(con, {kind: [v for k, v in wanted if k == kind] for kind, _ in wanted})
    found = {_key(r): r for r in rows
             if ("profile_id", r["profile_id"]) in wanted
             or any((kind, r[GRAPH_COLUMNS[kind]]) in wanted for kind in GRAPH_COLUMNS
                    if kind != "profile_id")}
    seen_profiles: set[str] = set()
    seen_values: set[tuple[str, str]] = set()
    while found:
        profiles = {str(r["profile_id"]) for r in found.values()}
        values = {(c, str(r[c])) for r in found.values() for c in LINKING_COLUMNS if r[c]}
        if profiles != seen_profiles or values != seen_values:
            query: dict[str, list[str]] = {"profile_id": sorted(profiles)}
            for column, value in values:
                query.setdefault(column, []).append(value)
            rows = _rows(con, query)
            seen_profiles, seen_values = profiles, values
        added = _tied(rows, found, profiles, values)
        if not added:
            break
        found.update({_key(r): r for r in added})
    person = Person()
    for row in found.values():
        person.records.setdefault(str(row["source"]), set()).add(str(row["record_id"]))
        person.profile_ids.add(str(row["profile_id"]))
        for column in KEPT_COLUMNS:
            if row[column]:
                person.identifiers.add(Identifier(column, str(row[column])))
    if person.records:
        person.identifiers |= {i for i in requested if i.kind != "profile_id"}
    _add_needles(con, registry, person)
    return person


Row = dict[str, str | None]


def _key(row: Row) -> tuple[str, str]:
    return str(row["source"]), str(row["record_id"])


def _rows(con: duckdb.DuckDBPyConnection, values: dict[str, list[str]]) -> list[Row]:
    """Graph rows (with the normalised name) whose column ``k`` holds one of ``values[k]``."""
    values = {k: v for k, v in values.items() if v}
    if not values:
        return []
    conditions = " OR ".join(f"{_column(GRAPH_COLUMNS.get(k, k))} IN (SELECT unnest(${k}))"
                             for k in values)
    columns = ", ".join(f"{_column(c)} AS {c}" for c in LINKING_COLUMNS)
    result = con.execute(
        f"""SELECT g.profile_id, g.source, g.record_id, {columns}, n.first_name, n.last_name
            FROM main.fct_identity_graph g
            LEFT JOIN intermediate.int_identity__normalised n USING (source, record_id)
            WHERE {conditions} ORDER BY g.profile_id, g.source, g.record_id""", values)
    names = [d[0] for d in result.description]
    return [dict(zip(names, (None if v is None else str(v) for v in row), strict=True))
            for row in result.fetchall()]


def _column(name: str) -> str:
    """A looked-up column: from the graph, or from the normalised records where the graph
    holds only a hash."""
    return f"n.{name}" if name in NORMALISED_COLUMNS else f"g.{name}"


def _tied(rows: list[Row], found: dict[tuple[str, str], Row], profiles: set[str],
          values: set[tuple[str, str]]) -> list[Row]:
    """Rows not found yet that carry no other person's name and either share an identifier
    of the person's with a found record (in any profile: a missed merge is still this person)
    or, within the found profiles, carry a found record's full name, or no name at all in a
    profile whose named records are all the person's. An identifier that a record with
    another person's name also carries is not the person's alone (a relative's customer
    number quoted on the phone, a shared household login): it ties nothing."""
    firsts = {r["first_name"] for r in found.values() if r["first_name"]}
    lasts = {r["last_name"] for r in found.values() if r["last_name"]}
    names = {(r["first_name"], r["last_name"]) for r in found.values()
             if r["first_name"] and r["last_name"]}

    def compatible(row: Row) -> bool:
        first, last = row["first_name"], row["last_name"]
        if not first and not last:
            return True
        if last:
            return last in lasts and (not first or first in firsts
                                      or any(first[0] == f[0] for f in firsts))
        return first in firsts

    others = [r for r in rows if _key(r) not in found and not compatible(r)]
    shared = {(c, r[c]) for r in others for c in LINKING_COLUMNS if r[c]}
    theirs = values - shared
    # A profile whose every named record is the person's: its nameless records are too.
    mixed = {r["profile_id"] for r in others if r["first_name"] or r["last_name"]}
    added = []
    for row in rows:
        if _key(row) in found or not compatible(row):
            continue
        first, last = row["first_name"], row["last_name"]
        shares = any((c, row[c]) in theirs for c in LINKING_COLUMNS if row[c])
        in_profile = row["profile_id"] in profiles and (
            (first, last) in names
            or (not first and not last and row["profile_id"] not in mixed))
        if shares or in_profile:
            added.append(row)
    return added


def _add_needles(con: duckdb.DuckDBPyConnection, registry: Registry, person: Person) -> None:
    """The values the person's records hold as the sources wrote them (every version)."""
    for source, record_ids in person.records.items():
        spec = registry.sources.get(source)
        if spec is None:
            continue
        fields = {f: c for f, c in spec.identity.items()
                  if f in (*NEEDLE_FIELDS, "first_name", "last_name")}
        if not fields:
            continue
        select = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{f}"' for f, c in fields.items())
        result = con.execute(
            f'SELECT DISTINCT {select} FROM raw."{spec.table}" '
            f'WHERE CAST("{spec.record_key}" AS VARCHAR) IN (SELECT unnest($ids))',
            {"ids": sorted(record_ids)})
        names = [d[0] for d in result.description]
        for row in result.fetchall():
            values = dict(zip(names, row, strict=True))
            for name in NEEDLE_FIELDS:
                if values.get(name) and str(values[name]).strip():
                    person.needles.add(str(values[name]).strip())
            first, last = values.get("first_name"), values.get("last_name")
            if first and last and str(first).strip() and str(last).strip():
                person.names.add(f"{str(first).strip()} {str(last).strip()}")
    person.needles |= {i.value for i in person.identifiers}
