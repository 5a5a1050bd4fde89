"""Exports from the published warehouse: files, manifest, hashed audiences, deltas, dry run."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import duckdb
import pytest
from test_segments import (
    AS_OF,
    EXPECTED_DROPS,
    EXPECTED_MEMBERS,
    WINBACK,
    activation_config,
    scenario_rows,
    write_published,
)
from typer.testing import CliRunner

from profiles.activation.export import export_all, export_segment, preview_segment
from profiles.activation.hashing import (
    EMAIL_SQL,
    GOOGLE_PHONE_SQL,
    META_PHONE_SQL,
    ad_email,
    google_phone,
    hashed,
    meta_phone,
)
from profiles.publishing.published import MissingTableError

MOBILE_SPELLINGS = ("0151 2345 6789", "+49 151 23456789", "0049-151-23456789")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _published(home: Path) -> Path:
    return home / "warehouse" / "published.duckdb"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory whose published warehouse holds the hand-made scenario."""
    (tmp_path / "warehouse").mkdir()
    write_published(_published(tmp_path))
    return tmp_path


# --------------------------------------------------------------------------------- hashing


def test_email_hash_is_sha256_of_trimmed_lowercased_address() -> None:
    assert hashed(ad_email(" Foo.Bar@Gmail.com ")) == _sha("foo.bar@gmail.com")


@pytest.mark.parametrize("spelling", MOBILE_SPELLINGS)
def test_phone_hashes_follow_each_platforms_rule(spelling: str) -> None:
    assert hashed(google_phone(spelling)) == _sha("+4915123456789")
    assert hashed(meta_phone(spelling)) == _sha("4915123456789")


def test_sql_hashing_matches_the_python_rules() -> None:
    """Exports hash in DuckDB; the warehouse already holds E.164 phones."""
    e164 = google_phone(MOBILE_SPELLINGS[0])
    assert e164 is not None
    row = duckdb.execute(
        f"SELECT {EMAIL_SQL.format('$1')}, {GOOGLE_PHONE_SQL.format('$2')}, "
        f"{META_PHONE_SQL.format('$2')}", [" Foo.Bar@Gmail.com ", e164]).fetchone()
    assert row == (hashed(ad_email(" Foo.Bar@Gmail.com ")), hashed(google_phone(e164)),
                   hashed(meta_phone(e164)))


# --------------------------------------------------------------------------------- exports


def test_export_writes_every_file_with_a_checked_manifest(home: Path) -> None:
    before = hashlib.sha256(_published(home).read_bytes()).hexdigest()
    export = export_segment(_published(home), home / "exports", "winback", "run-1",
                            activation_config(), AS_OF)

    assert export.directory == home / "exports" / "winback" / "run-1"
    assert not list((home / "exports" / "winback").glob(".*"))  # no temp folder left
    manifest = json.loads((export.directory / "manifest.json").read_text())
    assert manifest["run_id"] == "run-1" and manifest["publication_run_id"] == "run-test"
    assert manifest["definition_hash"] == export.manifest.definition_hash
    assert len(manifest["definition_hash"]) == 64
    listed = {f["name"]: f for f in manifest["files"]}
    # no ad purpose declared: no ad files (tests/test_export_purposes.py has them)
    assert set(listed) == {"members.csv", "members.parquet", "joined.csv", "left.csv",
                           "suppressed.csv"}
    assert {n: f["purpose"] for n, f in listed.items()} == {
        "members.csv": "email", "members.parquet": "email", "joined.csv": "email",
        "left.csv": "email", "suppressed.csv": None}
    assert listed["members.csv"]["dropped"] == {r: 1 for _, _, r in EXPECTED_DROPS}
    # a hand-made publication without the deliverable-values mart: keys, and the manifest says so
    assert manifest["notes"] == [
        "main.dim_profile_contact_values not in the publication (published before it "
        "existed): contact points handed out in their normalised form"]
    for name, item in listed.items():
        path = export.directory / name
        assert item["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), name
    members = _rows(export.directory / "members.csv")
    assert [m["profile_id"] for m in members] == EXPECTED_MEMBERS
    assert list(members[0]) == ["profile_id", "email", "firstname", "lastname", "phone",
                                "address1", "zipcode", "city", "country"]
    assert members[0]["email"] == "anna@example.com" and members[0]["firstname"] == "Anna"
    assert {m["country"] for m in members} == {"Germany"}  # the warehouse's DE, as Mautic wants
    parquet = duckdb.execute("SELECT profile_id FROM read_parquet(?) ORDER BY 1",
                             [str(export.directory / "members.parquet")]).fetchall()
    assert [p[0] for p in parquet] == EXPECTED_MEMBERS
    suppressed = {tuple(r.values()) for r in _rows(export.directory / "suppressed.csv")}
    assert suppressed == EXPECTED_DROPS
    for name in ("members.csv", "joined.csv", "suppressed.csv"):
        assert listed[name]["rows"] == len(_rows(export.directory / name))
    assert listed["joined.csv"]["rows"] == 3 and listed["left.csv"]["rows"] == 0
    assert hashlib.sha256(_published(home).read_bytes()).hexdigest() == before


def test_delta_export_lists_a_person_who_unsubscribed_as_left(home: Path) -> None:
    config = activation_config()
    export_segment(_published(home), home / "exports", "winback", "run-1", config, AS_OF)
    write_published(_published(home), scenario_rows(unsubscribed=("P01",)))

    second = export_segment(_published(home), home / "exports", "winback", "run-2", config,
                            AS_OF)

    left = _rows(second.directory / "left.csv")
    assert [(r["profile_id"], r["email"]) for r in left] == [("P01", "anna@example.com")]
    assert _rows(second.directory / "joined.csv") == []
    assert second.manifest.previous_run_id == "run-1"
    assert "P01" not in {r["profile_id"] for r in _rows(second.directory / "members.csv")}


@pytest.mark.integration  # three exports, > 2 s
def test_re_exporting_a_run_replaces_it_and_keeps_the_delta_base(home: Path) -> None:
    config = activation_config()
    export_segment(_published(home), home / "exports", "winback", "run-1", config, AS_OF)
    export_segment(_published(home), home / "exports", "winback", "run-2", config, AS_OF)
    again = export_segment(_published(home), home / "exports", "winback", "run-2", config,
                           AS_OF)
    assert again.manifest.previous_run_id == "run-1"
    assert sorted(p.name for p in (home / "exports" / "winback").iterdir()) == ["run-1",
                                                                                 "run-2"]


def test_export_all_covers_rule_and_dbt_segments(home: Path) -> None:
    exports, skipped = export_all(_published(home), home / "exports", "run-1",
                                  activation_config())
    assert {e.manifest.segment for e in exports} == {"winback", "seg_email_newsletter"}
    assert skipped == []


def test_a_segment_that_never_had_members_is_skipped_until_it_has(home: Path) -> None:
    """An example segment over data this installation does not have writes no empty export;
    once it was exported, an empty run is written (its left.csv says who left)."""
    munich = {**WINBACK, "name": "munich", "where": "city = 'München'"}
    config = activation_config(WINBACK, munich)
    exports, skipped = export_all(_published(home), home / "exports", "run-1", config,
                                  as_of=AS_OF)
    assert skipped == ["munich"] and not (home / "exports" / "munich").exists()
    assert "winback" in {e.manifest.segment for e in exports}

    emptied = {**WINBACK, "where": "city = 'München'"}
    exports, skipped = export_all(_published(home), home / "exports", "run-2",
                                  activation_config(emptied), as_of=AS_OF)
    winback = next(e for e in exports if e.manifest.segment == "winback")
    assert "winback" not in skipped and winback.manifest.rows == 0
    assert len(_rows(winback.directory / "left.csv")) == len(EXPECTED_MEMBERS)


def test_a_missing_mart_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "warehouse").mkdir()
    write_published(_published(tmp_path), omit=("main.dim_suppression_list",))
    with pytest.raises(MissingTableError, match="main.dim_suppression_list"):
        export_segment(_published(tmp_path), tmp_path / "exports", "winback", "run-1",
                       activation_config(), AS_OF)
    assert not list((tmp_path / "exports").rglob("*.csv"))


def test_a_failed_export_gate_leaves_no_export(home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import quality.exports
    from quality.gate import GateResult, QualityGateFailed

    def failing(*_: object, **__: object) -> None:
        raise QualityGateFailed(GateResult(run_id="run-1", layers=("exports",)))

    monkeypatch.setattr(quality.exports, "validate_export", failing)
    with pytest.raises(QualityGateFailed):
        export_segment(_published(home), home / "exports", "winback", "run-1",
                       activation_config(), AS_OF)
    assert list((home / "exports" / "winback").iterdir()) == []


# -------------------------------------------------------------------------------- dry run


def test_preview_counts_steps_samples_ids_and_writes_nothing(home: Path) -> None:
    config = activation_config()
    export_segment(_published(home), home / "exports", "winback", "run-1", config, AS_OF)
    write_published(_published(home), scenario_rows(unsubscribed=("P01", "P10")))
    files_before = sorted((home / "exports").rglob("*"))

    preview = preview_segment(_published(home), home / "exports", "winback", config,
                              sample=2, as_of=AS_OF)

    assert sorted((home / "exports").rglob("*")) == files_before
    assert preview.candidates == 10 and preview.members == 1
    assert preview.previous_run_id == "run-1" and preview.change == -2
    opted_out = next(r for r in preview.reasons if r["reason"] == "opted_out")
    assert opted_out["profiles"] == 3 and opted_out["sample"] == ["P01", "P02"]


def test_cli_preview_shows_counts_and_ids_but_no_personal_data(home: Path) -> None:
    from cdp.cli import app

    config = home / "segments.yml"
    config.write_text(json.dumps({"segments": [WINBACK]}))  # JSON is YAML
    result = CliRunner().invoke(app, ["segment", "preview", "winback", "--home", str(home),
                                      "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "frequency_cap" in result.output and "P02" in result.output
    assert "@" not in result.output and "Anna" not in result.output
    assert not (home / "exports").exists() or not any((home / "exports").iterdir())


def test_cli_rejects_an_unknown_segment_with_exit_code_2(home: Path) -> None:
    from cdp.cli import app

    config = home / "segments.yml"
    config.write_text(json.dumps({"segments": [WINBACK]}))
    result = CliRunner().invoke(app, ["segment", "export", "nope", "--home", str(home),
                                      "--config", str(config)])
    assert result.exit_code == 2 and "unknown segment 'nope'" in result.output
