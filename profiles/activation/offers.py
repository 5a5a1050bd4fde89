"""The offer catalogue (``offers.yml``) and the next best offer for one profile in one channel.

Each offer names its product group, the channels it may be made in, who is eligible (a rule
in the segment language, checked like every segment rule) and a priority (1 is best). For a
profile, every offer of the channel is put through the export's own suppression chain
(:func:`profiles.activation.suppression.suppress`, the candidates narrowed to that profile),
so the answer and an export of the same offer drop the same profiles for the same reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import duckdb
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

from core.config import ConfigError, key_path, read_yaml, validate
from core.vocabulary import CHANNELS
from profiles.activation.config import ActivationConfig
from profiles.activation.parser import parse_condition
from profiles.activation.segment import Segment
from profiles.activation.suppression import suppress
from profiles.activation.syntax import Node, SegmentError

OFFER_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
NOT_ELIGIBLE = ("eligibility", "not_eligible")
NOT_IN_CHANNEL = ("catalogue", "not_offered_in_channel")
"""(step, reason) of the exclusions decided before the chain, in the chain's own format."""


def _channel(name: str) -> str:
    if name not in CHANNELS:
        raise ValueError(f"must be one of {', '.join(CHANNELS)}")
    return name


class OfferEntry(BaseModel):
    """One entry of ``offers:`` in ``offers.yml``."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[StrictStr, Field(pattern=OFFER_ID)]
    description: StrictStr = ""
    product_group: StrictStr | None = None
    channels: Annotated[list[Annotated[StrictStr, AfterValidator(_channel)]],
                        Field(min_length=1)]
    eligible: StrictStr
    """Who may get it: a rule in the segment language (``segments.yml``)."""
    priority: Annotated[int, Field(ge=1)]


class OffersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offers: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Offer:
    id: str
    product_group: str | None
    channels: tuple[str, ...]
    priority: int
    eligible: str
    condition: Node = field(compare=False, repr=False)
    description: str = ""

    def in_channel(self, channel: str) -> Segment:
        """The offer as a segment of ``channel``: what an export of it would select."""
        return Segment(name=self.id, channel=channel, description=self.description,
                       offer_id=self.id, product_group=self.product_group,
                       where=self.eligible, condition=self.condition)


def load_offers(path: Path) -> dict[str, Offer]:
    """Read ``offers.yml`` (absent: no offers), every rule checked; problems name file and
    key (``offers[1].eligible``)."""
    spec = validate(OffersFile, read_yaml(path, required=False) or {}, path)
    offers: dict[str, Offer] = {}
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(spec.offers or []):
        try:
            entry = validate(OfferEntry, item, path, ("offers", index))
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        try:
            condition = parse_condition(entry.id, entry.eligible)
        except SegmentError as error:
            problems.extend((key_path(("offers", index, "eligible")), problem)
                            for _, problem in error.problems)
            continue
        if entry.id in offers:
            problems.append((key_path(("offers", index, "id")),
                             f"offer {entry.id!r} is defined twice"))
            continue
        offers[entry.id] = Offer(entry.id, entry.product_group, tuple(entry.channels),
                                 entry.priority, entry.eligible, condition, entry.description)
    if problems:
        raise ConfigError(path, problems)
    return offers


@dataclass(frozen=True)
class Verdict:
    offer: Offer
    step: str | None = None
    reason: str | None = None
    """``None``: the profile may receive the offer now."""


def next_best_offers(con: duckdb.DuckDBPyConnection, offers: dict[str, Offer],
                     config: ActivationConfig, profile_id: str, channel: str,
                     ) -> list[Verdict]:
    """Every offer of the catalogue for the profile in the channel, best first: the offers it
    may receive now (by priority, then id), then the excluded ones with the chain's reason."""
    verdicts: list[Verdict] = []
    for offer in sorted(offers.values(), key=lambda o: (o.priority, o.id)):
        if channel not in offer.channels:
            verdicts.append(Verdict(offer, *NOT_IN_CHANNEL))
            continue
        result = suppress(con, offer.in_channel(channel), config.policy,
                          table_prefix="offer", events=config.events, profile_id=profile_id)
        if result.candidates == 0:
            verdicts.append(Verdict(offer, *NOT_ELIGIBLE))
            continue
        drop = con.execute(f"SELECT step, reason FROM {result.drops}").fetchone()
        verdicts.append(Verdict(offer, *(drop or (None, None))))
    return sorted(verdicts, key=lambda v: v.reason is not None)
