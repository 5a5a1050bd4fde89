"""The offer catalogue (``offers.yml``) and the next best offer for one profile in one channel.

Each offer names its product group, the channels it may be made in, who is eligible (a rule
in the segment language, checked like every segment rule) and a priority (1 is best). For a
profile, every offer of the channel is put through the export's own suppression chain
(:func:`profiles.activation.suppression.suppress`, the candidates narrowed to that profile),
so the answer and an export of the same offer drop the same profiles for the same reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
from profiles.publishing.published import PUBLISHED

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


VERDICTS = "memory.main.offer_verdicts"
"""(profile_id, offer_id, step, reason): every profile's verdict on every offer of the
catalogue in one channel; ``reason`` NULL where the offer may be made now."""


def offer_verdicts(con: duckdb.DuckDBPyConnection, offers: dict[str, Offer],
                   config: ActivationConfig, channel: str, *, profile_id: str | None = None,
                   as_of: datetime | None = None) -> str:
    """Fill :data:`VERDICTS` for every profile (only ``profile_id``, if given) in ``channel``
    as of ``as_of`` (default: now): each offer of the channel through the export's
    suppression chain, its candidates those its eligibility rule selects. One statement per
    offer whether one profile is asked about (the API) or all of them (the serving store)."""
    everyone = (f"SELECT profile_id FROM {PUBLISHED}.main.dim_profiles"
                + (" WHERE profile_id = $profile_id" if profile_id is not None else ""))
    bound = {"profile_id": profile_id} if profile_id is not None else {}
    con.execute(f"CREATE OR REPLACE TABLE {VERDICTS} (profile_id VARCHAR, offer_id VARCHAR, "
                "step VARCHAR, reason VARCHAR)")
    for offer in offers.values():
        if channel not in offer.channels:
            con.execute(f"INSERT INTO {VERDICTS} SELECT profile_id, $offer, $step, $reason "
                        f"FROM ({everyone})", {"offer": offer.id, "step": NOT_IN_CHANNEL[0],
                                               "reason": NOT_IN_CHANNEL[1], **bound})
            continue
        result = suppress(con, offer.in_channel(channel), config.policy, as_of=as_of,
                          table_prefix="offer", events=config.events, profile_id=profile_id)
        con.execute(
            f"INSERT INTO {VERDICTS} SELECT e.profile_id, $offer, "
            f"CASE WHEN d.profile_id IS NOT NULL THEN d.step "
            f"     WHEN m.profile_id IS NULL THEN $step END, "
            f"CASE WHEN d.profile_id IS NOT NULL THEN d.reason "
            f"     WHEN m.profile_id IS NULL THEN $reason END "
            f"FROM ({everyone}) AS e LEFT JOIN {result.drops} AS d USING (profile_id) "
            f"LEFT JOIN {result.members} AS m USING (profile_id)",
            {"offer": offer.id, "step": NOT_ELIGIBLE[0], "reason": NOT_ELIGIBLE[1], **bound})
        con.execute(f"DROP TABLE {result.members}; DROP TABLE {result.drops}")
    return VERDICTS


def ranked(offers: dict[str, Offer],
           verdicts: list[tuple[str, str | None, str | None]]) -> list[Verdict]:
    """(offer_id, step, reason) of one profile as the answer lists them: the offers it may
    receive now by priority, then id, then the excluded ones in the same order."""
    listed = [Verdict(offers[offer_id], step, reason) for offer_id, step, reason in verdicts
              if offer_id in offers]
    return sorted(listed, key=lambda v: (v.reason is not None, v.offer.priority, v.offer.id))


def next_best_offers(con: duckdb.DuckDBPyConnection, offers: dict[str, Offer],
                     config: ActivationConfig, profile_id: str, channel: str,
                     as_of: datetime | None = None) -> list[Verdict]:
    """Every offer of the catalogue for the profile in the channel, best first: the offers it
    may receive now (by priority, then id), then the excluded ones with the chain's reason."""
    table = offer_verdicts(con, offers, config, channel, profile_id=profile_id, as_of=as_of)
    rows = con.execute(f"SELECT offer_id, step, reason FROM {table}").fetchall()
    return ranked(offers, rows)
