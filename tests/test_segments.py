"""Segment rules (allow-listed syntax tree → parameterised SQL) and the suppression chain, on a
hand-made published warehouse whose every row has a known fate."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from profiles.activation.config import ActivationConfig, load_config
from profiles.activation.discovery import available_segments
from profiles.activation.parser import parse_condition
from profiles.activation.segment import build_segment
from profiles.activation.suppression import SuppressionPolicy, suppress
from profiles.activation.syntax import FIELDS, SegmentError
from profiles.publishing.published import MissingTableError, open_published

AS_OF = datetime(2026, 3, 12, 12, 0)  # a Thursday; the week began on Monday 2026-03-09
RULE = ("churn_risk = 'high' and lifetime_value > 500 and city in ('Berlin', 'Hamburg')")
WINBACK: dict[str, Any] = {
    "name": "winback", "channel": "email", "offer_id": "winback_voucher_10",
    "product_group": "vouchers", "where": RULE,
}

# profile: (first, last, email, phone, city, churn_risk, lifetime_value)
PEOPLE = {
    "P01": ("Anna", "Alt", "anna@example.com", "+4915100000001", "Berlin", "high", 900.0),
    "P02": ("Bob", "Bach", "bob@example.com", None, "Berlin", "high", 800.0),
    "P03": ("Cara", "Cole", "cara@example.com", None, "Hamburg", "high", 700.0),
    "P04": ("Dan", "Dorn", "dan@example.com", None, "Berlin", "high", 600.0),
    "P05": ("Eve", "Ehm", "eve@example.com", "+4915100000005", "Berlin", "high", 950.0),
    "P06": ("Finn", "Falk", "finn@example.com", None, "Hamburg", "high", 650.0),
    "P07": ("Gina", "Gold", "gina@example.com", "+4915100000007", "Berlin", "high", 990.0),
    "P08": ("Hugo", "Hahn", "hugo@example.com", None, "Berlin", "high", 700.0),
    "P09": ("Ida", "Iser", "ida@example.com", None, "Hamburg", "high", 100.0),
    "P10": ("Jan", "Jost", "jan@example.com", None, "Berlin", "high", 510.0),
    "P11": ("Kim", "Kern", "kim@example.com", "+4915100000011", "Hamburg", "high", 777.0),
}
EXPECTED_MEMBERS = ["P01", "P10", "P11"]
EXPECTED_DROPS = {
    ("P02", "consent", "opted_out"),
    ("P03", "consent", "no_opt_in"),
    ("P04", "consent", "suppressed_identifier"),
    ("P05", "frequency_cap", "cap_reached_per_week"),
    ("P06", "frequency_cap", "cap_reached_per_month"),
    ("P07", "cooldown", "offer_rejected_via_phone"),
    ("P08", "excluded_product_group", "product_group_excluded"),
}

SCHEMA = {
    "main.dim_profiles": "profile_id VARCHAR, first_name VARCHAR, last_name VARCHAR, "
    "email VARCHAR, phone VARCHAR, birth_date DATE, street VARCHAR, house_number VARCHAR, "
    "postcode VARCHAR, city VARCHAR, country VARCHAR, customer_number VARCHAR",
    "main.dim_profile_consent": "profile_id VARCHAR, channel VARCHAR, contact_point VARCHAR, "
    "status VARCHAR, is_contactable BOOLEAN, decided_by_source VARCHAR, decided_at TIMESTAMP",
    "main.dim_suppression_list": "identifier_hash VARCHAR, identifier_type VARCHAR, "
    "channel VARCHAR, reason VARCHAR, suppressed_at TIMESTAMP, source VARCHAR",
    "main.dim_profile_preferences": "profile_id VARCHAR, max_contacts INTEGER, "
    "contact_period VARCHAR, excluded_product_groups VARCHAR[], decided_at TIMESTAMP",
    "main.fct_offer_responses": "profile_id VARCHAR, offer_id VARCHAR, product_group VARCHAR, "
    "channel VARCHAR, response VARCHAR, responded_at TIMESTAMP, source VARCHAR, "
    "record_id VARCHAR",
    "main.dim_profile_traits": "profile_id VARCHAR, recency_days INTEGER, frequency INTEGER, "
    "monetary DOUBLE, lifetime_value DOUBLE, churn_score DOUBLE, churn_risk VARCHAR, "
    "moved_at TIMESTAMP, new_baby_at TIMESTAMP",
    "main.fct_identity_graph": "profile_id VARCHAR, source VARCHAR, record_id VARCHAR, "
    "record_ts TIMESTAMP, email VARCHAR, phone VARCHAR, customer_number VARCHAR",
    "segments.seg_email_newsletter": "profile_id VARCHAR, email VARCHAR, firstname VARCHAR, "
    "lastname VARCHAR, city VARCHAR, country VARCHAR",
    "main._publication": "run_id VARCHAR, published_at TIMESTAMP",
}


def scenario_rows(unsubscribed: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for SCHEMA: each profile hits exactly one suppression step (or none)."""
    t = datetime.fromisoformat
    profiles, traits, graph, consent = [], [], [], []
    for pid, (first, last, email, phone, city, risk, ltv) in PEOPLE.items():
        profiles.append((pid, first, last, email, phone, None, "Hauptstr.", "1", "10115", city,
                         "DE", None))
        traits.append((pid, 10, 3, ltv / 2, ltv, 0.9, risk, None, None))
        graph.append((pid, "crm_customers", f"crm-{pid}", t("2026-01-01"), email, phone, None))
        if pid == "P03":
            continue
        status = "opted_out" if pid == "P02" or pid in unsubscribed else "opted_in"
        consent.append((pid, "email", email, status, status == "opted_in", "consent_log",
                        t("2026-02-01")))
    responses = [
        *[("P05", f"o{i}", "books", ch, "delivered", t("2026-03-10 09:00"), "esp", f"r5{i}")
          for i, ch in enumerate(("email", "sms", "phone"))],
        ("P06", "o9", "books", "email", "delivered", t("2026-03-02 09:00"), "esp", "r61"),
        ("P07", "winback_voucher_10", "vouchers", "phone", "rejected", t("2026-03-02 15:00"),
         "call_centre", "r71"),
        ("P10", "winback_voucher_10", "vouchers", "email", "rejected", t("2026-01-05 10:00"),
         "esp", "r101"),
        *[("P11", f"o{i}", "books", "email", "delivered", t("2026-03-11 09:00"), "esp",
           f"r11{i}") for i in range(2)],
        ("P05", "o0", "books", "email", "delivered", t("2026-03-02 09:00"), "esp", "r50old"),
    ]
    return {
        "main.dim_profiles": profiles,
        "main.dim_profile_consent": consent,
        "main.dim_suppression_list": [
            (hashlib.sha256(b"dan@example.com").hexdigest(), "email", "email", "erased",
             t("2025-12-01"), "erasure"),
        ],
        "main.dim_profile_preferences": [
            ("P06", 1, "month", [], t("2026-01-01")),
            ("P08", None, None, ["vouchers", "travel"], t("2026-01-01")),
            ("P11", 5, "week", [], t("2026-01-01")),
        ],
        "main.fct_offer_responses": responses,
        "main.dim_profile_traits": traits,
        "main.fct_identity_graph": graph,
        "segments.seg_email_newsletter": [
            (c[0], c[2], PEOPLE[c[0]][0], PEOPLE[c[0]][1], PEOPLE[c[0]][4], "DE")
            for c in consent if c[4]
        ],
        "main._publication": [("run-test", t("2026-03-12 06:00"))],
    }


def write_published(
    path: Path, rows: dict[str, list[tuple[Any, ...]]] | None = None, omit: tuple[str, ...] = ()
) -> Path:
    """A published warehouse with exactly the contracted marts (minus ``omit``), via a
    temporary file renamed into place like a real publication."""
    rows = scenario_rows() if rows is None else rows
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute("CREATE SCHEMA segments")
        for table, columns in SCHEMA.items():
            if table in omit:
                continue
            con.execute(f"CREATE TABLE {table} ({columns})")
            if rows.get(table):
                frame = pd.DataFrame(rows[table], dtype=object)  # noqa: F841 (read by SQL)
                con.execute(f"INSERT INTO {table} SELECT * FROM frame")
    tmp.replace(path)
    return path


def activation_config(*entries: dict[str, Any]) -> ActivationConfig:
    segments = [build_segment(entry) for entry in entries or (WINBACK,)]
    return ActivationConfig({s.name: s for s in segments}, SuppressionPolicy())


@pytest.fixture
def published(tmp_path: Path) -> Path:
    return write_published(tmp_path / "published.duckdb")


# ----------------------------------------------------------------------------- compilation


def test_rule_compiles_to_whitelisted_identifiers_and_bound_values() -> None:
    segment = build_segment(WINBACK)
    sql, params = segment.candidates_sql()
    assert params == ["high", 500, "Berlin", "Hamburg"]
    assert "'high'" not in sql and "Berlin" not in sql and "500" not in sql
    assert 't."churn_risk" = ?' in sql and 'p."city" IN (?, ?)' in sql
    assert segment.required_tables() == {"main.dim_profiles", "main.dim_profile_traits"}


@pytest.mark.parametrize("text", [
    "city = 'Berlin' or not (churn_score >= 0.5 and recency_days between 1 and 30)",
    "postcode not in ('10115', '20095') and moved_at is not null and new_baby_at is null",
    "birth_date < '1990-01-01' and city != 'O''Brien'",
])
def test_valid_rules_parse(text: str) -> None:
    parse_condition("ok", text)


@pytest.mark.parametrize(("text", "offending"), [
    ("city = 'Berlin' or 1=1) UNION SELECT email FROM dim_profiles", "'1'"),
    ("city = 'x') UNION SELECT * FROM main.dim_profiles WHERE (1=1", "')'"),
    ("read_csv('/etc/passwd') is not null", "read_csv"),
    ("city in (SELECT city FROM dim_profiles)", "SELECT"),
    ("ATTACH '/tmp/x.duckdb' AS x", "ATTACH"),
    ("password = 'x'", "password"),
    ("city = 'Berlin'; DROP TABLE dim_profiles", "';'"),
    ("city ~ 'B.*'", "'~'"),
    ("city like 'B%'", "like"),
    ("lifetime_value > '500'", "numeric"),
    ("city = Berlin", "Berlin"),
    ("moved_at > 'yesterday'", "YYYY-MM-DD"),
    ("city = 'x' -- comment", "'-'"),
    ("", "empty"),
])
def test_malicious_or_unknown_input_is_rejected_before_anything_runs(
    text: str, offending: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sql(*_: object, **__: object) -> None:
        raise AssertionError("a database was opened for an invalid segment")

    monkeypatch.setattr(duckdb, "connect", no_sql)
    with pytest.raises(SegmentError) as error:
        build_segment({**WINBACK, "name": "evil", "where": text})
    assert "'evil'" in str(error.value) and offending in str(error.value)


@pytest.mark.parametrize(("entry", "message"), [
    ({"channel": "fax"}, r"^channel: Value error, must be one of email, sms, phone, post, "
                         r"online_ads$"),
    ({"name": "../etc"}, r"^name: Value error, must match \[a-z\]\[a-z0-9_\]"),
    ({"model": "seg_x"}, r"^Value error, give exactly one of 'where' \(a rule\) or 'model'"),
    ({"limit": 5}, r"^limit: Extra inputs are not permitted$"),
    ({"where": None, "model": 'x"; DROP'}, r"^model: Value error, must match \[a-z\]"),
    ({"offer_id": 7}, r"^offer_id: Input should be a valid string$"),
])
def test_invalid_definitions_name_the_problem(entry: dict[str, Any], message: str) -> None:
    """Key and problem, never the value (``fax``, ``../etc``, the model text)."""
    with pytest.raises(SegmentError, match=message) as error:
        build_segment({**WINBACK, **entry})
    for value in entry.values():
        assert value is None or str(value) not in str(error.value)


@pytest.mark.parametrize("name", ["churn\n", "churn\r\n", "\nchurn", "churn "])
def test_a_name_must_match_whole_not_up_to_a_trailing_newline(name: str,
                                                              published: Path) -> None:
    with pytest.raises(SegmentError, match=r"^name: Value error, must match \[a-z\]\[a-z0-9_\]"):
        build_segment({**WINBACK, "name": name})
    with pytest.raises(SegmentError, match=r"^model: Value error, must match \[a-z\]"):
        build_segment({**WINBACK, "where": None, "model": name})
    with duckdb.connect(str(published)) as con:  # a dbt model whose table name no YAML matches
        con.execute(f'CREATE TABLE segments."{name}" AS SELECT \'P01\' AS profile_id')
    with open_published(published) as con:
        assert name not in available_segments(activation_config(), con)


def test_segments_file_errors_name_file_and_key_and_come_all_at_once(tmp_path: Path) -> None:
    path = tmp_path / "segments.yml"
    path.write_text(json.dumps({
        "suppression": {"frequency_cap": {"period": "day"}, "cooldown_days": -1},
        "segments": [WINBACK, {**WINBACK, "channel": "fax"}, {**WINBACK, "where": "x = 1"},
                     WINBACK],
    }))
    with pytest.raises(SegmentError) as error:
        load_config(path)
    assert error.value.lines() == [
        f"{path}: suppression.frequency_cap.period: Value error, must be one of week, month",
        f"{path}: suppression.cooldown_days: Input should be greater than or equal to 0",
    ]
    path.write_text(json.dumps({"segments": [WINBACK, {**WINBACK, "channel": "fax"},
                                             {**WINBACK, "where": "x = 1"}, WINBACK, 3]}))
    with pytest.raises(SegmentError) as error:
        load_config(path)
    assert error.value.lines() == [
        f"{path}: segments[4]: Input should be a valid dictionary",
    ]
    path.write_text(json.dumps({"segments": [WINBACK, {**WINBACK, "channel": "fax"},
                                             {**WINBACK, "where": "x = 1"}, WINBACK]}))
    with pytest.raises(SegmentError) as error:
        load_config(path)
    assert error.value.lines() == [
        f"{path}: segments[1].channel: Value error, must be one of email, sms, phone, post, "
        "online_ads",
        f"{path}: segments[2].where: segment 'winback': unknown field 'x' (allowed: "
        f"{', '.join(sorted(FIELDS))})",
        f"{path}: segments[3].name: segment 'winback' is defined twice",
    ]


def test_a_segments_file_that_is_not_a_mapping_or_not_yaml_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "segments.yml"
    path.write_text("- just a list\n")
    with pytest.raises(SegmentError, match=r"segments.yml: Input should be a valid dictionary"):
        load_config(path)
    path.write_text("segments: [\n")
    with pytest.raises(SegmentError, match=r"segments.yml: line \d+, column \d+: not valid YAML"):
        load_config(path)
    path.write_text("")
    assert load_config(path).segments == {}


def test_repository_segments_config_loads() -> None:
    config = load_config(Path(__file__).resolve().parent.parent / "config" / "segments.yml")
    assert config.segments and config.policy.cooldown_days > 0


# ----------------------------------------------------------------------------- suppression


def test_each_suppression_step_drops_with_its_reason(published: Path) -> None:
    config = activation_config()
    with open_published(published) as con:
        result = suppress(con, config.segments["winback"], config.policy, AS_OF)
        members = con.execute(f"SELECT profile_id, contact_point FROM {result.members} "
                              "ORDER BY 1").fetchall()
        drops = set(con.execute(f"SELECT * FROM {result.drops}").fetchall())
    assert [m[0] for m in members] == EXPECTED_MEMBERS
    assert members[0][1] == "anna@example.com"
    assert drops == EXPECTED_DROPS
    assert result.candidates == len(PEOPLE) - 1  # Ida's lifetime value is too low
    assert [(s.step, s.dropped, s.remaining) for s in result.steps] == [
        ("consent", 3, 7), ("frequency_cap", 2, 5), ("cooldown", 1, 4),
        ("excluded_product_group", 1, 3),
    ]


def test_cooldown_reads_the_offers_product_group_when_the_segment_names_none(
    published: Path,
) -> None:
    config = activation_config({**WINBACK, "product_group": None})
    with open_published(published) as con:
        result = suppress(con, config.segments["winback"], config.policy, AS_OF)
        excluded = con.execute(f"SELECT profile_id FROM {result.drops} "
                               "WHERE step = 'excluded_product_group'").fetchall()
    assert excluded == [("P08",)]


def test_a_stricter_global_cap_and_a_longer_cooldown_drop_more(published: Path) -> None:
    segment = build_segment(WINBACK)
    policy = SuppressionPolicy(max_contacts=2, period="week", cooldown_days=90)
    with open_published(published) as con:
        result = suppress(con, segment, policy, AS_OF)
        drops = dict(con.execute(f"SELECT profile_id, step FROM {result.drops}").fetchall())
    assert drops["P10"] == "cooldown"  # rejected 66 days ago
    assert "P11" not in drops  # two deliveries, but her own cap is five a week


def test_dbt_segments_are_discovered_and_suppressed_too(published: Path) -> None:
    config = activation_config()
    with open_published(published) as con:
        segments = available_segments(config, con)
        newsletter = segments["seg_email_newsletter"]
        result = suppress(con, newsletter, config.policy, AS_OF)
        dropped = dict(con.execute(f"SELECT profile_id, step FROM {result.drops}").fetchall())
    assert newsletter.kind == "dbt" and newsletter.channel == "email"
    assert dropped == {"P04": "consent", "P05": "frequency_cap", "P06": "frequency_cap"}


@pytest.mark.parametrize("missing", ["main.dim_profile_traits", "main.fct_offer_responses"])
def test_a_missing_mart_fails_with_a_clear_error(tmp_path: Path, missing: str) -> None:
    path = write_published(tmp_path / "published.duckdb", omit=(missing,))
    config = activation_config()
    with open_published(path) as con, pytest.raises(MissingTableError, match=missing):
        suppress(con, config.segments["winback"], config.policy, AS_OF)


def test_the_published_file_is_attached_read_only(published: Path) -> None:
    with open_published(published) as con, pytest.raises(duckdb.Error):
        con.execute("CREATE TABLE pub.main.x AS SELECT 1")
