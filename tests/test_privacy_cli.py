"""``cdp privacy`` refuses what it cannot serve, naming argument or line, never the value,
and changes nothing (the ``cdp_privacy`` DAG is run in tests/test_privacy_kill.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdp.cli import app
from core.paths import DataPaths

pytestmark = pytest.mark.integration


def _tree(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("args", "message"), [
    (["email:nobody.at.all@example.org"], "no record carries any of the 1 identifier(s)"),
    (["nobody@example.org"], "argument 1: expected kind:value"),
    (["email:not-an-address"], "argument 1: not a valid email"),
    (["phone:12"], "argument 1: not a valid phone"),
    ([], "name at least one identifier"),
])
def test_forget_refuses_and_changes_nothing(demo_home_copy: DataPaths, args: list[str],
                                            message: str) -> None:
    before = _tree(demo_home_copy.home)
    result = CliRunner().invoke(app, ["privacy", "forget", *args, "--home",
                                      str(demo_home_copy.home)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    for arg in args:  # the value itself is never echoed
        assert arg.partition(":")[2] not in result.output or not arg.partition(":")[2]
    assert _tree(demo_home_copy.home) == before


def test_a_request_file_names_its_bad_line(demo_home_copy: DataPaths, tmp_path: Path) -> None:
    request = tmp_path / "requests.csv"
    request.write_text("kind,value\nemail,a@example.org\nfax,0123\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["privacy", "access", "--from-csv", str(request),
                                      "--home", str(demo_home_copy.home)])
    assert result.exit_code == 2
    assert f"{request}: line 3: kind must be one of" in " ".join(result.output.split())
