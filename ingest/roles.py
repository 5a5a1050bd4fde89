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
        if isinstance(self.lifts_suppression, tuple) and not self.lifts_suppression:
            raise PydanticCustomError("role", "lifts_suppression: true, false or reasons")
        return self

    @property
    def columns(self) -> list[str]:
        """The source columns this statement reads."""
        named = [self.column, self.channel_column, self.reason_column]
        return [column for column in named if column]


class OrdersRole(BaseModel):
    """``orders`` - the source's records are orders (its record key the order id, its timestamp
    the order time), feeding RFM, lifetime value and offer redemptions::

        orders: {amount: betrag, product_group: warengruppe, offer: gutschein, channel: pos}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: StrictStr
    product_group: StrictStr | None = None
    #: the column naming a redeemed offer (a coupon): that offer counts as accepted
    offer: StrictStr | None = None
    #: the response channel a redemption is recorded under (e.g. pos, shop)
    channel: Annotated[StrictStr, AfterValidator(_code)] = "orders"

    @property
    def columns(self) -> list[str]:
        return [column for column in (self.amount, self.product_group, self.offer) if column]


def order_declarations(specs: Iterable[SourceSpec]) -> list[dict[str, Any]]:
    """Every source with the ``orders`` role, with its record key and timestamp column: what
    the orders model unions (the dbt var ``order_sources``)."""
    return [_declared(spec, spec.orders) for spec in specs if spec.orders is not None]


def consent_declarations(specs: Iterable[SourceSpec]) -> list[dict[str, Any]]:
    """Every consent statement of every source, with the source's name, record key and
    timestamp column: what the consent model unions (as the dbt var ``consent_statements``)."""
    return [_declared(spec, statement) for spec in specs for statement in spec.consent]


def _declared(spec: SourceSpec, role: BaseModel) -> dict[str, Any]:
    """A role's declaration with what the dbt model needs of its source to read it."""
    return {"source": spec.name, "record_key": spec.record_key, "timestamp": spec.timestamp,
            **role.model_dump(mode="json")}
