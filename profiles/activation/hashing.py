"""Hashed identifiers for ad-platform audiences (Google Customer Match, Meta custom audiences).

Both platforms match SHA-256 hex digests of normalised identifiers, with different rules:

* email, both platforms: trim and lower-case, nothing else (the identity resolver's extra
  rules - plus-tags, Gmail dots - are *not* part of the platforms' spec);
* phone, Google: E.164 *with* the leading ``+`` (``+4915123456789``);
* phone, Meta: digits only with country code, no ``+`` and no leading zeros (``4915123456789``).

The Python functions below state the rules for single values (the API, tests); exports hash
millions of rows inside DuckDB with the ``*_SQL`` templates, which apply the same rules to the
warehouse's phones - already E.164 - and are checked against the Python functions in tests.
"""

from __future__ import annotations

import hashlib

from identity.normalise import normalise_phone_value


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ad_email(raw: str) -> str | None:
    """The platforms' email normalisation: trimmed and lower-cased."""
    text = raw.strip().lower()
    return text if "@" in text else None


def google_phone(raw: str, region: str = "DE") -> str | None:
    """E.164 with ``+``, as Google Customer Match wants it before hashing."""
    return normalise_phone_value(raw, region)


def meta_phone(raw: str, region: str = "DE") -> str | None:
    """Country code and number as digits, as Meta wants it before hashing."""
    e164 = normalise_phone_value(raw, region)
    return e164.lstrip("+") if e164 else None


def hashed(value: str | None) -> str | None:
    return sha256_hex(value) if value is not None else None


EMAIL_SQL = "sha256(lower(trim({})))"
GOOGLE_PHONE_SQL = "sha256({})"
META_PHONE_SQL = "sha256(ltrim({}, '+'))"
"""SQL twins of ad_email / google_phone / meta_phone over an E.164 (or NULL) column."""
