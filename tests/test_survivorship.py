"""survivorship.yml is validated before dbt sees it; dbt receives the mapping as written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from profiles.survivorship import SurvivorshipError, load_survivorship

REPO_FILE = Path(__file__).resolve().parent.parent / "config" / "survivorship.yml"


def test_the_repository_rules_reach_dbt_unchanged() -> None:
    assert load_survivorship(REPO_FILE) == yaml.safe_load(REPO_FILE.read_text())["attributes"]


def test_no_file_or_no_attributes_means_the_macro_defaults(tmp_path: Path) -> None:
    assert load_survivorship(tmp_path / "absent.yml") == {}
    (tmp_path / "empty.yml").write_text("")
    assert load_survivorship(tmp_path / "empty.yml") == {}


def test_invalid_rules_name_file_and_key_not_the_value(tmp_path: Path) -> None:
    path = tmp_path / "survivorship.yml"
    path.write_text(yaml.safe_dump({"attributes": {
        "email": {"strategy": "loudest", "sources": ["crm_customers"]},
        "nickname": {"strategy": "most_recent"},
        "phone": {"strategy": "most_recent", "sources": "crm_customers"},
    }}))
    with pytest.raises(SurvivorshipError) as error:
        load_survivorship(path)
    assert error.value.lines() == [
        f"{path}: attributes.email.strategy: Input should be 'most_trusted', 'most_recent' or "
        "'most_frequent'",
        f"{path}: attributes.phone.sources: Input should be a valid list",
        f"{path}: attributes.nickname: Extra inputs are not permitted",
    ]
    assert "loudest" not in str(error.value)
