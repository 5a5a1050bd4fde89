"""The dbt sources of a build, generated from the source registry (``config/sources.yml``).

Every registered source is the dbt source ``source('raw', <name>)`` (schema ``raw``, the
append-only table ingest writes), and no other is: the registry differs per data directory, so
no source is declared by hand. ``dbt_project/models/_registry_sources.yml`` declares the source
``raw`` once and takes its tables from the var :data:`VAR`, which :func:`dbt_source_vars`
builds per dbt invocation (:func:`cdp.dbt.run_dbt`). Handed over as a var, nothing is written
to disk: two data directories never share a generated file, and a changed registry changes
the vars, which makes dbt parse the project afresh instead of reusing a partial parse.

Each table carries its description (kind, format, delivery), the columns the registry declares
(typed where it types them) and the load metadata, and in ``config.meta`` the registry's
record key, timestamp, birth-date format, identity mapping and roles: the identity records
model reads its sources from there at parse time, so every source it reads is in its lineage.
Freshness is measured on ``_loaded_at`` (``loaded_at_field`` of the source ``raw``).

dbt renders descriptions as Jinja: they are built from the registry's validated vocabulary
(kinds, formats, roles, canonical fields) only, never from a column name or other free text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.vocabulary import LOAD_COLUMNS
from ingest.ledger import DUCK_TYPES, METADATA_TYPES
from ingest.registry import SourceSpec
from ingest.roles import SINGLE_ROLES

#: The dbt var holding the tables of the source ``raw`` (read by _registry_sources.yml).
VAR = "registry_sources"

DELIVERY = {
    "snapshot": "every file is the full current set of records",
    "incremental": "every file holds new or changed records",
    None: "delivery not declared (inferred per file)",
}
LOAD_METADATA = {
    "_source_file": "Landing file the row was loaded from (load metadata).",
    "_file_sha256": "SHA-256 of that file (load metadata).",
    "_row_number": "Row of the record in that file (load metadata).",
    "_loaded_at": "When ingest loaded the row (load metadata; what source freshness measures).",
    "_run_id": "Run that loaded the row (load metadata).",
    "_content_hash": "Hash of the row's content: a re-delivered identical version is skipped "
                     "(load metadata).",
}


def dbt_source_vars(registry: Iterable[SourceSpec]) -> dict[str, object]:
    """The vars dbt needs for the registry's sources: ``{VAR: [table, ...]}``."""
    return {VAR: source_tables(registry)}


def source_tables(registry: Iterable[SourceSpec]) -> list[dict[str, Any]]:
    """One dbt source table (a ``tables:`` entry of a sources yml) per registered source."""
    return [_table(spec) for spec in registry]


def _table(spec: SourceSpec) -> dict[str, Any]:
    roles = _roles(spec)
    description = (
        f"Registered source: {spec.kind}, {spec.format} files; {DELIVERY[spec.delivery]}. "
        "Append-only: every delivered version of a record, with load metadata; models read "
        "the current version per record key."
    )
    if roles:
        description += " Roles: " + ", ".join(roles) + "."
    config: dict[str, Any] = {}
    if spec.freshness is not None:
        config["freshness"] = {
            f"{level}_after": {"count": hours, "period": "hour"}
            for level, hours in (("warn", spec.freshness.warn_after_hours),
                                 ("error", spec.freshness.error_after_hours)) if hours}
    return {
        "name": spec.name,
        "description": description,
        "columns": _columns(spec),
        "config": {
            **config,
            "meta": {
                "kind": spec.kind,
                "format": spec.format,
                "delivery": spec.delivery,
                "record_key": spec.record_key,
                "timestamp": spec.timestamp,
                "birth_date_format": spec.birth_date_format,
                "identity": dict(spec.identity),
                "roles": roles,
            },
        },
    }


def _roles(spec: SourceSpec) -> list[str]:
    """The roles the source declares besides identity (``ingest/roles.py``)."""
    declared = ["consent"] if spec.consent else []
    return declared + [role for role in SINGLE_ROLES if getattr(spec, role) is not None]


def _columns(spec: SourceSpec) -> list[dict[str, Any]]:
    """The columns every file of the source carries (the registry's required columns) and a
    composed record key, with what the registry says of them, then the load metadata ingest
    adds."""
    types = spec.column_types
    fields: dict[str, list[str]] = {}
    for field, column in spec.identity.items():
        fields.setdefault(column, []).append(field)
    read_by: dict[str, list[str]] = {}
    for statement in spec.consent:
        for column in statement.columns:
            read_by.setdefault(column, []).append("consent")
    for role in SINGLE_ROLES:
        declaration = getattr(spec, role)
        for column in declaration.columns if declaration is not None else []:
            read_by.setdefault(column, []).append(role)
    columns = []
    for name in spec.raw_columns:
        said = []
        if name == spec.record_key and spec.composite_key:
            said.append("Record key: identifies one record of the source; composed at ingest "
                        "from the key columns (each trimmed, joined by a vertical bar).")
        elif name == spec.record_key:
            said.append("Record key: identifies one record of the source.")
        elif name in spec.key_columns:
            said.append("Part of the record key.")
        if name == spec.timestamp:
            said.append("When the record happened or last changed.")
        if name in fields:
            said.append("Identity field " + ", ".join(fields[name]) + ".")
        if name in read_by:
            said.append("Read by the role " + ", ".join(dict.fromkeys(read_by[name])) + ".")
        columns.append({"name": name, "data_type": DUCK_TYPES[types.get(name, "varchar")],
                        "description": " ".join(said)})
    columns += [{"name": name, "data_type": METADATA_TYPES[name],
                 "description": LOAD_METADATA.get(name, "Load metadata.")}
                for name in LOAD_COLUMNS]
    return columns
