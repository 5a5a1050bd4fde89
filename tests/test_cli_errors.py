"""CLI errors reach the terminal as written: rich would take "[a-z]" or "[bold]" in a message,
a path or a configured name for markup and silently drop it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_segments import WINBACK, write_published
from typer.testing import CliRunner

from cdp.cli import app

NAME_PATTERN = "[a-z][a-z0-9_]{0,62}"


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Exit code and stderr (lines re-joined: rich wraps at the terminal width)."""
    result = CliRunner(env={"COLUMNS": "500", **(env or {})}).invoke(app, list(args))
    return result.exit_code, " ".join(result.stderr.split())


def _segments_file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "segments.yml"
    path.write_text(json.dumps({"segments": [
        {"name": name, "channel": "email", "where": "churn_risk = 'high'"}]}))
    return path


@pytest.mark.parametrize(("name", "shown"), [("Churn", "'Churn'"), ("churn\n", r"'churn\n'")])
@pytest.mark.parametrize("command", ["list", "preview", "export"])
def test_an_invalid_segment_name_shows_the_pattern_with_its_brackets(
        tmp_path: Path, command: str, name: str, shown: str) -> None:
    config = _segments_file(tmp_path, name)
    args = ["segment", command, *([] if command == "list" else ["churn"]),
            "--config", str(config), "--home", str(tmp_path / "home")]
    code, stderr = _run(*args)
    assert code == 2
    assert f"error: {config}: segments[0].name: Value error, must match {NAME_PATTERN}" in stderr
    assert shown not in stderr  # the key and the problem, never the value


def test_serve_shows_a_configuration_error_as_written(tmp_path: Path) -> None:
    config = tmp_path / "[bold]config"
    _segments_file(config, "Churn")
    code, stderr = _run("serve", "--home", str(tmp_path / "home"),
                        env={"CDP_CONFIG": str(config), "CDP_API_KEYS": "k"})
    assert code == 2
    assert f"must match {NAME_PATTERN}" in stderr
    code, stderr = _run("serve", "--home", str(tmp_path / "home"),
                        env={"CDP_CONFIG": str(config), "CDP_API_KEYS": ""})
    assert code == 2
    assert f"{config / 'api.yml'}: key_sha256: no API keys configured" in stderr


def test_user_supplied_text_in_errors_keeps_its_brackets(tmp_path: Path) -> None:
    code, stderr = _run("demo", "generate", "--noise", "[bold]loud", "--home",
                        str(tmp_path / "home"))
    assert code == 2 and "unknown noise level '[bold]loud'" in stderr

    truth = tmp_path / "[red]truth.csv"
    code, stderr = _run("identity", "evaluate", "--truth", str(truth), "--home",
                        str(tmp_path / "home"))
    assert code == 2 and f"truth file {truth} does not exist" in stderr

    truth.write_text("source,record_id,person_id\n")
    home = tmp_path / "[i]home"
    code, stderr = _run("identity", "evaluate", "--truth", str(truth), "--home", str(home))
    assert code == 2
    assert f"no published warehouse at {home / 'warehouse' / 'published.duckdb'}" in stderr


def test_segment_list_shows_configured_text_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "warehouse").mkdir(parents=True)
    write_published(home / "warehouse" / "published.duckdb")
    config = tmp_path / "segments.yml"
    config.write_text(json.dumps({"segments": [
        {**WINBACK, "description": "[VIP] customers, [bold]high[/] value"}]}))
    result = CliRunner(env={"COLUMNS": "500"}).invoke(
        app, ["segment", "list", "--config", str(config), "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "[VIP] customers, [bold]high[/] value" in result.stdout


def test_cdp_run_reports_a_registry_typo_before_anything_runs(tmp_path: Path) -> None:
    """A typo in sources.yml ends `cdp run` with one message naming file, source and key, before
    demo data, Airflow or any stage starts."""
    from cdp.settings import REPO_ROOT

    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    registry = config / "sources.yml"
    text = registry.read_text(encoding="utf-8")
    assert "    record_key: crm_row_id" in text
    registry.write_text(text.replace("    record_key: crm_row_id", "    record_kee: crm_row_id"),
                        encoding="utf-8")
    home = tmp_path / "home"
    (home / "landing" / "crm_customers").mkdir(parents=True)
    (home / "landing" / "crm_customers" / "export.csv").write_text("crm_row_id\n1\n")
    code, stderr = _run("run", "--home", str(home), env={"CDP_CONFIG": str(config)})
    assert code == 2
    assert stderr.startswith("error: invalid configuration: ")
    assert f"{registry}: sources.crm_customers.record_kee: Extra inputs are not permitted" in stderr
    assert "Traceback" not in stderr
    assert not (home / "airflow").exists() and not any((home / "reports").rglob("*.json"))
