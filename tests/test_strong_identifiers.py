"""Strong identifiers with their authority (issue 16): ``national_id`` and identity.yml
``strong_identifiers``.

A national id from a source with authority over it proves identity both ways: two records
sharing it are one person (a married name does not matter), and two different ones never
share a profile (twins sharing an address and an e-mail stay apart). From any other source it
is soft evidence only. The first tests resolve in memory (rules only: fast, and every edge is
a rule the test names); the last ones run the pipeline's stages on a small real build (ingest,
dbt, gate, publish) and erase a person by national id.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml
from small_builds import configuration_with_only

from core.vocabulary import identifier_hash
from identity import IdentityConfig, IdentityConfigError, resolve
from identity.normalise import normalise_records
from ingest.ledger import ERASED_IDENTIFIERS, ERASED_REASON, ensure_raw_schema
from ingest.loader import load_all
from ingest.registry import load_registry
from privacy.identifiers import InvalidRequest, parse

KYC = "kyc_accounts"  # has authority over national ids (identity checked at onboarding)
SHOP = "shop_accounts"  # a web form: whatever the customer typed
STRONG = {"customer_number": [KYC], "national_id": [KYC]}


def _config(**strong: Any) -> IdentityConfig:
    return IdentityConfig(use_splink=False, strong_identifiers=strong or STRONG)


def _records(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _profiles(result: Any) -> dict[str, str]:
    clusters = result.clusters
    return dict(zip(clusters["record_id"], clusters["profile_id"], strict=True))


#: Twin sisters at one address sharing the family's e-mail, one birth date, first names a
#: typo apart: every rule and guard short of the national id takes them for one person.
TWINS = [
    {"source": KYC, "record_id": "t1", "first_name": "Marie", "last_name": "Weber",
     "birth_date": "1990-05-01", "email": "weber.family@example.org",
     "street": "Lindenweg", "house_number": "4", "postcode": "20095", "city": "Hamburg",
     "national_id": "T22000129A"},
    {"source": KYC, "record_id": "t2", "first_name": "Maria", "last_name": "Weber",
     "birth_date": "1990-05-01", "email": "weber.family@example.org",
     "street": "Lindenweg", "house_number": "4", "postcode": "20095", "city": "Hamburg",
     "national_id": "T22000130B"},
]

#: One woman before and after her marriage: new last name, new e-mail, new address; her
#: national id written two ways.
MARRIED = [
    {"source": KYC, "record_id": "m1", "first_name": "Sabine", "last_name": "Keller",
     "birth_date": "1985-03-02", "email": "sabine.keller@example.org", "postcode": "80331",
     "national_id": "L01X00T47"},
    {"source": KYC, "record_id": "m2", "first_name": "Sabine", "last_name": "Brandt",
     "birth_date": "1985-03-02", "email": "s.brandt@example.com", "postcode": "50667",
     "national_id": "l01x-00t.47"},
]

#: Two people of one household on the shop's form, the second typing the first one's id
#: (no birth dates: a first-name clash alone is no person conflict, so an authoritative id
#: would join them).
TYPED = [
    {"source": SHOP, "record_id": "s1", "first_name": "Jonas", "last_name": "Richter",
     "national_id": "C4RF7J2K1"},
    {"source": SHOP, "record_id": "s2", "first_name": "Lea", "last_name": "Richter",
     "national_id": "C4RF7J2K1"},
]


def test_national_id_is_normalised_as_a_code() -> None:
    norm = normalise_records(_records(MARRIED))
    assert norm["national_id"].tolist() == ["L01X00T47", "L01X00T47"]
    assert parse("national_id: l01x 00t.47").value == "L01X00T47"
    with pytest.raises(InvalidRequest, match="not a valid national id") as raised:
        parse("national_id: --")
    assert "--" not in str(raised.value)


def test_twins_with_different_national_ids_stay_apart() -> None:
    without = resolve(_records([{**r, "national_id": None} for r in TWINS]), _config())
    assert len(set(_profiles(without).values())) == 1  # the shared e-mail merges them

    result = resolve(_records(TWINS), _config())

    profiles = _profiles(result)
    assert profiles["t1"] != profiles["t2"]
    assert set(result.edges["status"]) == {"refused:national_id_conflict"}
    assert result.stats["refused_edges"] == {"national_id_conflict": result.edges.shape[0]}


def test_the_twins_merge_where_the_source_has_no_authority_over_national_ids() -> None:
    """The guard is the authority's: from a source without it, two ids are no proof."""
    result = resolve(_records(TWINS), _config(customer_number=[KYC], national_id=[SHOP]))
    assert len(set(_profiles(result).values())) == 1


def test_one_authoritative_national_id_merges_a_married_name() -> None:
    without = resolve(_records([{**r, "national_id": None} for r in MARRIED]), _config())
    assert len(set(_profiles(without).values())) == 2

    result = resolve(_records(MARRIED), _config())

    assert len(set(_profiles(result).values())) == 1
    [edge] = result.edges.itertuples()
    assert (edge.rule, edge.status) == ("same_national_id", "merged")


def test_a_national_id_from_a_source_without_authority_does_not_force_a_merge() -> None:
    # from a source with authority, the shared id is proof whatever the names say ...
    trusted = resolve(_records(TYPED), _config(customer_number=[KYC], national_id=[SHOP]))
    assert len(set(_profiles(trusted).values())) == 1
    assert set(trusted.edges["rule"]) == {"same_national_id"}

    # ... from a web form, it is a shared contact point: different people keep apart
    result = resolve(_records(TYPED), _config())

    assert len(set(_profiles(result).values())) == 2
    assert set(zip(result.edges["rule"], result.edges["status"], strict=True)) == {
        ("same_national_id_unconfirmed", "refused:first_name_conflict")}


def test_an_unconfirmed_national_id_still_links_one_person() -> None:
    """Soft evidence is evidence: the same person twice on the form is linked."""
    rows = [TYPED[0], {**TYPED[0], "record_id": "s3", "last_name": "Richter-Lang"}]
    result = resolve(_records(rows), _config())
    assert len(set(_profiles(result).values())) == 1


def test_customer_numbers_keep_their_conflict_reason() -> None:
    rows = [{**r, "national_id": None, "customer_number": f"K-{i}"}
            for i, r in enumerate(TWINS)]
    result = resolve(_records(rows), _config())
    assert set(result.edges["status"]) == {"refused:customer_number_conflict"}


def test_all_sources_may_hold_authority() -> None:
    config = IdentityConfig.from_dict({"strong_identifiers": {"national_id": "all"}})
    assert config.authoritative_sources("national_id") == ()
    assert config.authoritative_sources("customer_number") is None
    result = resolve(_records(TYPED), config.model_copy(update={"use_splink": False}))
    assert len(set(_profiles(result).values())) == 1


# ------------------------------------------------------------------------ configuration


def test_repository_configuration_declares_customer_numbers_of_the_crm() -> None:
    repo = Path(__file__).resolve().parent.parent / "config" / "identity.yml"
    config = IdentityConfig.from_yaml(repo)
    assert config.strong_identifiers == {"customer_number": ("crm_customers",)}
    assert IdentityConfig.from_dict(config.to_vars()) == config


@pytest.mark.parametrize(("text", "message"), [
    ("identity:\n  customer_number_sources: [crm_customers]\n",
     r"identity\.yml: identity\.customer_number_sources: replaced by strong_identifiers: "
     r"write strong_identifiers: \{customer_number: \[<sources>\]\}"),
    ("identity:\n  strong_identifiers: {email: [crm]}\n",
     r"identity\.strong_identifiers: Value error, email: not an identifier that names one "
     r"person; one of customer_number, national_id, loyalty_card, user_id"),
    ("identity:\n  strong_identifiers: {national_id: []}\n",
     r"identity\.strong_identifiers: Value error, national_id: names no source"),
    ("identity:\n  strong_identifiers: {national_id: crm}\n",
     r"identity\.strong_identifiers: Value error, national_id: a list of source names, or "
     r"'all'"),
    ("identity:\n  strong_identifiers: {national_id: [crm, crm]}\n",
     r"identity\.strong_identifiers: Value error, national_id: names a source twice"),
    ("identity:\n  strong_identifiers: [national_id]\n",
     r"identity\.strong_identifiers: Value error, must be a mapping of identifier field"),
    ("identity:\n  strong_identifiers: {national_id: [7]}\n",
     r"identity\.strong_identifiers\.national_id\.tuple\[str, \.\.\.\]\[0\]: Input should "
     r"be a valid string"),
])
def test_strong_identifier_configuration_errors_are_clear(tmp_path: Path, text: str,
                                                          message: str) -> None:
    path = tmp_path / "identity.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IdentityConfigError, match=message) as raised:
        IdentityConfig.from_yaml(path)
    assert raised.value.file == str(path)


def test_cdp_check_warns_of_authority_given_to_no_registered_source(tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from cdp.cli import app

    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parent.parent / "config", config)
    settings = yaml.safe_load((config / "identity.yml").read_text())
    settings["identity"]["strong_identifiers"] = {"customer_number": ["crm_customers"],
                                                  "national_id": ["crm_customer"]}
    (config / "identity.yml").write_text(yaml.safe_dump(settings))
    result = CliRunner(env={"COLUMNS": "500"}).invoke(
        app, ["check", "--home", str(tmp_path / "home"), "--config-dir", str(config)])
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 0, stderr
    assert (f"warning: {config / 'identity.yml'}: identity.strong_identifiers.national_id: "
            "'crm_customer' is no registered source (sources.yml)") in stderr
    assert "'crm_customers' is no registered" not in stderr


# ------------------------------------------------------------- erasure: a replayed file

REGISTRY = """\
sources:
  kyc:
    kind: offline
    format: csv
    path: "*.csv"
    record_key: account
    identity: {first_name: given, last_name: family, national_id: ausweis}
"""


def test_a_replayed_row_with_an_erased_national_id_is_quarantined_without_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sources.yml").write_text(REGISTRY)
    (tmp_path / "landing" / "kyc").mkdir(parents=True)
    db = tmp_path / "warehouse" / "build.duckdb"
    db.parent.mkdir()
    erased = parse("national_id:T22-000-129-A")
    with duckdb.connect(str(db)) as con:
        ensure_raw_schema(con)
        con.execute(f"INSERT INTO raw.{ERASED_IDENTIFIERS} VALUES (?, 'national_id', 'r', ?)",
                    [erased.hash, datetime(2026, 6, 1)])
    # an old export spells the erased number another way
    (tmp_path / "landing" / "kyc" / "old.csv").write_text(
        "account,given,family,ausweis\na1,Marie,Weber,t22000129a\na2,Maria,Weber,T22000130B\n")
    caplog.set_level(logging.DEBUG)

    [report] = load_all(db, load_registry(tmp_path / "config" / "sources.yml"),
                        tmp_path / "landing", "run", ["kyc"])

    assert (report.rows_loaded, report.rows_erased) == (1, 1)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT account FROM raw.kyc").fetchall() == [("a2",)]
        assert con.execute("SELECT _reason, _raw_line FROM raw.kyc__rejected").fetchall() == [
            (ERASED_REASON, None)]
    assert erased.hash == identifier_hash("national_id", "T22000129A")
    assert not any("t22000129a" in r.getMessage().lower() for r in caplog.records)


# ------------------------------------------------------- a small real build, then erasure

SOURCES = f"""sources:
  {KYC}:
    kind: offline
    format: csv
    delivery: snapshot
    path: "*.csv"
    record_key: account
    identity: {{first_name: given, last_name: family, birth_date: born, email: mail,
               street: street, house_number: house, postcode: zip, city: town,
               national_id: tax_id}}
  {SHOP}:
    kind: online
    format: csv
    delivery: snapshot
    path: "*.csv"
    record_key: login
    identity: {{first_name: given, last_name: family, email: mail, national_id: tax_id}}
"""
COLUMNS = {"first_name": "given", "last_name": "family", "birth_date": "born",
           "email": "mail", "street": "street", "house_number": "house", "postcode": "zip",
           "city": "town", "national_id": "tax_id"}
#: Someone both sources know by e-mail (the gate wants shared identifiers linked somewhere).
PAUL = {"source": KYC, "record_id": "p1", "first_name": "Paul", "last_name": "Meier",
        "email": "paul.meier@example.org"}
#: Every national id of the build as written and as normalised, lower-cased as searched.
NEEDLES = sorted({v for r in TWINS + MARRIED + TYPED
                  for v in (str(r["national_id"]).lower(),
                            str(r["national_id"]).upper().replace("-", "").replace(".", "")
                            .lower())})


def _write(folder: Path, key: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "accounts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([key, *(COLUMNS[c] for c in columns)])
        for row in rows:
            writer.writerow([row["record_id"], *(row.get(c) or "" for c in columns)])


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from cdp.context import RunContext
    from cdp.pipeline import (
        build as dbt_build,
    )
    from cdp.pipeline import (
        ingest_source,
        publish,
        quality_gate,
        registered_sources,
        train_identity,
    )

    tmp = tmp_path_factory.mktemp("strong")
    config = configuration_with_only(tmp / "config", SOURCES)
    settings = yaml.safe_load((config / "identity.yml").read_text())
    settings["identity"]["strong_identifiers"] = STRONG
    (config / "identity.yml").write_text(yaml.safe_dump(settings))
    ctx = RunContext.at_edge(tmp / "home", config=config, run_id="strong-1",
                             as_of=datetime(2026, 11, 1, tzinfo=UTC))
    kyc_rows = [*TWINS, *MARRIED, PAUL]
    _write(ctx.paths.landing / KYC, "account", kyc_rows, list(COLUMNS))
    shop_rows = [*TYPED, {**PAUL, "source": SHOP, "record_id": "p2"}]
    _write(ctx.paths.landing / SHOP, "login", shop_rows,
           ["first_name", "last_name", "email", "national_id"])
    collect = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    try:
        for source in registered_sources(ctx):
            ingest_source(ctx, source)
        train_identity(ctx)
        dbt_build(ctx)
        gate = quality_gate(ctx)
        publish(ctx)
    finally:
        root.removeHandler(collect)
        root.setLevel(level)
    yield {"ctx": ctx, "logs": collect.messages, "gate": gate}


def _published(ctx: Any, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(ctx.paths.published_db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.integration
def test_the_build_keeps_twins_apart_and_merges_the_married_name(build: dict) -> None:
    ctx = build["ctx"]
    graph = dict(_published(ctx, "SELECT record_id, profile_id FROM main.fct_identity_graph"))
    assert graph["t1"] != graph["t2"]
    assert graph["m1"] == graph["m2"]
    assert graph["s1"] != graph["s2"]
    links = {(frozenset((left, right)), rule, status) for left, right, rule, status in _published(
        ctx, "SELECT record_id_l, record_id_r, rule, status FROM main.fct_identity_links "
             "WHERE edge_type = 'rule'")}
    assert (frozenset(("t1", "t2")), "same_email", "refused:national_id_conflict") in links
    assert (frozenset(("m1", "m2")), "same_national_id", "merged") in links
    assert (frozenset(("s1", "s2")), "same_national_id_unconfirmed",
            "refused:first_name_conflict") in links


@pytest.mark.integration
def test_the_marts_hold_national_ids_hashed_and_the_gate_counts_them(build: dict) -> None:
    ctx = build["ctx"]
    hashed = dict(_published(ctx, "SELECT record_id, national_id_sha256 "
                                  "FROM main.fct_identity_graph"))
    assert hashed["m2"] == hashed["m1"] == identifier_hash("national_id", "L01X00T47")
    assert ("national_id_sha256", identifier_hash("national_id", "T22000129A")) in set(
        _published(ctx, "SELECT identifier_type, identifier_value "
                        "FROM main.fct_profile_identifiers"))
    assert "identity.fct_identity_graph.national_ids" in str(build["gate"])


@pytest.mark.integration
def test_no_national_id_in_published_tables_logs_or_reports(build: dict) -> None:
    ctx = build["ctx"]
    with duckdb.connect(str(ctx.paths.published_db), read_only=True) as con:
        for schema, table in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables()").fetchall():
            for needle in NEEDLES:
                [(count,)] = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" AS t '
                    "WHERE contains(lower(CAST(t AS VARCHAR)), ?)", [needle]).fetchall()
                assert not count, f"{schema}.{table} holds a national id"
    assert build["logs"], "the run logged nothing: the check would prove nothing"
    text = "\n".join(build["logs"]).lower()
    assert not [n for n in NEEDLES if n in text]
    for path in ctx.paths.home.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".log", ".html", ".txt", ".csv"} \
                and "landing" not in path.parts:
            content = path.read_text(errors="replace").lower()
            assert not [n for n in NEEDLES if n in content], path


@pytest.mark.integration
def test_forget_by_national_id(build: dict) -> None:
    from cdp.pipeline import forget_person

    ctx = build["ctx"]
    report = forget_person(ctx, [parse("national_id:L01X-00T-47")])

    assert report.status == "completed"
    assert report.records == {KYC: 2}  # both names of the woman, found by the one number
    digest = identifier_hash("national_id", "L01X00T47")
    with duckdb.connect(str(ctx.paths.build_db), read_only=True) as con:
        assert con.execute(f"SELECT identifier_type FROM raw.{ERASED_IDENTIFIERS} "
                           "WHERE identifier_hash = ?", [digest]).fetchall() == [
            ("national_id",)]
        assert con.execute(f"SELECT account FROM raw.{KYC} ORDER BY 1").fetchall() == [
            ("p1",), ("t1",), ("t2",)]
    graph = {r for (r,) in _published(ctx, "SELECT record_id FROM main.fct_identity_graph")}
    assert graph == {"t1", "t2", "s1", "s2", "p1", "p2"}
    landing = (ctx.paths.landing / KYC / "accounts.csv").read_text().lower()
    assert "l01x" not in landing and "keller" not in landing
