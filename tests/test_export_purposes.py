"""Purpose-bound export files and deliverable values, on the hand-made publication of
test_segments with online_ads consent and the deliverable-values mart added.

The winback members are P01, P10 and P11. For online_ads, P01 opted in with its e-mail, P11
with its phone only and P10 opted out, so the ad audiences hold P01 (e-mail hash) and P11
(phone hashes) and drop P10. P01's e-mail key ``annaalt@gmail.com`` was given as
``Anna.Alt@gmail.com``: that is what the members file carries and what the platforms hash.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from test_exports import _published, _rows, _sha
from test_segments import AS_OF, WINBACK, activation_config, scenario_rows, write_published

from profiles.activation.config import load_config
from profiles.activation.export import export_segment
from profiles.activation.segment import build_segment
from profiles.activation.syntax import SegmentError
from profiles.api import queries
from profiles.publishing.published import open_published
from quality.exports import validate_export
from quality.gate import QualityGateFailed

KEY, GIVEN = "annaalt@gmail.com", "Anna.Alt@gmail.com"
P11_PHONE = "+4915100000011"
AD_FILES = ("google_customer_match.csv", "meta_custom_audience.csv")
ADS = {**WINBACK, "ad_audiences": True}


def _scenario() -> dict[str, list[tuple[Any, ...]]]:
    """test_segments' scenario, P01's e-mail a Gmail key, plus online_ads consent."""
    rows = {table: [tuple(KEY if v == "anna@example.com" else v for v in row) for row in items]
            for table, items in scenario_rows().items()}
    decided = datetime(2026, 2, 15)
    rows["main.dim_profile_consent"] += [
        ("P01", "online_ads", KEY, "opted_in", True, "consent_log", decided),
        ("P10", "online_ads", "jan@example.com", "opted_out", False, "consent_log", decided),
        ("P11", "online_ads", "kim@example.com", "unknown", False, None, None),
        ("P11", "online_ads", P11_PHONE, "opted_in", True, "consent_log", decided),
    ]
    return rows


def write_with_values(path: Path, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """The publication plus ``main.dim_profile_contact_values``: P01's given spelling differs
    from its key, everyone else's is the key."""
    write_published(path, rows)
    with duckdb.connect(str(path)) as con:
        con.execute(
            """CREATE TABLE main.dim_profile_contact_values AS
            SELECT profile_id, 'email' AS identifier_type, email AS contact_point,
                   CASE email WHEN ? THEN ? ELSE email END AS given_value,
                   CASE email WHEN ? THEN ? ELSE email END AS deliverable_value,
                   source AS given_by_source, record_id AS given_by_record_id,
                   record_ts AS given_at
            FROM main.fct_identity_graph WHERE email IS NOT NULL
            UNION ALL
            SELECT profile_id, 'phone', phone, phone, phone, source, record_id, record_ts
            FROM main.fct_identity_graph WHERE phone IS NOT NULL""", [KEY, GIVEN, KEY, GIVEN])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "warehouse").mkdir()
    write_with_values(_published(tmp_path), _scenario())
    return tmp_path


def _export(home: Path, entry: dict[str, Any] = ADS, run: str = "run-1") -> tuple[Path, dict]:
    export = export_segment(_published(home), home / "exports", entry["name"], run,
                            activation_config(entry), AS_OF)
    return export.directory, json.loads((export.directory / "manifest.json").read_text())


# ------------------------------------------------------------------ purpose-bound files


def test_ad_audiences_hold_only_members_with_online_ads_consent(home: Path) -> None:
    folder, manifest = _export(home)

    assert [m["profile_id"] for m in _rows(folder / "members.csv")] == ["P01", "P10", "P11"]
    google = _rows(folder / "google_customer_match.csv")
    meta = _rows(folder / "meta_custom_audience.csv")
    # Google / Meta rules on the deliverable value: lower-cased and trimmed, Gmail dots kept
    assert google == [{"Email": _sha("anna.alt@gmail.com"), "Phone": ""},
                      {"Email": "", "Phone": _sha(P11_PHONE)}]
    assert meta == [{"email": _sha("anna.alt@gmail.com"), "phone": ""},
                    {"email": "", "phone": _sha(P11_PHONE.lstrip("+"))}]
    assert _sha(KEY) not in json.dumps(google + meta)  # not the matching key's hash

    listed = {f["name"]: f for f in manifest["files"]}
    for name in AD_FILES:
        assert listed[name]["purpose"] == "online_ads"
        assert listed[name]["rows"] == 2 and listed[name]["dropped"] == {"opted_out": 1}
        assert listed[name]["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    members = listed["members.csv"]
    assert members["purpose"] == "email" and members["rows"] == 3
    # every file's written + dropped adds up to what it was drawn from
    assert members["rows"] + sum(members["dropped"].values()) == manifest["candidates"]
    assert listed[AD_FILES[0]]["rows"] + sum(listed[AD_FILES[0]]["dropped"].values()) == 3


def test_every_ad_row_has_online_ads_consent_in_the_publication(home: Path) -> None:
    """Independent of the exporter: hash every online_ads-contactable point of the
    publication the platform's way and look every ad-file digest up there."""
    folder, _ = _export(home)
    with duckdb.connect(str(_published(home)), read_only=True) as con:
        consented = {row[0] for row in con.execute(
            """SELECT sha256(lower(trim(v.deliverable_value))) FROM main.dim_profile_consent c
               JOIN main.dim_profile_contact_values v USING (profile_id, contact_point)
               WHERE c.channel = 'online_ads' AND c.is_contactable
               UNION SELECT sha256(contact_point) FROM main.dim_profile_consent
               WHERE channel = 'online_ads' AND is_contactable""").fetchall()}
    digests = {v for row in _rows(folder / AD_FILES[0]) for v in row.values() if v}
    assert digests and digests <= consented


def test_a_segment_without_ad_purpose_writes_no_ad_files(home: Path) -> None:
    folder, manifest = _export(home, WINBACK)
    assert not any((folder / name).exists() for name in AD_FILES)
    assert not {f["name"] for f in manifest["files"]} & set(AD_FILES)


def test_an_online_ads_segment_declares_its_ad_purpose_by_default() -> None:
    ads = build_segment({**WINBACK, "channel": "online_ads"})
    assert ads.ad_audiences
    assert not build_segment({**WINBACK, "channel": "online_ads", "ad_audiences": False}
                             ).ad_audiences
    assert not build_segment(WINBACK).ad_audiences
    assert build_segment(ADS).definition_hash != build_segment(WINBACK).definition_hash


def test_ad_audiences_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "segments.yml"
    path.write_text(json.dumps({"segments": [{**WINBACK, "ad_audiences": "yes"}]}))
    with pytest.raises(SegmentError) as error:
        load_config(path)
    assert error.value.lines() == [
        f"{path}: segments[0].ad_audiences: Input should be a valid boolean"]


def test_the_repository_segments_file_declares_ad_audiences_explicitly() -> None:
    segments = load_config(Path(__file__).parents[1] / "config" / "segments.yml").segments
    assert {n for n, s in segments.items() if s.ad_audiences} == {"email_newsletter",
                                                                 "churn_winback_email"}


# -------------------------------------------------------------------------- the gate


def _audience(*profiles: tuple[str, str | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame(profiles, columns=["profile_id", "email", "phone"], dtype=object)


def test_the_export_gate_fails_an_ad_file_with_a_row_without_online_ads_consent(
    home: Path,
) -> None:
    members = _audience(("P01", GIVEN, None), ("P10", "jan@example.com", None))
    consented = _audience(("P01", GIVEN, None), ("P11", None, P11_PHONE))
    result = validate_export(_published(home), members, "email", None, home / "reports",
                             segment="winback", audiences={AD_FILES[0]: consented})
    assert result.success

    # P10 opted out of online ads; P11's e-mail has no online_ads opt-in (only its phone)
    violating = _audience(("P01", GIVEN, None), ("P10", "jan@example.com", None),
                          ("P11", "kim@example.com", P11_PHONE))
    with pytest.raises(QualityGateFailed) as failed:
        validate_export(_published(home), members, "email", None, home / "reports",
                        segment="winback", audiences={AD_FILES[0]: violating})
    [failure] = failed.value.result.failures
    described = failure.describe()
    assert f"exports.winback.{AD_FILES[0]}.consent" in described
    assert "P10:online_ads" in described and "P11:online_ads" in described
    assert "P01" not in described
    assert "@" not in described and P11_PHONE not in described


# ----------------------------------------------------------------- deliverable values


def test_exports_carry_the_deliverable_value_not_the_matching_key(home: Path) -> None:
    first, _ = _export(home)
    members = {m["profile_id"]: m for m in _rows(first / "members.csv")}
    assert members["P01"]["email"] == GIVEN and members["P10"]["email"] == "jan@example.com"
    parquet = duckdb.execute("SELECT email FROM read_parquet(?) WHERE profile_id = 'P01'",
                             [str(first / "members.parquet")]).fetchall()
    assert parquet == [(GIVEN,)]
    assert _rows(first / "joined.csv")[0]["email"] == GIVEN

    rows = _scenario()  # P01 unsubscribes: the delta names the address it was sent to
    rows["main.dim_profile_consent"] = [
        (*c[:3], "opted_out", False, *c[5:]) if c[:2] == ("P01", "email") else c
        for c in rows["main.dim_profile_consent"]]
    write_with_values(_published(home), rows)
    second, _ = _export(home, run="run-2")
    assert [(r["profile_id"], r["email"]) for r in _rows(second / "left.csv")] == [("P01", GIVEN)]


def test_the_api_hands_out_the_deliverable_value(home: Path) -> None:
    segment = build_segment(WINBACK)
    with open_published(_published(home)) as con:
        queries.build_members(con, segment, activation_config())
        member = queries.rows_after(con, queries.members_table(segment), "", 1)
        document = queries.profile_document(con, "P01")
    assert member[0]["profile_id"] == "P01" and member[0]["email"] == GIVEN
    assert document is not None
    record = json.loads(document)
    assert record["email"] == GIVEN
    assert record["consent"][0]["contact_point"] == KEY  # consent binds the matching key
