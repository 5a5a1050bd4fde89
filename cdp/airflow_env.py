"""Airflow's environment for one data directory: embedded (``cdp run``, tests) or the real
components (``cdp airflow``: standalone, or scheduler, dag-processor and api-server apart).

Airflow reads its configuration when first imported, so :func:`configure_airflow` must run
before any ``import airflow``. The repository's ``airflow.cfg`` holds the static settings
(``AIRFLOW_CONFIG`` points at it); Airflow's home is ``<data directory>/airflow``, so its
metadata DB, task logs, the simple auth manager's generated password file and everything
else Airflow writes land in the data directory, never in the repository.

Every component of one installation must share ``[api_auth] jwt_secret`` (else the tasks
the scheduler starts fail with "Invalid auth token"), ``[api] secret_key`` and
``[core] fernet_key``. They are generated once per data directory into
``<data directory>/airflow/secrets.env`` (mode 0600) and handed to Airflow as ``AIRFLOW__*``
variables; their values are never printed or logged.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import sys
from pathlib import Path

from cdp.settings import REPO_ROOT
from core.paths import DataPaths

AIRFLOW_CFG = REPO_ROOT / "airflow.cfg"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
ADMIN_USER = "admin"

#: The shared secrets: variable -> how a new value is made.
_SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": lambda: secrets.token_urlsafe(32),
    "AIRFLOW__API__SECRET_KEY": lambda: secrets.token_urlsafe(32),
    # What cryptography's Fernet.generate_key() returns: 32 random bytes, url-safe base64.
    "AIRFLOW__CORE__FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
}

#: Quiet defaults a user may override in the environment.
_DEFAULTS = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "GX_ANALYTICS_ENABLED": "False",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
}


def airflow_home(paths: DataPaths) -> Path:
    """``<data directory>/airflow``: Airflow's home for this data directory."""
    return paths.home / "airflow"


def secrets_file(paths: DataPaths) -> Path:
    return airflow_home(paths) / "secrets.env"


def env_file(paths: DataPaths) -> Path:
    """The shell file a terminal sources to run Airflow commands on this data directory."""
    return airflow_home(paths) / "airflow.env"


def password_file(paths: DataPaths) -> Path:
    """The simple auth manager's passwords (``{"admin": "..."}``), readable by the owner only."""
    return airflow_home(paths) / "simple_auth_manager_passwords.json.generated"


def bin_dir() -> Path:
    """The folder of this interpreter's scripts (the venv's ``bin``): ``airflow standalone``
    starts its components as ``airflow`` from PATH. Not resolved: a venv's python is a
    symlink to the base interpreter."""
    return Path(sys.executable).parent


def _write_private(path: Path, text: str) -> bool:
    """Create ``path`` with ``text``, mode 0600, unless it exists (then False). Atomic: the
    file appears complete or not at all, and of two concurrent callers one wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read_env_lines(path: Path) -> dict[str, str]:
    """``export NAME=value`` lines (values shell-quoted) of a file this module wrote."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        words = shlex.split(value)
        values[name.strip()] = words[0] if words else ""
    return values


def ensure_secrets(paths: DataPaths) -> dict[str, str]:
    """The data directory's shared Airflow secrets, generated on first use (mode 0600)."""
    path = secrets_file(paths)
    if not path.exists():
        lines = ["# Airflow's shared secrets for this data directory (cdp/airflow_env.py).",
                 "# Generated once; every Airflow component must use the same values."]
        lines += [f"export {name}={shlex.quote(make())}" for name, make in _SECRETS.items()]
        _write_private(path, "\n".join(lines) + "\n")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    values = _read_env_lines(path)
    missing = sorted(set(_SECRETS) - set(values))
    if missing:
        raise RuntimeError(f"{path}: missing {', '.join(missing)}; delete the file to have "
                           "new secrets generated (restart every Airflow component after)")
    return {name: values[name] for name in _SECRETS}


def ensure_admin_password(paths: DataPaths) -> Path:
    """Generate the simple auth manager's admin password into its file (mode 0600) unless
    there: Airflow would generate it too, but print it to the terminal and its logs."""
    path = password_file(paths)
    _write_private(path, json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}) + "\n")
    return path


def admin_password(paths: DataPaths) -> str:
    return str(json.loads(password_file(paths).read_text(encoding="utf-8"))[ADMIN_USER])


def settings_environment(
    paths: DataPaths, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> dict[str, str]:
    """Every variable Airflow needs for this data directory, secrets and PATH aside."""
    home = airflow_home(paths)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(AIRFLOW_CFG),
        "CDP_HOME": str(paths.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file(paths)),
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        # Where the tasks the scheduler starts reach the API server (default: port 8080).
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{_url_host(host)}:{port}/execution/",
    }
    env.update({name: os.environ.get(name, value) for name, value in _DEFAULTS.items()})
    return env


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def airflow_environment(
    paths: DataPaths, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> dict[str, str]:
    """:func:`settings_environment` plus the shared secrets and PATH with this interpreter's
    scripts first: the whole environment of an Airflow component for this data directory."""
    env = settings_environment(paths, host, port)
    env.update(ensure_secrets(paths))
    path = os.environ.get("PATH", "")
    first = str(bin_dir())
    if path.split(os.pathsep, 1)[0] != first:
        path = os.pathsep.join([first, path]) if path else first
    env["PATH"] = path
    return env


def configure_airflow(
    paths: DataPaths, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> None:
    """Set this process's environment for Airflow on ``paths`` (before ``import airflow``)."""
    airflow_home(paths).mkdir(parents=True, exist_ok=True)
    env = airflow_environment(paths, host, port)
    # CDP_HOME stays the caller's: tasks of ``cdp run`` get the data directory as a param.
    env.pop("CDP_HOME")
    os.environ.update(env)


def env_script(paths: DataPaths, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """POSIX shell lines that set a terminal up for Airflow on this data directory: the
    settings, PATH with the venv's scripts first, and the secrets sourced from their file
    (so the values never appear in a terminal or in this text)."""
    lines = [f"export {name}={shlex.quote(value)}"
             for name, value in settings_environment(paths, host, port).items()]
    lines.append(f'export PATH={shlex.quote(str(bin_dir()))}:"$PATH"')
    lines.append(f". {shlex.quote(str(secrets_file(paths)))}")
    return "\n".join(lines) + "\n"


def write_env_file(paths: DataPaths, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Path:
    """Write :func:`env_script` to ``<data directory>/airflow/airflow.env`` (mode 0600)."""
    ensure_secrets(paths)
    path = env_file(paths)
    text = ("# Source in each terminal: . " + shlex.quote(str(path)) + "\n"
            "# Written by `cdp airflow env` / `cdp airflow standalone`.\n"
            + env_script(paths, host, port))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def ensure_metadata_db(
    paths: DataPaths, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> None:
    """Create or migrate Airflow's SQLite metadata DB for this data directory (idempotent).

    A stamp beside the DB names the Airflow version it was last migrated with: checking the
    migrations again costs every ``cdp run`` a second and a half, so it runs only for a new
    DB or another Airflow version."""
    from importlib.metadata import version

    configure_airflow(paths, host, port)
    home = airflow_home(paths)
    stamp = home / ".migrated"
    current = version("apache-airflow")
    if (home / "airflow.db").exists() and stamp.exists() and stamp.read_text() == current:
        return
    from airflow.utils.db import upgradedb

    upgradedb()
    stamp.write_text(current)
