"""Airflow's environment for a data directory (cdp/airflow_env.py, ``cdp airflow env``):
home and generated files under the data directory, secrets generated once and private, never
printed, the venv's scripts first on PATH, loopback by default. The real components run in
tests/test_airflow_scheduler.py."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cdp.airflow_env import (
    AIRFLOW_CFG,
    admin_password,
    airflow_environment,
    airflow_home,
    bin_dir,
    ensure_admin_password,
    ensure_secrets,
    env_file,
    password_file,
    secrets_file,
)
from cdp.cli import app
from cdp.settings import REPO_ROOT
from core.paths import DataPaths


def test_home_config_and_generated_files_are_in_the_data_directory(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "home")
    env = airflow_environment(paths, port=8123)
    assert env["AIRFLOW_HOME"] == str(paths.home / "airflow") == str(airflow_home(paths))
    assert env["AIRFLOW_CONFIG"] == str(AIRFLOW_CFG) == str(REPO_ROOT / "airflow.cfg")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_ROOT / "dags")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{paths.home / 'airflow' / 'airflow.db'}")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(password_file(paths))
    assert Path(env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]).is_relative_to(paths.home)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "8123"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8123/execution/"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent) == str(bin_dir())
    assert (bin_dir() / "airflow").exists()


def test_secrets_are_generated_once_private_and_shared(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "home")
    first = ensure_secrets(paths)
    assert set(first) == {"AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
                          "AIRFLOW__CORE__FERNET_KEY"}
    assert all(len(value) >= 32 for value in first.values())
    assert len(set(first.values())) == 3
    assert secrets_file(paths).stat().st_mode & 0o777 == 0o600
    assert ensure_secrets(paths) == first  # never regenerated
    assert {k: v for k, v in airflow_environment(paths).items() if k in first} == first
    # Another data directory, other secrets.
    assert ensure_secrets(DataPaths(tmp_path / "other")) != first
    # The file sources in a POSIX shell to the same values.
    shown = subprocess.run(
        ["sh", "-c", f". {shlex.quote(str(secrets_file(paths)))}; "
         "printf '%s\\n' \"$AIRFLOW__API_AUTH__JWT_SECRET\""],
        capture_output=True, text=True, check=True).stdout.strip()
    assert shown == first["AIRFLOW__API_AUTH__JWT_SECRET"]


def test_admin_password_is_generated_once_and_private(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "home")
    path = ensure_admin_password(paths)
    password = admin_password(paths)
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {"admin": password} and len(password) >= 12
    ensure_admin_password(paths)
    assert admin_password(paths) == password


def test_cdp_airflow_env_prints_no_secret_and_writes_a_sourceable_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["airflow", "env", "--home", str(home), "--port", "8124"])
    assert result.exit_code == 0, result.output
    paths = DataPaths(home.resolve())
    secrets = ensure_secrets(paths)
    written = env_file(paths).read_text()
    for value in secrets.values():
        assert value not in result.output
        assert value not in written
    assert env_file(paths).stat().st_mode & 0o777 == 0o600
    assert "export AIRFLOW__API__PORT=8124" in result.output
    # Sourced from a shell without the venv: airflow is found, the secrets are set.
    script = (f". {shlex.quote(str(env_file(paths)))}; command -v airflow; "
              "printf '%s\\n' \"$AIRFLOW_HOME\" \"$AIRFLOW__API__SECRET_KEY\"")
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}).stdout.split()
    assert out == [str(bin_dir() / "airflow"), str(airflow_home(paths)),
                   secrets["AIRFLOW__API__SECRET_KEY"]]


def test_metadata_db_is_migrated_once_per_airflow_version(tmp_path: Path) -> None:
    """``cdp run`` checks Airflow's migrations only for a new DB or another Airflow version
    (the check costs every run a second and a half); a deleted DB is created again."""
    from importlib.metadata import version

    paths = DataPaths(tmp_path / "home")
    ensure = ("import sys, pathlib; from core.paths import DataPaths; from cdp.airflow_env "
              "import ensure_metadata_db; "
              "ensure_metadata_db(DataPaths(pathlib.Path(sys.argv[1])).ensure())")

    def run() -> None:  # its own process: Airflow's settings are process-wide
        subprocess.run([sys.executable, "-c", ensure, str(paths.home)], check=True,
                       cwd=REPO_ROOT, capture_output=True)

    run()
    db, stamp = airflow_home(paths) / "airflow.db", airflow_home(paths) / ".migrated"
    assert db.exists() and stamp.read_text() == version("apache-airflow")
    stamped = stamp.stat().st_mtime_ns
    run()
    assert stamp.stat().st_mtime_ns == stamped  # not migrated again
    db.unlink()
    run()
    assert db.exists() and stamp.stat().st_mtime_ns > stamped
