"""The source registry: ``config/sources.yml`` parsed into typed, validated specs.

Why validate up front: every source name becomes a table name and every column name becomes a
quoted identifier in SQL, so a typo or a hostile value must fail loudly at load time (naming the
file, the source and the key) instead of half-way through an ingest run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

Kind = Literal["online", "offline"]
Format = Literal["csv", "jsonl", "parquet"]
ColumnType = Literal["varchar", "date", "timestamp", "double", "bigint", "boolean"]
Delivery = Literal["snapshot", "incremental"]

KINDS: tuple[str, ...] = ("online", "offline")
FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
#: snapshot: every file is the full current set of records (a CRM dump); incremental: every
#: file holds new or changed records only (events, orders, change feeds). Decides what the
#: quality gate compares a delivery with; unset, the gate infers it and says so.
DELIVERIES: tuple[str, ...] = ("snapshot", "incremental")
COLUMN_TYPES: tuple[str, ...] = ("varchar", "date", "timestamp", "double", "bigint", "boolean")
CANONICAL_FIELDS: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "street",
    "house_number",
    "postcode",
    "city",
    "country",
    "customer_number",
    "user_id",
    "anonymous_id",
    "loyalty_card",
)
#: Load metadata columns ingest adds to raw and quarantine tables; sources may not use them.
METADATA_COLUMNS: tuple[str, ...] = (
    "_source_file",
    "_file_sha256",
    "_row_number",
    "_loaded_at",
    "_run_id",
    "_content_hash",
    "_line_number",
    "_reason",
    "_raw_line",
)
#: Encodings DuckDB's CSV reader decodes natively (no extension download needed).
CSV_ENCODINGS: dict[str, str] = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-16": "utf-16",
    "utf16": "utf-16",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
}

SOURCE_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME_LENGTH = 63
SOURCE_KEYS = frozenset(
    {
        "kind",
        "format",
        "delivery",
        "csv",
        "path",
        "record_key",
        "timestamp",
        "timestamp_format",
        "birth_date_format",
        "columns",
        "identity",
    }
)
CSV_KEYS = frozenset({"delimiter", "encoding", "header"})


class RegistryError(ValueError):
    """The registry file is unreadable or violates the schema; the message says where."""


@dataclass(frozen=True)
class CsvOptions:
    """How to split a CSV file: one delimiter character, a native encoding, header or not."""

    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True


@dataclass(frozen=True)
class SourceSpec:
    """One registered landing source, as ingest and dbt need it."""

    name: str
    kind: Kind
    format: Format
    record_key: str
    timestamp: str | None
    csv: CsvOptions = field(default_factory=CsvOptions)
    delivery: Delivery | None = None
    path: str = "*"
    timestamp_format: str | None = None
    birth_date_format: str | None = None
    columns: Mapping[str, ColumnType] = field(default_factory=dict)
    identity: Mapping[str, str] = field(default_factory=dict)

    @property
    def table(self) -> str:
        """Name of the append-only raw table (schema ``raw``)."""
        return self.name

    @property
    def rejected_table(self) -> str:
        """Name of the quarantine table (schema ``raw``)."""
        return f"{self.name}__rejected"

    @property
    def column_types(self) -> dict[str, ColumnType]:
        """Typed columns; the timestamp column is a timestamp unless declared otherwise."""
        types: dict[str, ColumnType] = dict(self.columns)
        if self.timestamp:
            types.setdefault(self.timestamp, "timestamp")
        return types

    @property
    def required_columns(self) -> list[str]:
        """Columns every file must carry: record key, timestamp, typed and identity columns."""
        ordered = [self.record_key, self.timestamp, *self.identity.values(), *self.columns]
        return [column for column in dict.fromkeys(ordered) if column]


@dataclass(frozen=True)
class Registry:
    """All registered sources, keyed by name, plus the file they came from."""

    sources: Mapping[str, SourceSpec]
    path: Path | None = None

    def __iter__(self) -> Iterator[SourceSpec]:
        return iter(self.sources.values())

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, name: str) -> SourceSpec:
        return self.sources[name]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (a silently shadowed source is a bug)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def default_registry_path() -> Path:
    """``sources.yml`` in the configuration folder (``CDP_CONFIG`` or ``config/``)."""
    from cdp.settings import config_dir

    return config_dir() / "sources.yml"


def load_registry(path: Path | None = None) -> Registry:
    """Read and validate the registry YAML; raise ``RegistryError`` naming file, source and key."""
    path = Path(path) if path is not None else default_registry_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RegistryError(f"{path}: cannot read registry: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise RegistryError(f"{path}: registry is not valid UTF-8: {error.reason}") from error
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        raise RegistryError(f"{path}: invalid YAML: {error}") from error
    return parse_registry(document, path)


def parse_registry(document: Any, path: Path | str = "<registry>") -> Registry:
    """Validate an already-parsed registry document (a mapping with ``sources``)."""
    where = str(path)
    if not isinstance(document, Mapping):
        raise RegistryError(f"{where}: top level must be a mapping with key 'sources'")
    unknown = sorted(str(k) for k in document if k != "sources")
    if unknown:
        raise RegistryError(f"{where}: unknown top-level key(s) {unknown}; expected 'sources'")
    sources = document.get("sources")
    if not isinstance(sources, Mapping) or not sources:
        raise RegistryError(f"{where}: key 'sources' must be a non-empty mapping of sources")
    specs: dict[str, SourceSpec] = {}
    for name, body in sources.items():
        spec = _parse_source(where, name, body)
        specs[spec.name] = spec
    return Registry(sources=specs, path=Path(path))


def _fail(where: str, source: object, key: str | None, problem: str) -> RegistryError:
    location = f"{where}: source {source!r}"
    if key is not None:
        location += f", key {key!r}"
    return RegistryError(f"{location}: {problem}")


def _parse_source(where: str, name: object, body: object) -> SourceSpec:
    if not isinstance(name, str) or not SOURCE_NAME_RE.fullmatch(name):
        raise _fail(
            where, name, None, "bad source name: must match [a-z][a-z0-9_]* (a safe SQL identifier)"
        )
    if len(name) > MAX_NAME_LENGTH or "__" in name:
        raise _fail(
            where, name, None,
            f"bad source name: at most {MAX_NAME_LENGTH} characters and no '__' "
            "(reserved for <source>__rejected)",
        )
    if not isinstance(body, Mapping):
        raise _fail(where, name, None, "source entry must be a mapping of keys")
    for key in body:
        if key not in SOURCE_KEYS:
            raise _fail(where, name, str(key), f"unknown key; allowed: {sorted(SOURCE_KEYS)}")

    def required_choice(key: str, choices: tuple[str, ...]) -> str:
        value = body.get(key)
        if value is None:
            raise _fail(where, name, key, f"missing {key}; one of {list(choices)}")
        if value not in choices:
            raise _fail(where, name, key, f"unknown {key} {value!r}; one of {list(choices)}")
        return str(value)

    kind = required_choice("kind", KINDS)
    fmt = required_choice("format", FORMATS)
    delivery = body.get("delivery")
    if delivery is not None and delivery not in DELIVERIES:
        raise _fail(
            where, name, "delivery", f"unknown delivery {delivery!r}; one of {list(DELIVERIES)}"
        )
    record_key = _column_name(where, name, "record_key", body.get("record_key"))
    # Optional: snapshot exports (a CRM dump, a benchmark file) often carry no change time;
    # their records are then dated by their load time.
    timestamp = body.get("timestamp")
    if timestamp is not None:
        timestamp = _column_name(where, name, "timestamp", timestamp)
    return SourceSpec(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        format=fmt,  # type: ignore[arg-type]
        record_key=record_key,
        timestamp=timestamp,
        csv=_parse_csv(where, name, fmt, body.get("csv")),
        delivery=delivery,
        path=_parse_glob(where, name, body.get("path", "*")),
        timestamp_format=_format(where, name, "timestamp_format", body.get("timestamp_format")),
        birth_date_format=_format(where, name, "birth_date_format", body.get("birth_date_format")),
        columns=_parse_columns(where, name, body.get("columns")),
        identity=_parse_identity(where, name, body.get("identity")),
    )


def _column_name(where: str, source: str, key: str, value: object) -> str:
    if value is None:
        raise _fail(where, source, key, f"missing {key} (the column name is required)")
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, source, key, f"column name must be a non-empty string, got {value!r}")
    if value != value.strip() or any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise _fail(
            where, source, key, "column name must not have surrounding blanks or control characters"
        )
    if len(value) > 255:
        raise _fail(where, source, key, "column name longer than 255 characters")
    if value in METADATA_COLUMNS:
        raise _fail(where, source, key, f"column name {value!r} is reserved for load metadata")
    return value


def _parse_csv(where: str, source: str, fmt: str, value: object) -> CsvOptions:
    if value is None:
        return CsvOptions()
    if fmt != "csv":
        raise _fail(where, source, "csv", f"csv options are only allowed for format csv, not {fmt}")
    if not isinstance(value, Mapping):
        raise _fail(where, source, "csv", "must be a mapping {delimiter, encoding, header}")
    for key in value:
        if key not in CSV_KEYS:
            raise _fail(where, source, f"csv.{key}", f"unknown key; allowed: {sorted(CSV_KEYS)}")
    delimiter = value.get("delimiter", ",")
    if (
        not isinstance(delimiter, str)
        or len(delimiter) != 1
        or delimiter in {'"', "\n", "\r", "\x1f"}
    ):
        raise _fail(
            where, source, "csv.delimiter",
            f"delimiter must be one character other than quote or newline, got {delimiter!r}",
        )
    encoding = value.get("encoding", "utf-8")
    normalised = CSV_ENCODINGS.get(str(encoding).lower()) if isinstance(encoding, str) else None
    if normalised is None:
        raise _fail(
            where, source, "csv.encoding",
            f"unknown encoding {encoding!r}; one of {sorted(set(CSV_ENCODINGS.values()))}",
        )
    header = value.get("header", True)
    if not isinstance(header, bool):
        raise _fail(where, source, "csv.header", f"must be true or false, got {header!r}")
    return CsvOptions(delimiter=delimiter, encoding=normalised, header=header)


def _parse_glob(where: str, source: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, source, "path", f"must be a non-empty glob string, got {value!r}")
    pure = PurePosixPath(value)
    if pure.is_absolute() or ".." in pure.parts or "\\" in value:
        raise _fail(where, source, "path", "glob must stay inside landing/<source>/")
    return value


def _format(where: str, source: str, key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "%" not in value:
        raise _fail(
            where, source, key, f"must be a strptime format string like '%d.%m.%Y', got {value!r}"
        )
    return value


def _mapping(where: str, source: str, key: str, value: object, shape: str) -> Mapping[Any, Any]:
    """An optional mapping-valued key: absent is empty, anything but a mapping an error."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, source, key, f"must be a mapping {shape}")
    return value


def _parse_columns(where: str, source: str, value: object) -> dict[str, ColumnType]:
    columns: dict[str, ColumnType] = {}
    for column, type_name in _mapping(where, source, "columns", value, "{column: type}").items():
        name = _column_name(where, source, f"columns.{column}", column)
        if not isinstance(type_name, str) or type_name.lower() not in COLUMN_TYPES:
            raise _fail(
                where, source, f"columns.{column}",
                f"unknown column type {type_name!r}; one of {list(COLUMN_TYPES)}",
            )
        columns[name] = type_name.lower()  # type: ignore[assignment]
    lowered = [c.lower() for c in columns]
    if len(set(lowered)) != len(lowered):
        raise _fail(where, source, "columns", "column names must differ in more than letter case")
    return columns


def _parse_identity(where: str, source: str, value: object) -> dict[str, str]:
    identity: dict[str, str] = {}
    fields = _mapping(where, source, "identity", value, "{canonical_field: column}")
    for canonical, column in fields.items():
        if canonical not in CANONICAL_FIELDS:
            raise _fail(
                where, source, f"identity.{canonical}",
                f"unknown canonical field {canonical!r}; one of {list(CANONICAL_FIELDS)}",
            )
        identity[str(canonical)] = _column_name(where, source, f"identity.{canonical}", column)
    return identity
