"""The source registry: ``config/sources.yml`` validated into typed specs (pydantic).

Why validate up front: every source name becomes a table name and every column name becomes a
quoted identifier in SQL, so a typo or a hostile value must fail loudly at load time (naming the
file, the dotted key and the problem) instead of half-way through an ingest run. Every stage
that needs a source's shape (ingest, quality, identity) reads it from :class:`SourceSpec`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.config import ConfigError, read_yaml, validate
from core.vocabulary import CANONICAL_FIELDS, COMPOSED_KEY, METADATA_COLUMNS
from ingest.roles import (
    SINGLE_ROLES,
    ConsentStatement,
    EngagementRole,
    OfferResponsesRole,
    OrdersRole,
    PreferencesRole,
    TicketsRole,
)

Kind = Literal["online", "offline"]
Format = Literal["csv", "jsonl", "parquet"]
ColumnType = Literal["varchar", "date", "timestamp", "double", "bigint", "boolean"]
#: snapshot: every file is the full current set of records (a CRM dump); incremental: every
#: file holds new or changed records only (events, orders, change feeds). Decides what the
#: quality gate compares a delivery with; unset, the gate infers it and says so.
Delivery = Literal["snapshot", "incremental"]

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
MAX_COLUMN_NAME_LENGTH = 255
#: Characters a CSV delimiter may not be: quoting, line ends, and the line-scan separator.
FORBIDDEN_DELIMITERS = frozenset({'"', "\n", "\r", "\x1f"})


class RegistryError(ConfigError):
    """The registry file is unreadable or violates the schema; each problem names file and key."""


def _problem(text: str) -> PydanticCustomError:
    """A validation problem in our words (pydantic reports it at the offending key)."""
    return PydanticCustomError("registry", text)


def _source_name(name: str) -> str:
    if not SOURCE_NAME_RE.fullmatch(name):
        raise _problem("bad source name: must match [a-z][a-z0-9_]* (a safe SQL identifier)")
    if len(name) > MAX_NAME_LENGTH or "__" in name:
        raise _problem(f"bad source name: at most {MAX_NAME_LENGTH} characters and no '__' "
                       "(reserved for <source>__rejected)")
    return name


def _column_name(name: str) -> str:
    if not name.strip():
        raise _problem("column name must be a non-empty string")
    if name != name.strip() or any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        raise _problem("column name must not have surrounding blanks or control characters")
    if len(name) > MAX_COLUMN_NAME_LENGTH:
        raise _problem(f"column name longer than {MAX_COLUMN_NAME_LENGTH} characters")
    if name in METADATA_COLUMNS:
        raise _problem("column name is reserved for load metadata")
    return name


def _canonical_field(name: str) -> str:
    if name not in CANONICAL_FIELDS:
        raise _problem(f"unknown canonical field; one of {list(CANONICAL_FIELDS)}")
    return name


def _glob(pattern: str) -> str:
    pure = PurePosixPath(pattern)
    if not pattern.strip():
        raise _problem("must be a non-empty glob string")
    if pure.is_absolute() or ".." in pure.parts or "\\" in pattern:
        raise _problem("glob must stay inside landing/<source>/")
    return pattern


def _strptime_format(text: str) -> str:
    if "%" not in text:
        raise _problem("must be a strptime format string like '%d.%m.%Y'")
    return text


def _delimiter(text: str) -> str:
    if len(text) != 1 or text in FORBIDDEN_DELIMITERS:
        raise _problem("delimiter must be one character other than quote or newline")
    return text


def _encoding(name: str) -> str:
    normalised = CSV_ENCODINGS.get(name.lower())
    if normalised is None:
        raise _problem(f"unknown encoding; one of {sorted(set(CSV_ENCODINGS.values()))}")
    return normalised


#: Joins the parts of a composed record key (``record_key: [a, b]``); a part's own ``|`` and
#: ``\\`` are escaped with a backslash, so two different part lists never compose alike.
KEY_SEPARATOR = "|"


def _key_list(value: object) -> object:
    """``record_key: id`` is the one-column list ``[id]``."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple):
        raise _problem("record_key must be a column name or a list of column names")
    return value


def _distinct_key_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    if not columns:
        raise _problem("record_key must name at least one column")
    if len({column.lower() for column in columns}) != len(columns):
        raise _problem("record_key lists a column twice (column names compare in any case)")
    return columns


def compose_key(parts: Sequence[object]) -> str | None:
    """A composed record key from its parts' values, as ingest builds it in SQL
    (:func:`composed_key_sql`): each part as text, spaces trimmed, ``\\`` and ``|`` escaped,
    joined by ``|``. None when a part is missing or blank (such a row is quarantined)."""
    texts = [None if part is None else str(part).strip(" ") for part in parts]
    if any(not text for text in texts):
        return None
    return KEY_SEPARATOR.join(
        str(text).replace("\\", "\\\\").replace(KEY_SEPARATOR, "\\" + KEY_SEPARATOR)
        for text in texts)


def composed_key_sql(parts: Sequence[str]) -> str:
    """SQL of :func:`compose_key` over the parts' text expressions (VARCHAR): NULL when a
    part is NULL or blank."""
    escaped = [f"replace(replace(nullif(trim({part}), ''), '\\', '\\\\'), '|', '\\|')"
               for part in parts]
    return " || '|' || ".join(escaped)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


SourceName = Annotated[StrictStr, AfterValidator(_source_name)]
ColumnName = Annotated[StrictStr, AfterValidator(_column_name)]
#: ``record_key``: one column, or a list of columns the key is composed of.
KeyColumns = Annotated[tuple[ColumnName, ...], BeforeValidator(_key_list),
                       AfterValidator(_distinct_key_columns)]
CanonicalField = Annotated[StrictStr, AfterValidator(_canonical_field)]
StrptimeFormat = Annotated[StrictStr, AfterValidator(_strptime_format)]
#: Column types are case-insensitive in the file and lower case in the spec.
TypeName = Annotated[ColumnType, BeforeValidator(_lower)]


class CsvOptions(BaseModel):
    """How to split a CSV file: one delimiter character, a native encoding, header or not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: Annotated[StrictStr, AfterValidator(_delimiter)] = ","
    encoding: Annotated[StrictStr, AfterValidator(_encoding)] = "utf-8"
    header: StrictBool = True


class Freshness(BaseModel):
    """How old the newest load of a source may be before ``dbt source freshness`` warns or
    errs (hours; measured on the load time ``_loaded_at``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_after_hours: Annotated[StrictInt, Field(gt=0)] | None = None
    error_after_hours: Annotated[StrictInt, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> Freshness:
        if self.warn_after_hours is None and self.error_after_hours is None:
            raise _problem("give warn_after_hours, error_after_hours or both")
        if (self.warn_after_hours and self.error_after_hours
                and self.warn_after_hours >= self.error_after_hours):
            raise _problem("warn_after_hours must be less than error_after_hours")
        return self


class SourceSpec(BaseModel):
    """One registered landing source, as ingest, quality, identity and dbt need it.

    ``name`` is the source's key in the registry (set by :class:`Registry`'s validation);
    ``identity`` maps canonical fields onto this source's columns, in the file's order.
    ``record_key`` in the file is one column or a list (``key_columns``); the raw column that
    identifies a record is :attr:`record_key` either way.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # kind and format first: later validators read the format
    kind: Kind
    format: Format
    key_columns: KeyColumns = Field(alias="record_key")
    # Optional: snapshot exports (a CRM dump, a benchmark file) often carry no change time;
    # their records are then dated by their load time.
    timestamp: ColumnName | None = None
    csv: CsvOptions = Field(default_factory=CsvOptions)
    delivery: Delivery | None = None
    path: Annotated[StrictStr, AfterValidator(_glob)] = "*"
    timestamp_format: StrptimeFormat | None = None
    birth_date_format: StrptimeFormat | None = None
    columns: dict[ColumnName, TypeName] = Field(default_factory=dict)
    identity: dict[CanonicalField, ColumnName] = Field(default_factory=dict)
    freshness: Freshness | None = None
    #: Source roles (``ingest/roles.py``): what the records state besides identity.
    consent: tuple[ConsentStatement, ...] = ()
    orders: OrdersRole | None = None
    engagement: EngagementRole | None = None
    offer_responses: OfferResponsesRole | None = None
    tickets: TicketsRole | None = None
    preferences: PreferencesRole | None = None

    _name: str = PrivateAttr(default="")

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        """``csv:``, ``columns:`` or ``identity:`` left empty in YAML mean their default."""
        if isinstance(data, Mapping):
            empty = ("csv", "columns", "identity", "consent")
            return {k: v for k, v in data.items() if not (k in empty and v is None)}
        return data

    @field_validator("csv")
    @classmethod
    def _csv_only_for_csv(cls, options: CsvOptions, info: ValidationInfo) -> CsvOptions:
        fmt = info.data.get("format")
        if fmt is not None and fmt != "csv":
            raise _problem("csv options are only allowed for format csv")
        return options

    @field_validator("columns")
    @classmethod
    def _columns_differ_in_case(cls, columns: dict[str, ColumnType]) -> dict[str, ColumnType]:
        lowered = [c.lower() for c in columns]
        if len(set(lowered)) != len(lowered):
            raise _problem("column names must differ in more than letter case")
        return columns

    @property
    def name(self) -> str:
        return self._name

    @property
    def composite_key(self) -> bool:
        """The record key is composed of several columns (``record_key: [a, b]``)."""
        return len(self.key_columns) > 1

    @property
    def record_key(self) -> str:
        """The raw column that identifies a record: the key column, or for a composite key
        ``_record_key``, which ingest fills from the key columns (:func:`compose_key`)."""
        return COMPOSED_KEY if self.composite_key else self.key_columns[0]

    @property
    def raw_columns(self) -> list[str]:
        """Columns ``raw.<source>`` always has: the required ones and a composed key."""
        return [*self.required_columns, *([COMPOSED_KEY] if self.composite_key else [])]

    @property
    def table(self) -> str:
        """Name of the append-only raw table (schema ``raw``)."""
        return self._name

    @property
    def rejected_table(self) -> str:
        """Name of the quarantine table (schema ``raw``)."""
        return f"{self._name}__rejected"

    @property
    def column_types(self) -> dict[str, ColumnType]:
        """Typed columns; the timestamp column is a timestamp unless declared otherwise."""
        types: dict[str, ColumnType] = dict(self.columns)
        if self.timestamp:
            types.setdefault(self.timestamp, "timestamp")
        return types

    @property
    def required_columns(self) -> list[str]:
        """Columns every file must carry: record key column(s), timestamp, typed, identity and
        role columns."""
        roles = [column for statement in self.consent for column in statement.columns]
        for name in SINGLE_ROLES:
            role = getattr(self, name)
            roles += role.columns if role is not None else []
        ordered = [*self.key_columns, self.timestamp, *self.identity.values(), *self.columns,
                   *roles]
        return [column for column in dict.fromkeys(ordered) if column]


class _RegistryFile(BaseModel):
    """The shape of ``sources.yml``: a non-empty mapping of source name to spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: dict[SourceName, SourceSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _name_specs(self) -> _RegistryFile:
        for name, spec in self.sources.items():
            spec._name = name
        return self


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


def load_registry(path: str | Path) -> Registry:
    """Read and validate the registry YAML; raise ``RegistryError`` naming file, key, problem."""
    path = Path(path)
    try:
        document = read_yaml(path)
    except ConfigError as error:
        raise RegistryError(error.file, error.problems) from None
    return parse_registry(document, path)


def parse_registry(document: Any, path: Path | str = "<registry>") -> Registry:
    """Validate an already-parsed registry document (a mapping with ``sources``)."""
    try:
        parsed = validate(_RegistryFile, document, path)
    except ConfigError as error:
        raise RegistryError(error.file, error.problems) from None
    return Registry(sources=parsed.sources, path=Path(path))
