"""Tests for the demo data generator: contract with sources.yml, truth, determinism, noise."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from cdp.demo.generator import SOURCES, GenerationReport, generate
from cdp.demo.noise import NOISE_LEVELS
from cdp.demo.people import HARD_CASES, build_population
from cdp.demo.vocab import NICKNAMES
from cdp.settings import config_dir
from core.paths import DataPaths
from profiles.activation.hot_events import EVENTS_SOURCE

PEOPLE = 200

# The column contract, written out independently of the generator's own constants.
EXPECTED_COLUMNS: dict[str, list[str]] = {
    "web_events": ["event_id", "event_ts", "anonymous_id", "user_id", "event_type", "email",
                   "product_group", "offer_id", "page"],
    "shop_accounts": ["account_id", "created_at", "updated_at", "email", "first_name",
                      "last_name", "birth_date", "phone", "street", "house_number", "postcode",
                      "city", "country", "newsletter_opt_in"],
    "email_events": ["event_id", "event_ts", "email", "event_type", "campaign_id", "offer_id",
                     "product_group"],
    "crm_customers": ["crm_row_id", "customer_number", "anrede", "vorname", "nachname",
                      "geburtsdatum", "email", "telefon", "strasse", "hausnummer", "plz", "ort",
                      "land", "kundenkarte", "email_opt_in", "post_opt_in", "phone_opt_in",
                      "updated_at"],
    "pos_orders": ["order_id", "order_ts", "store_id", "loyalty_card", "amount",
                   "product_group", "offer_id"],
    "support_tickets": ["ticket_id", "created_at", "channel", "customer_number", "first_name",
                        "last_name", "email", "phone", "subject", "text", "offer_id",
                        "offer_outcome", "do_not_contact"],
    "consent_log": ["change_id", "changed_at", "customer_number", "email", "phone", "channel",
                    "action", "origin", "max_contacts", "per", "excluded_product_groups"],
}


@pytest.fixture(scope="module")
def registry() -> dict[str, dict]:
    """The demo's sources: every registered one but the API's events (none generated)."""
    with (config_dir() / "sources.yml").open(encoding="utf-8") as handle:
        sources = yaml.safe_load(handle)["sources"]
    return {name: spec for name, spec in sources.items() if name != EVENTS_SOURCE}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, GenerationReport]:
    home = DataPaths(tmp_path_factory.mktemp("demo"))
    return home, generate(home, people=PEOPLE, seed=42)


def source_files(home: DataPaths, source: str, spec: dict) -> list[Path]:
    return sorted(home.source_landing(source).glob(spec.get("path", "*")))


def read_records(home: DataPaths, source: str, spec: dict) -> Iterator[dict]:
    for path in source_files(home, source, spec):
        if spec["format"] == "jsonl":
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    yield json.loads(line)
        else:
            delimiter = spec.get("csv", {}).get("delimiter", ",")
            with path.open(encoding="utf-8", newline="") as handle:
                yield from csv.DictReader(handle, delimiter=delimiter)


def read_truth(home: DataPaths) -> list[dict]:
    with (home.truth / "demo_truth.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# ----------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    first, second, other = (DataPaths(tmp_path / name) for name in ("a", "b", "c"))
    generate(first, people=120, seed=3)
    generate(second, people=120, seed=3)
    generate(other, people=120, seed=4)
    files_a, files_b, files_c = (tree_bytes(p.home) for p in (first, second, other))
    assert files_a == files_b
    assert files_a.keys() == files_c.keys()
    assert files_a != files_c
    assert files_a["truth/demo_truth.csv"] != files_c["truth/demo_truth.csv"]


def test_every_source_gets_files(generated, registry) -> None:
    home, report = generated
    assert set(registry) == set(SOURCES)
    for source, spec in registry.items():
        files = source_files(home, source, spec)
        assert files, f"no landing files for {source}"
        assert sorted(report.files[source]) == files
        assert report.records[source] > 0
    assert len(source_files(home, "web_events", registry["web_events"])) > 1
    assert len(source_files(home, "pos_orders", registry["pos_orders"])) > 1


def test_columns_match_the_contract(generated, registry) -> None:
    home, _ = generated
    for source, spec in registry.items():
        expected = EXPECTED_COLUMNS[source]
        # the registry's identity / key / timestamp columns must exist in the files
        needed = {spec["record_key"], spec["timestamp"], *spec["identity"].values()}
        assert needed <= set(expected), source
        for path in source_files(home, source, spec):
            if spec["format"] == "jsonl":
                with path.open(encoding="utf-8") as handle:
                    for line in handle:
                        assert list(json.loads(line)) == expected
            else:
                delimiter = spec.get("csv", {}).get("delimiter", ",")
                with path.open(encoding="utf-8", newline="") as handle:
                    header = next(csv.reader(handle, delimiter=delimiter))
                assert header == expected, path.name


def test_timestamps_and_birth_dates_parse_with_registry_formats(generated, registry) -> None:
    home, _ = generated
    reference = datetime(2026, 11, 1)
    for source, spec in registry.items():
        fmt = spec.get("timestamp_format", "%Y-%m-%dT%H:%M:%S")
        for record in read_records(home, source, spec):
            moment = datetime.strptime(record[spec["timestamp"]], fmt)
            assert moment < reference, (source, record[spec["timestamp"]])
            for column, kind in spec.get("columns", {}).items():
                if kind == "timestamp" and column != spec["timestamp"]:
                    datetime.strptime(record[column], "%Y-%m-%dT%H:%M:%S")
            birth_column = spec["identity"].get("birth_date")
            if birth_column and record[birth_column]:
                datetime.strptime(record[birth_column], spec.get("birth_date_format", "%Y-%m-%d"))
    for record in read_records(home, "pos_orders", registry["pos_orders"]):
        assert float(record["amount"]) > 0 and "," not in record["amount"]


def test_truth_covers_every_record_exactly_once(generated, registry) -> None:
    home, report = generated
    truth = read_truth(home)
    assert list(truth[0]) == ["source", "record_id", "person_id", "pattern"]
    pairs = Counter((row["source"], row["record_id"]) for row in truth)
    assert max(pairs.values()) == 1
    by_source: dict[str, set[str]] = defaultdict(set)
    for row in truth:
        by_source[row["source"]].add(row["record_id"])
    for source, spec in registry.items():
        key = spec["record_key"]
        records = list(read_records(home, source, spec))
        keys = Counter(record[key] for record in records)
        assert set(keys) == by_source[source], source
        assert report.records[source] == len(keys)
        if source == "email_events":
            # the ESP re-delivers some events: same event_id, identical row
            first_seen: dict[str, dict] = {}
            for record in records:
                assert first_seen.setdefault(record[key], record) == record
        else:
            assert max(keys.values()) == 1, f"duplicate record keys in {source}"
    persons = {row["person_id"] for row in truth}
    assert len(persons) == PEOPLE + report.anonymous_visitors


def test_ticket_labels_only_in_truth(generated, registry) -> None:
    home, _ = generated
    tickets = list(read_records(home, "support_tickets", registry["support_tickets"]))
    with (home.truth / "ticket_labels.csv").open(encoding="utf-8", newline="") as handle:
        labels = list(csv.DictReader(handle))
    assert list(labels[0]) == ["ticket_id", "label"]
    assert {row["ticket_id"] for row in labels} == {t["ticket_id"] for t in tickets}
    assert {row["label"] for row in labels} <= {"complaint", "praise", "request"}
    assert "label" not in tickets[0]
    for ticket in tickets:
        assert ticket["channel"] in {"phone", "email", "chat"}
        assert ticket["offer_outcome"] in {"accepted", "declined", ""}
        assert bool(ticket["offer_id"]) == bool(ticket["offer_outcome"])
        assert ticket["do_not_contact"] in {"true", "false"}


def test_identifiers_link_the_right_persons(generated, registry) -> None:
    home, _ = generated
    owner = {(row["source"], row["record_id"]): row["person_id"] for row in read_truth(home)}
    # every cookie of a known person is tied to them by a login or identify event
    cookie_person: dict[str, str] = {}
    linked: set[str] = set()
    accounts = list(read_records(home, "shop_accounts", registry["shop_accounts"]))
    account_person = {a["account_id"]: owner[("shop_accounts", a["account_id"])] for a in accounts}
    account_created = {a["account_id"]: a["created_at"] for a in accounts}
    for event in read_records(home, "web_events", registry["web_events"]):
        person = owner[("web_events", event["event_id"])]
        assert cookie_person.setdefault(event["anonymous_id"], person) == person
        if event["event_type"] == "login":
            assert account_person[event["user_id"]] == person
            linked.add(event["anonymous_id"])
        if event["event_type"] == "identify":
            assert event["email"]
            linked.add(event["anonymous_id"])
        else:
            assert event["email"] is None
        if event["user_id"] is not None:
            assert account_person[event["user_id"]] == person
            assert event["event_ts"] >= account_created[event["user_id"]]
    unlinked_persons = {cookie_person[c] for c in cookie_person if c not in linked}
    sources_of: dict[str, set[str]] = defaultdict(set)
    for (source, _), person in owner.items():
        sources_of[person].add(source)
    assert all(sources_of[p] == {"web_events"} for p in unlinked_persons)
    # customer numbers: one per person, never shared; loyalty cards at POS are known to the CRM
    numbers: dict[str, set[str]] = defaultdict(set)
    persons_of_number: dict[str, set[str]] = defaultdict(set)
    card_person: dict[str, str] = {}
    for row in read_records(home, "crm_customers", registry["crm_customers"]):
        person = owner[("crm_customers", row["crm_row_id"])]
        numbers[person].add(row["customer_number"])
        persons_of_number[row["customer_number"]].add(person)
        if row["kundenkarte"]:
            assert card_person.setdefault(row["kundenkarte"], person) == person
    assert all(len(v) == 1 for v in numbers.values())
    assert all(len(v) == 1 for v in persons_of_number.values())
    for order in read_records(home, "pos_orders", registry["pos_orders"]):
        assert order["loyalty_card"], "POS orders must carry a loyalty card"
        assert card_person[order["loyalty_card"]] == owner[("pos_orders", order["order_id"])]


def test_enumerated_values(generated, registry) -> None:
    home, _ = generated
    web_types = {"page_view", "product_view", "add_to_cart", "login", "identify", "offer_view",
                 "offer_dismiss"}
    assert {e["event_type"] for e in read_records(home, "web_events", registry["web_events"])
            } <= web_types
    email_types = Counter(
        e["event_type"] for e in read_records(home, "email_events", registry["email_events"])
    )
    assert set(email_types) <= {"sent", "delivered", "open", "click", "bounce", "unsubscribe",
                                "complaint"}
    assert email_types["sent"] >= email_types["delivered"] >= email_types["open"]
    for row in read_records(home, "consent_log", registry["consent_log"]):
        assert row["channel"] in {"email", "sms", "phone", "post", "online_ads"}
        assert row["action"] in {"opt_in", "opt_out"}
        assert row["origin"] in {"preference_centre", "web_form", "call_centre"}
        assert row["per"] in {"week", "month", ""}
        assert row["max_contacts"] == "" or int(row["max_contacts"]) > 0
        assert row["customer_number"] or row["email"] or row["phone"]
    for row in read_records(home, "crm_customers", registry["crm_customers"]):
        assert {row["email_opt_in"], row["post_opt_in"], row["phone_opt_in"]} <= {"ja", "nein"}
    for row in read_records(home, "shop_accounts", registry["shop_accounts"]):
        assert row["newsletter_opt_in"] in {"true", "false"}


def test_regenerating_replaces_previous_output(tmp_path: Path) -> None:
    home = DataPaths(tmp_path / "home")
    generate(home, people=150, seed=1, noise="hard")
    keep = home.source_landing("crm_customers") / "README.txt"
    keep.write_text("not generated", encoding="utf-8")
    generate(home, people=90, seed=2)
    fresh = DataPaths(tmp_path / "fresh")
    generate(fresh, people=90, seed=2)
    regenerated = tree_bytes(home.home)
    assert regenerated.pop("landing/crm_customers/README.txt") == b"not generated"
    assert regenerated == tree_bytes(fresh.home)


def _spellings_per_person(home: DataPaths, registry: dict) -> float:
    owner = {(row["source"], row["record_id"]): row["person_id"] for row in read_truth(home)}
    spellings: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for source, first, last, email in (
        ("crm_customers", "vorname", "nachname", "email"),
        ("shop_accounts", "first_name", "last_name", "email"),
        ("support_tickets", "first_name", "last_name", "email"),
    ):
        spec = registry[source]
        for row in read_records(home, source, spec):
            person = owner[(source, row[spec["record_key"]])]
            spellings[person].add((row[first], row[last], row[email]))
    return sum(len(v) for v in spellings.values()) / len(spellings)


def test_noise_levels_differ_measurably(tmp_path: Path, registry) -> None:
    low, hard = DataPaths(tmp_path / "low"), DataPaths(tmp_path / "hard")
    report_low = generate(low, people=300, seed=5, noise="low")
    report_hard = generate(hard, people=300, seed=5, noise="hard")
    assert report_low.noise == "low" and report_hard.noise == "hard"
    assert _spellings_per_person(hard, registry) > _spellings_per_person(low, registry) + 0.1
    # more movers in hard noise: more customers with two CRM rows
    def crm_duplicates(home: DataPaths) -> int:
        numbers = Counter(r["customer_number"] for r in
                          read_records(home, "crm_customers", registry["crm_customers"]))
        return sum(1 for count in numbers.values() if count > 1)
    assert crm_duplicates(hard) > crm_duplicates(low)


@pytest.mark.parametrize("people", [0, -5])
def test_non_positive_people_is_rejected(tmp_path: Path, people: int) -> None:
    with pytest.raises(ValueError, match="people must be a positive"):
        generate(DataPaths(tmp_path), people=people)


def test_unknown_noise_level_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown noise level 'extreme'.*low, default, hard"):
        generate(DataPaths(tmp_path), people=10, noise="extreme")
    assert not (tmp_path / "landing").exists()


def test_custom_noise_config_is_accepted(tmp_path: Path) -> None:
    from cdp.demo.noise import NOISE_LEVELS

    doubled = NOISE_LEVELS["default"].scaled(2.0)
    assert doubled.typo == pytest.approx(2 * NOISE_LEVELS["default"].typo)
    assert max(NOISE_LEVELS["hard"].scaled(100).typo, doubled.move) <= 0.9
    report = generate(DataPaths(tmp_path), people=60, seed=9, noise=doubled)
    assert report.noise == "defaultx2"
    with pytest.raises(ValueError, match="scale factor"):
        NOISE_LEVELS["low"].scaled(-1)


HARD = replace(NOISE_LEVELS["hard"], twins=0.8, second_given_name=0.15, initial=0.15,
               unlisted_nickname=0.15, swapped_person=0.15)


def test_hard_cases_are_built_as_labelled() -> None:
    persons, _ = build_population(600, 5, HARD)
    by_id = {p.person_id: p for p in persons}
    counts = Counter(p.pattern for p in persons)
    assert set(HARD_CASES) <= set(counts), counts
    for person in persons:
        partner = by_id.get(person.partner_id or "")
        if person.pattern == "twin":
            assert partner is not None and partner.pattern == "twin"
            assert (person.last_name, person.birth_date, person.address) == \
                (partner.last_name, partner.birth_date, partner.address)
        elif person.pattern == "household":
            assert partner is not None and partner.address == person.address
        elif person.pattern == "initial":
            assert person.given_name_variants == (f"{person.first_name[0]}.",
                                                  person.first_name[0])
        elif person.pattern == "second_given_name":
            full, second = person.given_name_variants
            assert full == f"{person.first_name} {second}" and second != person.first_name
        elif person.pattern == "unlisted_nickname":
            (short,) = person.given_name_variants
            assert person.first_name.startswith(short[:-1]) and person.first_name not in NICKNAMES


def test_hard_cases_reach_the_landing_files_and_the_truth(tmp_path, registry) -> None:
    home = DataPaths(tmp_path)
    generate(home, people=600, seed=5, noise=HARD)
    labels = {(row["source"], row["record_id"]): row["pattern"] for row in read_truth(home)}
    spec = registry["crm_customers"]
    written: dict[str, list[str]] = defaultdict(list)
    for record in read_records(home, "crm_customers", spec):
        pattern = labels[("crm_customers", record[spec["record_key"]])]
        written[pattern].append(record["vorname"].strip())
    assert any(len(name) <= 2 and name[:1].isupper() for name in written["initial"])
    assert any(" " in name for name in written["second_given_name"])
    assert not any(len(name) <= 2 for name in written[""] if name)
    assert set(labels.values()) >= {"", *HARD_CASES} - {"swapped_names"}
