"""What a source provides besides identity, declared in ``sources.yml`` (source roles).

A role says which of the source's own columns carry a kind of fact and how to read its own
codes, so a company's CRM, newsletter tool or preference centre feeds consent without SQL:
the dbt models union every declaration of a role (``cdp/dbt.py`` hands them over as vars).

``consent`` - statements of opt-in / opt-out::

    consent:
      - channel: email              # a fixed channel; "all" for every channel
        column: newsletter          # the column holding the statement
        opted_in: ["ja", "1"]       # the source's own values (trimmed, any letter case)
        opted_out: ["nein", "0"]    # values listed in neither state nothing
        reason: newsletter sign-up  # or reason_column: a column saying why / where
      - channel_column: channel     # or: the channel named per row ...
        channel_values: {E-Mail: email}   # ... in the source's own words (default: as written)
        column: action
        opted_in: [opt_in]
        opted_out: [opt_out]
        reason_column: origin
        without_contact_point: whole_channel

A statement binds the contact point its channel uses (``core.vocabulary.CHANNEL_CONTACT_POINTS``)
of the record's profile; a record without one states nothing (``skip``) or speaks for the
channel as a whole (``whole_channel``, contact point ``*``). ``contact_point: whole_channel``
makes every statement speak for the whole channel (a "do not contact" flag).

The other roles (one per source at most) name the columns of one kind of fact:
``orders`` (:class:`OrdersRole`), ``engagement`` (e-mail events, :class:`EngagementRole`),
``offer_responses`` (:class:`OfferResponsesRole`), ``tickets`` (:class:`TicketsRole`) and
``preferences`` (:class:`PreferencesRole`). Codes a role reads are the source's own words,
mapped onto the product's vocabulary in the declaration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.vocabulary import CHANNELS

if TYPE_CHECKING:
    from ingest.registry import SourceSpec


def _channel(name: str) -> str:
    if name not in CHANNELS:
        raise PydanticCustomError("role", f"unknown channel; one of {list(CHANNELS)}")
    return name


def _code(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("role", "a value must be a non-empty string")
    return value.strip().lower()


Channel = Annotated[StrictStr, AfterValidator(_channel)]
#: A source's own code, compared trimmed and lower-cased. Quote yes/no/on/off in YAML: they
#: are booleans there, and a boolean is refused rather than guessed.
Code = Annotated[StrictStr, AfterValidator(_code)]


class ConsentStatement(BaseModel):
    """One consent statement a source's records make (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: StrictStr
    channel: Channel | Literal["all"] | None = None
    channel_column: StrictStr | None = None
    channel_values: dict[Code, Channel] = Field(default_factory=dict)
    opted_in: tuple[Code, ...] = ()
    opted_out: tuple[Code, ...] = ()
    contact_point: Literal["channel_default", "whole_channel"] = "channel_default"
    without_contact_point: Literal["skip", "whole_channel"] = "skip"
    reason: StrictStr | None = None
    reason_column: StrictStr | None = None
    #: the reason column's own words -> the reason recorded (default: as written, folded)
    reason_values: dict[Code, Code] = Field(default_factory=dict)
    #: An opt-out also enters the suppression log (false for snapshot flags such as a CRM's
    #: opt-in column, which state a current setting rather than a request).
    suppresses: StrictBool = True
    #: An opt-in lifts an earlier suppression of that contact point: ``true``, or only when
    #: the statement's reason is one of these (e.g. ``[preference_centre]``).
    lifts_suppression: StrictBool | tuple[Code, ...] = False

    @model_validator(mode="after")
    def _one_of_each(self) -> ConsentStatement:
        if (self.channel is None) == (self.channel_column is None):
            raise PydanticCustomError("role", "give exactly one of channel, channel_column")
        if self.channel_values and self.channel_column is None:
            raise PydanticCustomError("role", "channel_values need a channel_column")
        if not self.opted_in and not self.opted_out:
            raise PydanticCustomError("role", "give opted_in or opted_out values (or both)")
        if set(self.opted_in) & set(self.opted_out):
            raise PydanticCustomError("role", "a value cannot mean both opted_in and opted_out")
        if (self.reason is None) == (self.reason_column is None):
            raise PydanticCustomError("role", "give exactly one of reason, reason_column")
        if self.reason_values and self.reason_column is None:
            raise PydanticCustomError("role", "reason_values need a reason_column")
        if isinstance(self.lifts_suppression, tuple) and not self.lifts_suppression:
            raise PydanticCustomError("role", "lifts_suppression: true, false or reasons")
        return self

    @property
    def columns(self) -> list[str]:
        """The source columns this statement reads."""
        return _named(self.column, self.channel_column, self.reason_column)


class _Role(BaseModel):
    """A role naming some of the source's columns; ``columns`` lists them (they become
    required columns of the source's files)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def columns(self) -> list[str]:
        return []


class OrdersRole(_Role):
    """``orders`` - the source's records are orders (its record key the order id, its timestamp
    the order time), feeding RFM, lifetime value and offer redemptions::

        orders: {amount: betrag, product_group: warengruppe, offer: gutschein, channel: pos}
    """

    amount: StrictStr
    product_group: StrictStr | None = None
    #: the column naming a redeemed offer (a coupon): that offer counts as accepted
    offer: StrictStr | None = None
    #: the response channel a redemption is recorded under (e.g. pos, shop)
    channel: Code = "orders"

    @property
    def columns(self) -> list[str]:
        return _named(self.amount, self.product_group, self.offer)


#: Kinds of e-mail engagement event the product knows (traits read unsubscribed and
#: complained; offer responses the rest).
EmailEvent = Literal["sent", "delivered", "opened", "clicked", "bounced", "unsubscribed",
                     "complained"]


class EngagementRole(_Role):
    """``engagement`` - the records are e-mail engagement events of the address they carry::

        engagement:
          type: event_type
          types: {opened: [open], clicked: [click], unsubscribed: [unsubscribe, abmeldung]}
          campaign: campaign_id      # optional; offer, product_group likewise

    A kind not listed does not occur in the source; a value listed under no kind is ignored.
    """

    type: StrictStr
    types: dict[EmailEvent, tuple[Code, ...]]
    campaign: StrictStr | None = None
    offer: StrictStr | None = None
    product_group: StrictStr | None = None

    @model_validator(mode="after")
    def _codes_once(self) -> EngagementRole:
        _refuse_empty_or_repeated(self.types.values(), "types")
        return self

    @property
    def columns(self) -> list[str]:
        return _named(self.type, self.campaign, self.offer, self.product_group)


#: How a customer met or answered an offer (the vocabulary of fct_offer_responses).
Response = Literal["delivered", "opened", "clicked", "accepted", "rejected", "unsubscribed"]


class OfferResponsesRole(_Role):
    """``offer_responses`` - records showing a customer an offer or recording the answer::

        offer_responses:
          offer: angebot
          outcome: ergebnis
          outcomes: {accepted: [angenommen], rejected: [abgelehnt]}
          channel: phone             # or channel_column (+ channel_values {own word: channel})
          product_group: warengruppe # optional

    Only rows naming an offer and an outcome listed here count.
    """

    offer: StrictStr
    outcome: StrictStr
    outcomes: dict[Response, tuple[Code, ...]]
    channel: Code | None = None
    channel_column: StrictStr | None = None
    channel_values: dict[Code, Code] = Field(default_factory=dict)
    product_group: StrictStr | None = None

    @model_validator(mode="after")
    def _one_channel(self) -> OfferResponsesRole:
        _refuse_empty_or_repeated(self.outcomes.values(), "outcomes")
        if (self.channel is None) == (self.channel_column is None):
            raise PydanticCustomError("role", "give exactly one of channel, channel_column")
        if self.channel_values and self.channel_column is None:
            raise PydanticCustomError("role", "channel_values need a channel_column")
        return self

    @property
    def columns(self) -> list[str]:
        return _named(self.offer, self.outcome, self.channel_column, self.product_group)


class TicketsRole(_Role):
    """``tickets`` - support tickets whose text (and subject) the ticket classifier reads::

        tickets: {text: nachricht, subject: betreff}
    """

    text: StrictStr
    subject: StrictStr | None = None

    @property
    def columns(self) -> list[str]:
        return _named(self.text, self.subject)


class WholeForm(BaseModel):
    """Rows whose ``column`` holds one of ``values`` save the whole preference form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: StrictStr
    values: tuple[Code, ...] = Field(min_length=1)


class PreferencesRole(_Role):
    """``preferences`` - contact preferences saved in a preference centre::

        preferences:
          max_contacts: max_kontakte        # at most this many contacts ...
          period: zeitraum                  # ... per week or month
          period_values: {woche: week, monat: month}
          excluded_product_groups: ohne     # product groups not to be offered, separated by
          separator: ","                    # this (default "|")
          whole_form: {column: herkunft, values: [praeferenzcenter]}

    The latest saved preference of a profile wins. A row of the ``whole_form`` kind saves the
    whole form, so its empty fields clear an earlier cap; without it, only rows stating a
    preference count.
    """

    max_contacts: StrictStr | None = None
    period: StrictStr | None = None
    period_values: dict[Code, Literal["week", "month"]] = Field(default_factory=dict)
    excluded_product_groups: StrictStr | None = None
    separator: StrictStr = Field(default="|", min_length=1)
    whole_form: WholeForm | None = None

    @model_validator(mode="after")
    def _states_something(self) -> PreferencesRole:
        if not (self.max_contacts or self.period or self.excluded_product_groups):
            raise PydanticCustomError(
                "role", "name at least one of max_contacts, period, excluded_product_groups")
        if self.period_values and self.period is None:
            raise PydanticCustomError("role", "period_values need a period column")
        return self

    @property
    def columns(self) -> list[str]:
        whole_form = self.whole_form.column if self.whole_form else None
        return _named(self.max_contacts, self.period, self.excluded_product_groups, whole_form)


#: The roles a source has at most once, by their key in sources.yml.
SINGLE_ROLES = ("orders", "engagement", "offer_responses", "tickets", "preferences")


def role_declarations(specs: Iterable[SourceSpec]) -> dict[str, list[dict[str, Any]]]:
    """Per role, every declaration of every source, with the source's name, record key and
    timestamp column: what the role's dbt model unions (the dbt var ``roles``)."""
    specs = list(specs)
    declared = {"consent": [_declared(spec, statement)
                            for spec in specs for statement in spec.consent]}
    for role in SINGLE_ROLES:
        declared[role] = [_declared(spec, getattr(spec, role)) for spec in specs
                          if getattr(spec, role) is not None]
    return declared


def _declared(spec: SourceSpec, role: BaseModel) -> dict[str, Any]:
    """A role's declaration with what the dbt model needs of its source to read it."""
    return {"source": spec.name, "record_key": spec.record_key, "timestamp": spec.timestamp,
            **role.model_dump(mode="json")}


def _named(*columns: str | None) -> list[str]:
    return [column for column in columns if column]


def _refuse_empty_or_repeated(codes: Iterable[tuple[str, ...]], key: str) -> None:
    """A code mapping's own words (per kind) must list something and give every word one
    meaning."""
    codes = list(codes)
    if not any(codes):
        raise PydanticCustomError(
            "role", f"{key}: list the source's own values of at least one kind")
    words = [word for values in codes for word in values]
    if len(set(words)) != len(words):
        raise PydanticCustomError("role", f"{key}: a value can mean only one kind")
