"""Request and response bodies of the API, and the error responses every route documents.

An identifier sent for lookup is normalised and hashed while the request is validated, so
only its hash exists past this point.
"""

from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from identity.normalise import normalise_email_value, normalise_phone_value
from profiles.activation.hashing import sha256_hex


class SegmentInfo(BaseModel):
    name: str
    kind: str
    channel: str
    description: str
    offer_id: str | None
    product_group: str | None
    definition_hash: str
    last_export_run_id: str | None
    last_export_rows: int | None


class Member(BaseModel):
    profile_id: str
    email: str | None
    firstname: str | None
    lastname: str | None
    phone: str | None
    address1: str | None
    zipcode: str | None
    city: str | None
    country: str | None


class MembersPage(BaseModel):
    segment: str
    publication_run_id: str | None
    items: list[Member]
    next_cursor: str | None


class Change(BaseModel):
    profile_id: str
    change: str = Field(description="joined or left")


class ChangesPage(BaseModel):
    segment: str
    since: str
    items: list[Change]
    next_cursor: str | None


class LookupRequest(BaseModel):
    """Exactly one identifier; it is normalised and hashed before it is used."""

    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    _kind: str = PrivateAttr(default="")
    _digest: str = PrivateAttr(default="")

    @field_validator("email", "phone")
    @classmethod
    def _normalise(cls, raw: str | None, info: ValidationInfo) -> str | None:
        """Normalise like the identity graph (plus-tags, E.164); a field validator, so an
        invalid value's error is located at its field."""
        if not raw:
            return None
        normalise = normalise_email_value if info.field_name == "email" else normalise_phone_value
        normalised = normalise(raw)
        if normalised is None:
            raise ValueError(f"not a valid {info.field_name}")
        return normalised

    @model_validator(mode="after")
    def _hash(self) -> Self:
        """Keep only the hash of the one identifier given."""
        given = {k: v for k, v in (("email", self.email), ("phone", self.phone)) if v}
        if len(given) != 1:
            raise ValueError("give exactly one of email or phone")
        ((kind, normalised),) = given.items()
        self._kind, self._digest = kind, sha256_hex(normalised)
        return self

    @property
    def hashed(self) -> tuple[str, str]:
        """(kind, SHA-256 hex of the normalised identifier)."""
        return self._kind, self._digest


class LookupMatch(BaseModel):
    profile_id: str
    matched_on: str


class LookupResult(BaseModel):
    matches: list[LookupMatch]


class Problem(BaseModel):
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem,
          "description": "Invalid cursor, or an e-mail address or phone number in the URL."},
    401: {"model": Problem, "description": "Missing or invalid API key."},
    404: {"model": Problem, "description": "Unknown segment, export or profile."},
    503: {"model": Problem, "description": "No publication, or a mart missing from it."},
}
