"""Request and response bodies of the API, and the error responses every route documents.

An identifier sent for lookup is normalised and hashed while the request is validated, so
only its hash exists past this point.
"""

from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import (
    AwareDatetime,
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
from profiles.activation.hot_events import OPT_IN, OPT_OUT

PROFILE_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
Channel = Literal["email", "sms", "phone", "post", "online_ads"]
"""``core.vocabulary.CHANNELS`` as a type, so the schema lists them (a test keeps them equal)."""
EVENT_ID = r"^[A-Za-z0-9_.:-]{1,128}$"


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


class Event(BaseModel):
    """One real-time event; ``email`` / ``phone`` are checked as the identity stage normalises
    them, landed as given (the next run normalises them like any source's)."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(pattern=EVENT_ID, description="Unique per event: a repeat is "
                          "acknowledged, not landed again.")
    type: Literal["unsubscribe", "consent", "delivery", "response"]
    channel: Channel | Literal["all"] = Field(
        description="'all' only for unsubscribe and consent.")
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When it happened (default, and at the latest: received).")
    profile_id: str | None = Field(default=None, pattern=PROFILE_ID)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    status: Literal["opted_in", "opted_out"] | None = Field(
        default=None, description="consent only.")
    offer_id: str | None = Field(default=None, max_length=128,
                                 description="delivery and response.")
    product_group: str | None = Field(default=None, max_length=128)
    outcome: Literal["opened", "clicked", "accepted", "rejected", "unsubscribed"] | None = (
        Field(default=None, description="response only."))

    @field_validator("email", "phone")
    @classmethod
    def _identifier(cls, raw: str | None, info: ValidationInfo) -> str | None:
        if not raw or not raw.strip():
            return None
        normalise = normalise_email_value if info.field_name == "email" else normalise_phone_value
        if normalise(raw) is None:
            raise ValueError(f"not a valid {info.field_name}")
        return raw.strip()

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not (self.profile_id or self.email or self.phone):
            raise ValueError("give profile_id, email or phone")
        if (self.status is None) == (self.type == "consent"):
            raise ValueError("status is required for consent and only there")
        if (self.offer_id is None) == (self.type in ("delivery", "response")):
            raise ValueError("offer_id is required for delivery and response and only there")
        if (self.outcome is None) == (self.type == "response"):
            raise ValueError("outcome is required for response and only there")
        if self.channel == "all" and self.type not in ("unsubscribe", "consent"):
            raise ValueError("channel 'all' is for unsubscribe and consent only")
        return self

    def landed(self, received_at: datetime, email: str | None,
               phone: str | None) -> dict[str, Any]:
        """The line landed for the ``api_events`` source (``hot_events.FIELDS``); ``email`` /
        ``phone`` identify the person for the next run (the profile's own when the event
        named only its id)."""
        received = received_at.astimezone(UTC)
        occurred = min(self.occurred_at.astimezone(UTC), received) if self.occurred_at \
            else received
        consent = (OPT_OUT if self.type == "unsubscribe"
                   else {"opted_in": OPT_IN, "opted_out": OPT_OUT}.get(self.status or ""))
        every_channel = self.channel == "all"
        return {
            "event_id": self.event_id, "event_type": self.type,
            "event_ts": occurred.replace(tzinfo=None).isoformat(),
            "received_at": received.replace(tzinfo=None).isoformat(),
            "channel": self.channel,
            "consent": None if every_channel else consent,
            "consent_all_channels": consent if every_channel else None,
            "offer_id": self.offer_id, "product_group": self.product_group,
            "outcome": "delivered" if self.type == "delivery" else self.outcome,
            "profile_id": self.profile_id, "email": email, "phone": phone,
        }


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Event] = Field(min_length=1, max_length=1000)


class EventsAccepted(BaseModel):
    written: list[str] = Field(description="Event ids landed by this request.")
    duplicates: list[str] = Field(description="Event ids landed before: not written again.")


class OfferProposal(BaseModel):
    offer_id: str
    description: str
    product_group: str | None
    priority: int


class OfferExclusion(OfferProposal):
    step: str = Field(description="eligibility, catalogue, or the suppression step.")
    reason: str = Field(description="The chain's reason code (no_opt_in, "
                        "suppressed_identifier, cap_reached_per_week, ...).")


class OffersAnswer(BaseModel):
    profile_id: str
    channel: str
    publication_run_id: str | None
    offers: list[OfferProposal] = Field(description="What the profile may receive now, best "
                                        "first.")
    excluded: list[OfferExclusion]


class ConsentRow(BaseModel):
    channel: str
    contact_point: str
    status: str
    is_contactable: bool
    decided_at: datetime | None


class ProfileRecord(BaseModel):
    """The golden record: ``profile_id`` and every attribute of ``dim_profiles`` with its
    ``<attr>_source`` / ``<attr>_at`` (e-mail and phone as deliverable values), consent per
    channel and contact point, traits."""

    model_config = ConfigDict(extra="allow")
    profile_id: str
    consent: list[ConsentRow]
    traits: dict[str, Any] | None


class Health(BaseModel):
    status: Literal["ok"]
    publication_run_id: str | None


class Problem(BaseModel):
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem,
          "description": "Invalid cursor, or an e-mail address or phone number in the URL."},
    401: {"model": Problem, "description": "Missing or invalid API key."},
    413: {"model": Problem, "description": "Request body too large (api.yml "
          "max_request_bytes)."},
    429: {"model": Problem, "description": "Too many requests for this key (api.yml "
          "rate_limit); see Retry-After."},
    404: {"model": Problem, "description": "Unknown segment, export or profile."},
    503: {"model": Problem, "description": "No publication, or a mart missing from it."},
}
