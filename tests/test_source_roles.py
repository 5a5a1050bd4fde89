"""Source roles in the registry: what a source declares besides identity (consent, orders,
engagement, offer responses, tickets, preferences) is validated up front (file, key, problem)
and handed to dbt with the source's own column names and codes, folded."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.registry import RegistryError, load_registry
from ingest.roles import role_declarations

SOURCE = """
sources:
  signups:
    kind: online
    format: csv
    record_key: signup_id
    timestamp: signed_up_at
    identity: {{email: mail}}
    consent:
      - {statement}
"""


def _load(tmp_path: Path, statement: str):
    path = tmp_path / "sources.yml"
    path.write_text(SOURCE.format(statement=statement), encoding="utf-8")
    return load_registry(path)


def test_a_statement_reads_the_sources_own_codes_and_its_columns_become_required(
        tmp_path: Path) -> None:
    registry = _load(tmp_path, "{channel_column: kanal, channel_values: {E-Mail: email}, "
                               "column: wahl, opted_in: [' JA '], opted_out: [Nein], "
                               "reason_column: herkunft}")
    spec = registry["signups"]
    assert spec.required_columns == ["signup_id", "signed_up_at", "mail", "wahl", "kanal",
                                     "herkunft"]
    (declared,) = role_declarations(registry)["consent"]
    assert declared["source"] == "signups" and declared["record_key"] == "signup_id"
    assert declared["opted_in"] == ["ja"] and declared["opted_out"] == ["nein"]
    assert declared["channel_values"] == {"e-mail": "email"}


@pytest.mark.parametrize(("statement", "problem"), [
    ("{channel: email, channel_column: c, column: x, opted_in: ['1'], reason: r}",
     "give exactly one of channel, channel_column"),
    ("{channel: fax, column: x, opted_in: ['1'], reason: r}", "unknown channel"),
    ("{channel: email, column: x, opted_in: [yes], reason: r}", "Input should be a valid string"),
    ("{channel: email, column: x, opted_in: ['1'], opted_out: ['1'], reason: r}",
     "a value cannot mean both opted_in and opted_out"),
    ("{channel: email, column: x, reason: r}", "give opted_in or opted_out values"),
    ("{channel: email, column: x, opted_in: ['1']}", "give exactly one of reason, reason_column"),
    ("{channel: email, column: x, opted_in: ['1'], reason: r, contact: all}",
     "Extra inputs are not permitted"),
])
def test_a_bad_statement_is_refused_naming_file_and_key(
        tmp_path: Path, statement: str, problem: str) -> None:
    with pytest.raises(RegistryError) as caught:
        _load(tmp_path, statement)
    (line,) = [line for line in caught.value.lines() if problem in line]
    assert line.startswith(f"{tmp_path / 'sources.yml'}: sources.signups.consent[0]")


def test_an_orders_role_names_the_sources_own_columns(tmp_path: Path) -> None:
    path = tmp_path / "sources.yml"
    path.write_text("""
sources:
  webshop_orders:
    kind: online
    format: csv
    record_key: bestellnummer
    timestamp: bestellt_am
    identity: {email: kunde_mail}
    orders: {amount: summe, product_group: sortiment, channel: Shop}
""", encoding="utf-8")
    spec = load_registry(path)["webshop_orders"]
    assert spec.required_columns == ["bestellnummer", "bestellt_am", "kunde_mail", "summe",
                                     "sortiment"]
    (declared,) = role_declarations(load_registry(path))["orders"]
    assert declared == {"source": "webshop_orders", "record_key": "bestellnummer",
                        "timestamp": "bestellt_am", "amount": "summe",
                        "product_group": "sortiment", "offer": None, "channel": "shop"}
    path.write_text(path.read_text().replace("amount: summe, ", ""), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"sources\.webshop_orders\.orders\.amount: Field "
                                            "required"):
        load_registry(path)


ROLES_SOURCE = """
sources:
  newsletter_tool:
    kind: online
    format: csv
    record_key: ereignis_id
    timestamp: zeitpunkt
    identity: {email: adresse}
    engagement:
      type: art
      types: {opened: [Geoeffnet], unsubscribed: [Abmeldung, ' ABGEMELDET'], complained: [Spam]}
      campaign: kampagne
    offer_responses:
      {offer: angebot, outcome: art, outcomes: {clicked: [Klick]}, channel_column: kanal,
       channel_values: {Mail: email}}
  service_desk:
    kind: offline
    format: csv
    record_key: fall
    identity: {email: adresse}
    tickets: {text: nachricht}
    preferences:
      max_contacts: hoechstens
      period: zeitraum
      period_values: {Woche: week, Monat: month}
      separator: ","
      whole_form: {column: herkunft, values: [Praeferenzcenter]}
"""


def test_every_role_names_the_sources_own_columns_and_codes(tmp_path: Path) -> None:
    path = tmp_path / "sources.yml"
    path.write_text(ROLES_SOURCE, encoding="utf-8")
    registry = load_registry(path)
    assert registry["newsletter_tool"].required_columns == [
        "ereignis_id", "zeitpunkt", "adresse", "art", "kampagne", "angebot", "kanal"]
    assert registry["service_desk"].required_columns == [
        "fall", "adresse", "nachricht", "hoechstens", "zeitraum", "herkunft"]
    declared = role_declarations(registry)
    (engagement,) = declared["engagement"]
    assert engagement["types"] == {"opened": ["geoeffnet"],
                                   "unsubscribed": ["abmeldung", "abgemeldet"],
                                   "complained": ["spam"]}
    assert engagement["record_key"] == "ereignis_id" and engagement["offer"] is None
    (responses,) = declared["offer_responses"]
    assert responses["channel_values"] == {"mail": "email"} and responses["channel"] is None
    (preferences,) = declared["preferences"]
    assert preferences["period_values"] == {"woche": "week", "monat": "month"}
    assert preferences["whole_form"] == {"column": "herkunft", "values": ["praeferenzcenter"]}
    assert [d["source"] for d in declared["tickets"]] == ["service_desk"]
    assert declared["orders"] == [] and declared["consent"] == []


@pytest.mark.parametrize(("old", "new", "key", "problem"), [
    ("types: {opened: [Geoeffnet], unsubscribed: [Abmeldung, ' ABGEMELDET'], complained: [Spam]}",
     "types: {opened: [Spam], complained: [spam]}",
     "sources.newsletter_tool.engagement", "a value can mean only one kind"),
    ("types: {opened: [Geoeffnet], unsubscribed: [Abmeldung, ' ABGEMELDET'], complained: [Spam]}",
     "types: {read: [gelesen]}", "sources.newsletter_tool.engagement.types.read.[key]",
     "Input should be 'sent', 'delivered'"),
    ("channel_column: kanal,", "channel: email, channel_column: kanal,",
     "sources.newsletter_tool.offer_responses", "give exactly one of channel, channel_column"),
    ("outcomes: {clicked: [Klick]}", "outcomes: {clicked: []}",
     "sources.newsletter_tool.offer_responses", "list the source's own values"),
    ("period_values: {Woche: week, Monat: month}", "period_values: {Tag: day}",
     "sources.service_desk.preferences.period_values.Tag", "Input should be 'week' or 'month'"),
    ("whole_form: {column: herkunft, values: [Praeferenzcenter]}",
     "whole_form: {column: herkunft, values: []}",
     "sources.service_desk.preferences.whole_form.values", "at least 1 item"),
    ("tickets: {text: nachricht}", "tickets: {subject: betreff}",
     "sources.service_desk.tickets.text", "Field required"),
])
def test_a_bad_role_is_refused_naming_file_and_key(
        tmp_path: Path, old: str, new: str, key: str, problem: str) -> None:
    assert old in ROLES_SOURCE
    path = tmp_path / "sources.yml"
    path.write_text(ROLES_SOURCE.replace(old, new), encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    assert any(line.startswith(f"{path}: {key}") and problem in line
               for line in caught.value.lines()), caught.value.lines()


def test_a_consent_statement_maps_its_reasons_only_from_a_reason_column(tmp_path: Path) -> None:
    registry = _load(tmp_path, "{channel: email, column: x, opted_in: ['1'], "
                               "reason_column: herkunft, reason_values: {PC: preference_centre}}")
    (declared,) = role_declarations(registry)["consent"]
    assert declared["reason_values"] == {"pc": "preference_centre"}
    with pytest.raises(RegistryError, match="reason_values need a reason_column"):
        _load(tmp_path, "{channel: email, column: x, opted_in: ['1'], reason: r, "
                        "reason_values: {a: b}}")
