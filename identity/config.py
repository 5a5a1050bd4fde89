"""Tunable knobs of identity resolution, loadable from ``config/identity.yml``.

Kept in one frozen dataclass so a run's behaviour is fully described by one object that can
be logged (it holds no PII) and compared between runs.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from identity.normalise import MIN_BIRTH_DATE

DEFAULT_CONFIG_FILE = "identity.yml"


class IdentityConfigError(ValueError):
    """Raised when ``identity.yml`` is malformed; the message names the offending key."""


@dataclass(frozen=True)
class IdentityConfig:
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
        customer_number_sources: sources whose customer numbers are authoritative: a profile
            never holds two different numbers from these.  Empty means every source.
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
        use_splink: switch the probabilistic stage off (rules only), e.g. for debugging.
        model: which Splink model daily runs use - ``auto`` (newest trained version, train
            and save one when none exists), ``train`` (re-estimate in memory every run) or a
            model file path; see :mod:`identity.model_store`.
    """

    default_region: str = "DE"
    match_threshold: float = 0.9
    max_cluster_size: int = 2000
    seed: int = 42
    u_max_pairs: float = 2e6
    default_match_prior: float = 1e-4
    max_identifier_people: int = 10
    customer_number_sources: tuple[str, ...] = ("crm_customers",)
    pairwise_group_limit: int = 30
    first_name_similarity: float = 0.8
    birth_date_guard: bool | str = "auto"
    min_birth_date: dt.date = MIN_BIRTH_DATE
    use_splink: bool = True
    model: str = "auto"

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not (isinstance(self.default_region, str) and len(self.default_region) == 2
                and self.default_region.isalpha()):
            problems.append(f"default_region must be a 2-letter region code, got "
                            f"{self.default_region!r}")
        if not 0.0 < float(self.match_threshold) < 1.0:
            problems.append(f"match_threshold must be in (0, 1), got {self.match_threshold!r}")
        if int(self.max_cluster_size) < 2:
            problems.append(f"max_cluster_size must be >= 2, got {self.max_cluster_size!r}")
        if int(self.max_identifier_people) < 2:
            problems.append(
                f"max_identifier_people must be >= 2, got {self.max_identifier_people!r}")
        if int(self.pairwise_group_limit) < 2:
            problems.append(
                f"pairwise_group_limit must be >= 2, got {self.pairwise_group_limit!r}")
        if not 0.0 <= float(self.first_name_similarity) <= 1.0:
            problems.append(f"first_name_similarity must be in [0, 1], got "
                            f"{self.first_name_similarity!r}")
        if not (isinstance(self.birth_date_guard, bool) or self.birth_date_guard == "auto"):
            problems.append(f"birth_date_guard must be true, false or 'auto', got "
                            f"{self.birth_date_guard!r}")
        floor = _as_date(self.min_birth_date)
        if floor is None:
            problems.append(f"min_birth_date must be a date written YYYY-MM-DD, got "
                            f"{self.min_birth_date!r}")
        elif floor > dt.date.today():
            problems.append(f"min_birth_date must not be in the future, got {floor.isoformat()}")
        if float(self.u_max_pairs) < 1e3:
            problems.append(f"u_max_pairs must be >= 1000, got {self.u_max_pairs!r}")
        if not 0.0 < float(self.default_match_prior) < 1.0:
            problems.append(f"default_match_prior must be in (0, 1), got "
                            f"{self.default_match_prior!r}")
        if not (isinstance(self.model, str) and self.model.strip()):
            problems.append(f"model must be 'auto', 'train' or a model file path, got "
                            f"{self.model!r}")
        if problems:
            raise IdentityConfigError("invalid identity config: " + "; ".join(problems))
        object.__setattr__(self, "default_region", self.default_region.upper())
        object.__setattr__(self, "min_birth_date", floor)
        object.__setattr__(self, "customer_number_sources", tuple(self.customer_number_sources))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IdentityConfig:
        """Build from a plain mapping, rejecting unknown keys and wrong types loudly."""
        data = dict(data or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise IdentityConfigError(
                f"unknown key(s) in identity config: {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(known))}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            default = getattr(cls, name, None) if name != "customer_number_sources" else ()
            try:
                if name == "birth_date_guard":
                    if not (isinstance(value, bool) or value == "auto"):
                        raise TypeError("expected true, false or 'auto'")
                    kwargs[name] = value
                elif name == "min_birth_date":
                    if _as_date(value) is None:
                        raise TypeError("expected a date written YYYY-MM-DD")
                    kwargs[name] = _as_date(value)
                elif isinstance(default, bool):
                    if not isinstance(value, bool):
                        raise TypeError("expected true/false")
                    kwargs[name] = value
                elif isinstance(default, int):
                    if isinstance(value, bool) or float(value) != int(float(value)):
                        raise TypeError("expected an integer")
                    kwargs[name] = int(value)
                elif isinstance(default, float):
                    if isinstance(value, bool):
                        raise TypeError("expected a number")
                    kwargs[name] = float(value)
                elif name == "customer_number_sources":
                    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                        raise TypeError("expected a list of source names")
                    kwargs[name] = tuple(value)
                else:
                    if not isinstance(value, str):
                        raise TypeError("expected a string")
                    kwargs[name] = value
            except (TypeError, ValueError) as exc:
                raise IdentityConfigError(
                    f"identity config key {name!r}: {exc} (got {value!r})") from exc
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> IdentityConfig:
        """Load ``identity.yml``; the settings may sit at top level or under ``identity:``."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IdentityConfigError(f"identity config file not found: {path}") from exc
        except yaml.YAMLError as exc:
            raise IdentityConfigError(f"identity config {path} is not valid YAML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise IdentityConfigError(f"identity config {path} is not UTF-8 text: {exc}") from exc
        except ValueError as exc:  # YAML reads 1800-13-01 as a date and fails on it
            raise IdentityConfigError(
                f"identity config {path} holds an impossible date ({exc}); dates such as "
                f"min_birth_date must be real dates written YYYY-MM-DD") from exc
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise IdentityConfigError(f"identity config {path} must be a mapping")
        if "identity" in raw:
            raw = raw["identity"] or {}
            if not isinstance(raw, dict):
                raise IdentityConfigError(f"'identity' in {path} must be a mapping")
        return cls.from_dict(raw)


def _as_date(value: object) -> dt.date | None:
    """A ``date`` (YAML reads an unquoted 1850-01-01 as one) or an ISO ``YYYY-MM-DD`` string;
    ``None`` for anything else (datetimes, numbers, other formats)."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def load_config(path: str | Path | None = None) -> IdentityConfig:
    """Load the project's identity config (``$CDP_CONFIG/identity.yml``); defaults if absent."""
    if path is None:
        from cdp.settings import config_dir

        candidate = config_dir() / DEFAULT_CONFIG_FILE
        if not candidate.exists():
            return IdentityConfig()
        path = candidate
    return IdentityConfig.from_yaml(path)
