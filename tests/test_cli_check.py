"""``cdp check``: every configuration problem and landing-layout problem, before anything runs.

Each problem names the file and the key or column; the exit code says whether any is an error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdp.cli import app
from cdp.settings import REPO_ROOT

CRM_HEADER = ("crm_row_id;customer_number;vorname;nachname;geburtsdatum;email;telefon;strasse;"
              "hausnummer;plz;ort;land;kundenkarte;updated_at;email_opt_in;post_opt_in;"
              "phone_opt_in")


def _check(home: Path, config: Path) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "500"}).invoke(
        app, ["check", "--home", str(home), "--config-dir", str(config)])
    return result.exit_code, " ".join(result.stderr.split())


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", folder)
    return folder


def test_the_shipped_configuration_passes_and_missing_deliveries_are_warnings(
        tmp_path: Path, config: Path) -> None:
    crm = tmp_path / "home" / "landing" / "crm_customers"
    crm.mkdir(parents=True)
    (crm / "customers.csv").write_text(CRM_HEADER + "\n", encoding="utf-8")
    code, stderr = _check(tmp_path / "home", config)
    assert code == 0, stderr
    assert "no errors" in stderr
    assert "warning:" in stderr and "web_events: no file matches path" in stderr
    assert "crm_customers: no file" not in stderr


def test_a_folder_no_source_is_registered_for_and_a_missing_column_are_errors(
        tmp_path: Path, config: Path) -> None:
    landing = tmp_path / "home" / "landing"
    (landing / "crm_export").mkdir(parents=True)
    (landing / "crm_export" / "customers.csv").write_text("a;b\n1;2\n", encoding="utf-8")
    (landing / "crm_customers").mkdir()
    (landing / "crm_customers" / "customers.csv").write_text(
        CRM_HEADER.replace(";telefon", ";handy") + "\n", encoding="utf-8")
    code, stderr = _check(tmp_path / "home", config)
    assert code == 1
    assert "crm_export: no source of this name is registered" in stderr
    assert "crm_customers/customers.csv: missing mapped column(s) 'telefon'" in stderr


def test_every_invalid_file_is_reported_in_one_run_by_file_and_key(
        tmp_path: Path, config: Path) -> None:
    identity = config / "identity.yml"
    identity.write_text(identity.read_text().replace("match_threshold:", "match_threshold: 7 #"))
    quality = config / "quality.yml"
    quality.write_text(quality.read_text() + "\nno_such_threshold: 1\n")
    (config / "segments.yml").write_text("segments:\n  - name: Bad Name\n    channel: email\n")
    (config / "api.yml").write_text("page_size: {default: 0}\n")
    code, stderr = _check(tmp_path / "home", config)
    assert code == 1
    assert f"{identity}: identity.match_threshold: Input should be less than 1" in stderr
    assert f"{quality}: no_such_threshold:" in stderr
    assert f"{config / 'segments.yml'}: segments[0].name:" in stderr
    assert f"{config / 'api.yml'}: page_size.default: Input should be greater than" in stderr


def test_a_yaml_syntax_error_names_file_and_line(tmp_path: Path, config: Path) -> None:
    (config / "sources.yml").write_text("sources:\n  crm: {kind: offline\n")
    code, stderr = _check(tmp_path / "home", config)
    assert code == 1
    assert f"{config / 'sources.yml'}:" in stderr and "line" in stderr


@pytest.mark.integration  # a dag.test run
def test_a_run_with_an_invalid_file_stops_at_its_first_task_naming_file_and_key(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdp.run import run_pipeline
    from cdp.settings import data_paths

    identity = config / "identity.yml"
    identity.write_text(identity.read_text().replace("match_threshold:", "match_threshold: 7 #"))
    monkeypatch.setenv("CDP_CONFIG", str(config))
    paths = data_paths(tmp_path / "home").ensure()
    summary = run_pipeline(paths)
    assert not summary.succeeded
    assert summary.failed_tasks["registered_sources"] == "failed"
    assert any(f"{identity}: identity.match_threshold: Input should be less than 1" in error
               for error in summary.errors.values()), summary.errors
    assert not paths.build_db.exists()  # nothing was ingested or built
