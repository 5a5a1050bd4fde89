"""Source roles in the registry: consent statements declared in sources.yml are validated up
front (file, key, problem) and handed to dbt unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.registry import RegistryError, load_registry
from ingest.roles import consent_declarations, order_declarations

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
    (declared,) = consent_declarations(registry)
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
    (declared,) = order_declarations(load_registry(path))
    assert declared == {"source": "webshop_orders", "record_key": "bestellnummer",
                        "timestamp": "bestellt_am", "amount": "summe",
                        "product_group": "sortiment", "offer": None, "channel": "shop"}
    path.write_text(path.read_text().replace("amount: summe, ", ""), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"sources\.webshop_orders\.orders\.amount: Field "
                                            "required"):
        load_registry(path)
