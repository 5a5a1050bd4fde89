"""Tunable knobs of identity resolution, loadable from ``config/identity.yml``.

Kept in one frozen pydantic model so a run's behaviour is fully described by one object that
can be logged (it holds no PII), compared between runs and handed to dbt as plain vars.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
)

from core.config import ConfigError, key_path, read_yaml, validate
from identity.normalise.birth_date import MIN_BIRTH_DATE

DEFAULT_CONFIG_FILE = "identity.yml"


class IdentityConfigError(ConfigError):
    """``identity.yml`` (or the settings given in code) is invalid; names file, key, problem."""


def _not_bool(value: object) -> object:
    """YAML's ``true`` is no number: bools would otherwise pass as 1 / 1.0."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


def _as_date(value: object) -> dt.date:
    """A ``date`` (YAML reads an unquoted 1850-01-01 as one) or an ISO ``YYYY-MM-DD`` string;
    nothing else (datetimes, numbers, other formats)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError("expected a date written YYYY-MM-DD")


Number = Annotated[float, BeforeValidator(_not_bool)]
Integer = Annotated[int, BeforeValidator(_not_bool)]
Date = Annotated[dt.date, BeforeValidator(_as_date)]
#: Canonical fields that may be declared strong identifiers (``strong_identifiers``): each
#: names one person.  E-mails, phones and cookies are shared by households and devices, and
#: names and addresses are no identifiers at all.
STRONG_FIELDS: tuple[str, ...] = ("customer_number", "national_id", "loyalty_card", "user_id")
#: The sources with authority over a strong identifier: source names, or every source.
Authority = tuple[StrictStr, ...] | Literal["all"]


def _default_strong() -> dict[str, Authority]:
    return {"customer_number": ("crm_customers",)}


#: The key ``strong_identifiers`` replaced.
_REPLACED_KEYS = {"customer_number_sources": "strong_identifiers"}


class IdentityConfig(BaseModel):
    """Settings for :func:`identity.resolve`.

    Attributes:
        default_region: ISO 3166 region used to parse phone numbers without a country code.
        match_threshold: Splink match probability above which a pair becomes an edge.
        max_cluster_size: refuse merges that would make a profile span more identity nodes
            than this (a guard against hub identifiers such as a shop's own e-mail address).
        seed: seed for Splink's random sampling so training is reproducible.
        u_max_pairs: pairs sampled to estimate Splink u probabilities.
        default_match_prior: Splink's prior ``probability_two_random_records_match`` when it
            cannot be estimated: the deterministic rules (same e-mail or phone and first name;
            same first name, last name and birth date) admit fewer than a handful of pairs,
            e.g. in a source without e-mails, phones and birth dates.  The default 1e-4
            means one pair in 10,000 is the same person.
        max_identifier_people: an e-mail/phone/cookie shared by more distinct names than this
            is a generic identifier (info@, a call centre, a shop terminal) and yields no edges.
        strong_identifiers: the identifiers that prove identity, each with the sources that
            have authority over it (a list of source names, or ``all``), e.g.
            ``{customer_number: [crm_customers], national_id: [bank_kyc]}``.  Where a source
            has authority, two records sharing the value are one person (a hard rule edge,
            ``same_<field>``; like every hard edge it yields only to a person conflict:
            first names and birth dates both clearly different), and no profile ever holds
            two different values of the field from such sources (the merge is refused,
            ``<field>_conflict``; the quality gate checks it too).  A value from any other
            source is evidence only as its rule in :mod:`identity.rules` says: a customer
            number, loyalty card or user id, which we issue ourselves, links wherever it
            appears (and never vetoes); a national id from a source without authority is
            soft evidence (``same_national_id_unconfirmed``, refused like a shared e-mail
            when the people clearly differ).  An identifier not named here has no authority
            anywhere.  This key replaces the former ``customer_number_sources`` (one idea,
            one key): an identity.yml still holding that key is refused with the replacement
            spelled out, never half-read.
        pairwise_group_limit: identifier groups up to this many nodes get all-pairs rule
            edges (so conflict checks can pick the right partner); larger groups get a star.
        first_name_similarity: Jaro-Winkler below which two first names "clearly conflict"
            when deciding whether a shared e-mail/phone is a household rather than a person.
        birth_date_guard: refuse merges joining clearly different birth dates (more than a
            typo, a day/month swap or a year slip apart).  ``"auto"`` (default) checks the
            data first: if confident Splink matches disagree on birth date too often, birth
            dates are unreliable in this data and the guard is switched off for the run.
        min_birth_date: earliest birth date taken as real; earlier ones are dropped as junk
            (for living customers a birth before 1900 is a typo or a placeholder).  The
            classic "unknown" placeholder 1900-01-01 is dropped whatever the floor.  Lower
            it only for data about people who really were born earlier (historical records).
        blocking_comparisons_per_record: the blocking rules beyond the core ones (street and
            house number, postcode alone, last name and first initial, ...; see
            :mod:`identity.splink_model`) run, in order, while together they create at most
            this many comparisons per scored record on this data: more recall where it is
            cheap, bounded cost.
        use_splink: switch the probabilistic stage off (rules only), e.g. for debugging.
        model: which Splink model daily runs use - ``auto`` (newest trained version, trained
            and saved by the training step when none exists), ``train`` (re-estimate in memory
            every run) or a model file path; see :mod:`identity.model_store`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_region: StrictStr = "DE"
    match_threshold: Annotated[Number, Field(gt=0.0, lt=1.0)] = 0.9
    max_cluster_size: Annotated[Integer, Field(ge=2)] = 2000
    seed: Integer = 42
    u_max_pairs: Annotated[Number, Field(ge=1e3)] = 2e6
    default_match_prior: Annotated[Number, Field(gt=0.0, lt=1.0)] = 1e-4
    max_identifier_people: Annotated[Integer, Field(ge=2)] = 10
    # fields are checked against STRONG_FIELDS by ``_strong``
    strong_identifiers: dict[str, Authority] = Field(default_factory=_default_strong)
    pairwise_group_limit: Annotated[Integer, Field(ge=2)] = 30
    first_name_similarity: Annotated[Number, Field(ge=0.0, le=1.0)] = 0.8
    birth_date_guard: StrictBool | Literal["auto"] = "auto"
    min_birth_date: Date = MIN_BIRTH_DATE
    blocking_comparisons_per_record: Annotated[Number, Field(ge=0.0)] = 1.0
    use_splink: StrictBool = True
    model: StrictStr = "auto"

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not (len(value) == 2 and value.isalpha()):
            raise ValueError("must be a 2-letter region code")
        return value.upper()

    @field_validator("strong_identifiers", mode="before")
    @classmethod
    def _strong(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of identifier field to its authoritative "
                             "sources, e.g. {national_id: [crm_customers]}")
        for field, sources in value.items():
            if field not in STRONG_FIELDS:
                raise ValueError(f"{field!s:.40}: not an identifier that names one person; "
                                 f"one of {', '.join(STRONG_FIELDS)}")
            if isinstance(sources, str) and sources != "all":
                raise ValueError(f"{field}: a list of source names, or 'all'")
            if isinstance(sources, list | tuple) and not sources:
                raise ValueError(f"{field}: names no source; list the sources with authority "
                                 "over it, or 'all' for every source")
            if isinstance(sources, list | tuple) and len(set(map(str, sources))) < len(sources):
                raise ValueError(f"{field}: names a source twice")
        return value

    def authoritative_sources(self, field: str) -> tuple[str, ...] | None:
        """The sources with authority over ``field`` (``()``: every source); None where the
        field is no strong identifier."""
        sources = self.strong_identifiers.get(field)
        if sources is None:
            return None
        return () if sources == "all" else tuple(sources)

    @field_validator("min_birth_date")
    @classmethod
    def _not_future(cls, value: dt.date) -> dt.date:
        if value > dt.date.today():
            raise ValueError("must not be in the future")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model must be 'auto', 'train' or a model file path")
        return value

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, file: str | Path = "identity config",
                  prefix: tuple[int | str, ...] = ()) -> IdentityConfig:
        """Validate a plain mapping (unknown keys and wrong types rejected loudly)."""
        replaced = [(key_path((*prefix, old)), f"replaced by {new}: write {new}: "
                     f"{{customer_number: [<sources>]}} (and any further strong identifier "
                     f"with its sources, e.g. national_id)")
                    for old, new in _REPLACED_KEYS.items() if old in (data or {})]
        if replaced:
            raise IdentityConfigError(file, replaced)
        try:
            return validate(cls, dict(data or {}), file, prefix)
        except ConfigError as error:
            raise IdentityConfigError(error.file, error.problems) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> IdentityConfig:
        """Load ``identity.yml``; the settings may sit at top level or under ``identity:``."""
        try:
            raw = read_yaml(path)
        except ConfigError as error:
            raise IdentityConfigError(error.file, error.problems) from None
        except ValueError:  # YAML reads 1800-13-01 as a date and fails on it
            raise IdentityConfigError(path, [("", "holds an impossible date; dates such as "
                                              "min_birth_date must be real dates written "
                                              "YYYY-MM-DD")]) from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise IdentityConfigError(path, [("", "must be a mapping")])
        prefix: tuple[int | str, ...] = ()
        if "identity" in raw:
            raw, prefix = raw["identity"] or {}, ("identity",)
            if not isinstance(raw, dict):
                raise IdentityConfigError(path, [("identity", "must be a mapping")])
        return cls.from_dict(raw, path, prefix)

    def to_vars(self) -> dict[str, Any]:
        """Plain JSON values (dates as ISO text) for dbt ``--vars``; :meth:`from_dict` reads
        them back to an equal config."""
        return self.model_dump(mode="json")


def load_config(path: str | Path | None = None) -> IdentityConfig:
    """Load ``identity.yml`` at ``path``; defaults when no path is given or the file is
    absent (where the file is is the caller's business: the CLI's configuration folder)."""
    if path is None or not Path(path).exists():
        return IdentityConfig()
    return IdentityConfig.from_yaml(path)
