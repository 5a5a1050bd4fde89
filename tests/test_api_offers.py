"""Next best offer: ``GET /profiles/{id}/offers`` agrees with the export chain on every profile
of the 1,000-person demo - the same offers proposed, the same profiles excluded for the same
reasons - with hot events (deliveries, a rejection, an unsubscribe) posted first, so the
frequency cap, the cool-down and the consent step all decide something."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cdp.context import RunContext
from core.config import ConfigError
from core.paths import DataPaths
from profiles.activation.config import ActivationConfig
from profiles.activation.export import export_segment
from profiles.activation.offers import load_offers
from profiles.api.app import create_app
from profiles.publishing.published import open_published

pytestmark = pytest.mark.integration

READ, WRITE = "offers-read-key", "offers-write-key"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def client(demo_home_copy: DataPaths, tmp_path: Path) -> Iterator[TestClient]:
    api = tmp_path / "api.yml"
    # every profile is asked about, faster than the default rate limit allows one key
    api.write_text("key_sha256: []\nrate_limit: {per_second: 100000, burst: 100000}\n")
    app = create_app(demo_home_copy, api, REPO / "config" / "segments.yml", [READ], [WRITE],
                     offers_config=REPO / "config" / "offers.yml")
    with TestClient(app, headers={"X-API-Key": READ}) as client:
        yield client


def _offered(client: TestClient, profile: str, channel: str = "email") -> list[str]:
    body = client.get(f"/profiles/{profile}/offers", params={"channel": channel}).json()
    return [offer["offer_id"] for offer in body["offers"]]


def _post_hot_events(client: TestClient, profiles: list[str]) -> list[str]:
    """A dozen deliveries now (above any cap), a rejection of OF-002 on the phone, an
    unsubscribe from everything: each for a profile offered something in email before."""
    rejecting = next(p for p in profiles if "OF-002" in _offered(client, p))
    capped, leaving = [p for p in profiles if p != rejecting and _offered(client, p)][:2]
    now = datetime.now(UTC).isoformat()
    events = [{"event_id": f"d{i}", "type": "delivery", "channel": "sms", "profile_id": capped,
               "offer_id": "OF-009", "occurred_at": now} for i in range(12)]
    events += [{"event_id": "r1", "type": "response", "channel": "phone", "outcome": "rejected",
                "profile_id": rejecting, "offer_id": "OF-002", "occurred_at": now},
               {"event_id": "u1", "type": "unsubscribe", "channel": "all",
                "profile_id": leaving, "occurred_at": now}]
    response = client.post("/events", json={"events": events}, headers={"X-API-Key": WRITE})
    assert response.status_code == 200, response.text
    assert len(response.json()["written"]) == len(events)
    return [capped, rejecting, leaving]


def _export_verdicts(paths: DataPaths, exports: Path, profiles: list[str],
                     channel: str) -> dict[str, dict[str, tuple[str, str] | None]]:
    """Per profile, per offer of the channel: ``None`` when the export of that offer holds
    the profile, else its (step, reason) in suppressed.csv, else not eligible."""
    activation = RunContext.at_edge(paths.home).activation
    verdicts: dict[str, dict[str, tuple[str, str] | None]] = {p: {} for p in profiles}
    for offer in load_offers(REPO / "config" / "offers.yml").values():
        if channel not in offer.channels:
            continue
        segment = offer.in_channel(channel)
        config = ActivationConfig({segment.name: segment}, activation.policy, activation.events)
        export = export_segment(paths.published_db, exports, segment.name, f"nbo-{channel}",
                                config)
        with export.members_file.open(newline="") as handle:
            members = {row["profile_id"] for row in csv.DictReader(handle)}
        with (export.directory / "suppressed.csv").open(newline="") as handle:
            dropped = {row["profile_id"]: (row["step"], row["reason"])
                       for row in csv.DictReader(handle)}
        for profile in profiles:
            verdicts[profile][offer.id] = (None if profile in members else
                                           dropped.get(profile, ("eligibility", "not_eligible")))
    return verdicts


def test_next_best_offer_agrees_with_the_export_chain_on_every_profile(
        client: TestClient, demo_home_copy: DataPaths, tmp_path: Path) -> None:
    con = open_published(demo_home_copy.published_db)
    try:
        profiles = [row[0] for row in con.execute(
            "SELECT profile_id FROM pub.main.dim_profiles ORDER BY profile_id").fetchall()]
    finally:
        con.close()
    assert len(profiles) >= 900
    catalogue = load_offers(REPO / "config" / "offers.yml").values()
    hot = _post_hot_events(client, profiles)
    seen: set[str] = set()
    # every profile in email (every offer of the catalogue is made there); in sms, where
    # some are not, the profiles with hot events and a slice of the others
    for channel, checked in (("email", profiles), ("sms", hot + profiles[:60])):
        expected = _export_verdicts(demo_home_copy, tmp_path / "exports" / channel, checked,
                                    channel)
        for profile in checked:
            answer = client.get(f"/profiles/{profile}/offers", params={"channel": channel})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            got: dict[str, tuple[str, str] | None] = {o["offer_id"]: None
                                                      for o in body["offers"]}
            got |= {o["offer_id"]: (o["step"], o["reason"]) for o in body["excluded"]}
            not_made = {o for o, why in got.items() if why == ("catalogue",
                                                               "not_offered_in_channel")}
            assert not_made == {o.id for o in catalogue if channel not in o.channels}
            assert {o: why for o, why in got.items() if o not in not_made} == \
                expected[profile], profile
            priorities = [o["priority"] for o in body["offers"]]
            assert priorities == sorted(priorities)  # best first
            seen |= {reason[1] for reason in got.values() if reason}
    # every kind of verdict occurred, so the agreement is not vacuous
    assert {"not_eligible", "no_opt_in", "cap_reached_per_week",
            "offer_rejected_via_phone"} <= seen
    assert seen & {"opted_out", "suppressed_identifier"}


def test_the_offer_catalogue_is_validated_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "offers.yml"
    bad.write_text("offers:\n"
                   "  - {id: A, channels: [fax], eligible: \"city = 'Berlin'\", priority: 1}\n"
                   "  - {id: B, channels: [email], eligible: \"read_csv('x')\", priority: 1}\n"
                   "  - {id: C, channels: [email], eligible: \"city = 'Bonn'\", priority: 0}\n")
    with pytest.raises(ConfigError) as error:
        load_offers(bad)
    assert [line.split(": ", 2)[1] for line in error.value.lines()] == [
        "offers[0].channels[0]", "offers[1].eligible", "offers[2].priority"]
    assert "function calls are not allowed" in error.value.lines()[1]
