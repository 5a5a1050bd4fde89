"""Registered sources are dbt sources: a source added in sources.yml is ``source('raw', ...)``
of the models reading it (lineage, selectors, freshness), and a source not registered in the
data directory's configuration is no dbt source at all (cdp/dbt_sources.py)."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from cdp.context import RunContext
from cdp.dbt import run_dbt
from cdp.dbt_sources import source_tables
from core.vocabulary import LOAD_COLUMNS
from ingest.registry import load_registry, parse_registry

REPO = Path(__file__).resolve().parent.parent
DEMO_SOURCES = tuple(load_registry(REPO / "config" / "sources.yml").sources)

SIGNUPS = {
    "kind": "online", "format": "csv", "delivery": "incremental", "record_key": "signup_id",
    "timestamp": "signed_up_at", "columns": {"signed_up_at": "timestamp", "punkte": "bigint"},
    "identity": {"email": "mail", "first_name": "vorname", "last_name": "nachname"},
    "consent": [{"channel": "email", "column": "newsletter", "opted_in": ["Y"],
                 "opted_out": ["N"], "reason": "newsletter tool"}],
}
SHOP_ORDERS = {
    "kind": "online", "format": "csv", "record_key": "bestellnummer", "timestamp": "bestellt_am",
    "columns": {"summe": "double"}, "identity": {"email": "kunde_mail"},
    "orders": {"amount": "summe", "channel": "shop"},
}
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
#: Downstream of every source mapping identity fields, whatever its roles.
IDENTITY_LINEAGE = {"int_identity__records", "int_identity__normalised", "int_identity__links",
                    "int_identity__clusters", "fct_identity_graph", "dim_profiles"}
#: The dbt sources besides the registry's: what stays of erased people (privacy/), and
#: ingest's load ledger (counts per delivery, read by the data-quality KPIs).
ERASURES = "privacy._erased_identifiers"
LEDGER = "ingest._load_ledger"


def test_every_registered_source_is_one_table_with_its_columns_and_registry_facts() -> None:
    registry = parse_registry({"sources": {"newsletter_signups": SIGNUPS,
                                           "webshop_orders": SHOP_ORDERS}})

    tables = {table["name"]: table for table in source_tables(registry)}

    assert list(tables) == ["newsletter_signups", "webshop_orders"]
    signups = tables["newsletter_signups"]
    columns = {column["name"]: column for column in signups["columns"]}
    assert list(columns) == ["signup_id", "signed_up_at", "mail", "vorname", "nachname",
                             "punkte", "newsletter", *LOAD_COLUMNS]
    assert columns["signed_up_at"]["data_type"] == "TIMESTAMP"
    assert columns["punkte"]["data_type"] == "BIGINT"
    assert columns["mail"]["data_type"] == "VARCHAR"
    assert columns["_loaded_at"]["data_type"] == "TIMESTAMP"
    assert "Record key" in columns["signup_id"]["description"]
    assert "email" in columns["mail"]["description"]
    assert "consent" in columns["newsletter"]["description"]
    assert "online, csv" in signups["description"] and "new or changed" in signups["description"]
    assert signups["config"]["meta"] == {
        "kind": "online", "format": "csv", "delivery": "incremental",
        "record_key": "signup_id", "timestamp": "signed_up_at", "birth_date_format": None,
        "identity": SIGNUPS["identity"], "roles": ["consent"]}
    assert tables["webshop_orders"]["config"]["meta"]["roles"] == ["orders"]
    assert "not declared" in tables["webshop_orders"]["description"]


def test_descriptions_never_carry_a_column_name() -> None:
    """dbt renders descriptions as Jinja: a column name is free text and stays out of them."""
    spec = dict(SIGNUPS, identity={"email": "{{ mail }}"}, record_key="{% raw %}",
                columns={})
    (table,) = source_tables(parse_registry({"sources": {"jinja_names": spec}}))

    descriptions = [table["description"], *(c["description"] for c in table["columns"])]
    assert not [text for text in descriptions if re.search(r"\{[{%#]", text)]
    assert {"{{ mail }}", "{% raw %}"} <= {column["name"] for column in table["columns"]}


def test_no_demo_source_is_named_in_the_dbt_project() -> None:
    """The demo's sources are ordinary registry entries: dbt knows them only from there."""
    files = [REPO / "dbt_project.yml", *(
        path for path in (REPO / "dbt_project").rglob("*")
        if path.is_file() and path.suffix in {".sql", ".py", ".yml", ".yaml", ".md", ".csv"}
        and not {"target", "logs", "dbt_packages"} & set(path.relative_to(REPO).parts))]
    naming = re.compile(r"\b(" + "|".join(DEMO_SOURCES) + r")\b")

    named = {str(path.relative_to(REPO)): sorted(set(naming.findall(path.read_text())))
             for path in files if naming.search(path.read_text())}

    assert named == {}


def _config_with(tmp_path: Path, sources: dict[str, dict]) -> Path:
    """The repository's configuration with ``sources`` as the whole registry."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "sources.yml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    return config


def _dbt_ls(home: Path, config: Path, *selection: str) -> list[str]:
    """``dbt ls --output name`` through :func:`run_dbt` (the way a build invokes dbt, with the
    registry's sources of ``config``), in the data directory ``home``."""
    import dbt.cli.main

    listed: list[list[str]] = []

    class Recording(dbt.cli.main.dbtRunner):
        def invoke(self, args, **kwargs):  # type: ignore[no-untyped-def]
            result = super().invoke(args, **kwargs)
            listed.append(list(result.result or []))
            return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dbt.cli.main, "dbtRunner", Recording)
        # one clock: the vars stay the same unless the registry changes (partial parsing)
        run_dbt(RunContext.at_edge(home, config, as_of=AS_OF),
                ["ls", *selection, "--output", "name"])
    (names,) = listed
    return names


def _read_by(home: Path, config: Path, source: str) -> set[str]:
    """The models reading ``raw.<source>`` directly."""
    return set(_dbt_ls(home, config, "--select", f"source:raw.{source}+1",
                       "--resource-type", "model"))


@pytest.mark.integration
def test_a_users_source_is_a_dbt_source_upstream_of_identity_and_its_roles(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    config = _config_with(tmp_path, {"newsletter_signups": SIGNUPS})

    assert _dbt_ls(home, config, "--resource-type", "source") == [
        LEDGER, ERASURES, "raw.newsletter_signups"]
    downstream = set(_dbt_ls(home, config, "--select", "source:raw.newsletter_signups+",
                             "--resource-type", "model"))
    assert IDENTITY_LINEAGE | {"int_consent__events"} <= downstream
    consent_readers = _read_by(home, config, "newsletter_signups") - {"int_identity__records"}
    assert consent_readers, "the consent role's model does not read the source"

    # A changed registry in the same data directory (same dbt target and its saved partial
    # parse): the registry is in the vars, so dbt parses afresh and the new source is there.
    registry = yaml.safe_load((config / "sources.yml").read_text())
    registry["sources"]["webshop_orders"] = SHOP_ORDERS
    (config / "sources.yml").write_text(yaml.safe_dump(registry, sort_keys=False))

    assert _dbt_ls(home, config, "--resource-type", "source") == [
        LEDGER, ERASURES, "raw.newsletter_signups", "raw.webshop_orders"]
    orders_downstream = set(_dbt_ls(home, config, "--select", "source:raw.webshop_orders+",
                                    "--resource-type", "model"))
    assert orders_downstream >= IDENTITY_LINEAGE
    order_readers = _read_by(home, config, "webshop_orders") - {"int_identity__records"}
    assert order_readers and not order_readers & consent_readers  # its orders role only


@pytest.mark.integration
def test_the_demo_registry_is_the_demo_sources_each_feeding_identity(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = _config_with(tmp_path, yaml.safe_load(
        (REPO / "config" / "sources.yml").read_text())["sources"])

    assert _dbt_ls(home, config, "--resource-type", "source") == sorted(
        [LEDGER, ERASURES, *(f"raw.{name}" for name in DEMO_SOURCES)])
    identity_inputs = _dbt_ls(home, config, "--select", "+int_identity__records",
                              "--resource-type", "source")
    assert identity_inputs == sorted(f"raw.{name}" for name in DEMO_SOURCES)


def test_a_sources_freshness_becomes_its_dbt_freshness() -> None:
    registry = parse_registry({"sources": {
        "newsletter_signups": {**SIGNUPS, "freshness": {"warn_after_hours": 26,
                                                         "error_after_hours": 50}},
        "webshop_orders": SHOP_ORDERS}})
    tables = {table["name"]: table for table in source_tables(registry)}
    assert tables["newsletter_signups"]["config"]["freshness"] == {
        "warn_after": {"count": 26, "period": "hour"},
        "error_after": {"count": 50, "period": "hour"}}
    assert "freshness" not in tables["webshop_orders"]["config"]
    with pytest.raises(Exception, match="warn_after_hours must be less than error_after_hours"):
        parse_registry({"sources": {"s": {**SIGNUPS, "freshness": {
            "warn_after_hours": 50, "error_after_hours": 26}}}})


@pytest.mark.integration
def test_dbt_source_freshness_measures_a_stale_source_by_its_load_time(
        demo_home_copy, tmp_path: Path) -> None:
    import duckdb

    from cdp.dbt import DbtBuildFailed

    registry = yaml.safe_load((REPO / "config" / "sources.yml").read_text())
    registry["sources"]["pos_orders"]["freshness"] = {"warn_after_hours": 24}
    registry["sources"]["crm_customers"]["freshness"] = {"error_after_hours": 48}
    config = _config_with(tmp_path, registry["sources"])
    home = demo_home_copy.home
    with duckdb.connect(str(demo_home_copy.build_db)) as con:  # the last tills load: 30 h ago
        con.execute("UPDATE raw.pos_orders SET _loaded_at = now() - INTERVAL 30 HOUR")
    ctx = RunContext.at_edge(home, config, as_of=AS_OF)
    outcome = run_dbt(ctx, ["source", "freshness", "--select", "source:raw.pos_orders"])
    assert dict(outcome.statuses) == {"warn": 1}
    with duckdb.connect(str(demo_home_copy.build_db)) as con:
        con.execute("UPDATE raw.crm_customers SET _loaded_at = now() - INTERVAL 3 DAY")
    with pytest.raises(DbtBuildFailed, match="crm_customers"):
        run_dbt(ctx, ["source", "freshness", "--select", "source:raw.crm_customers"])
