"""The shared vocabulary, configuration error format and file lock (``core/``)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from core.config import ConfigError, read_yaml, validate
from core.locking import LockBusy, exclusive_lock
from core.vocabulary import (
    CHANNEL_CONTACT_POINTS,
    CHANNELS,
    MAX_RUN_ID_LENGTH,
    dbt_vars,
    quote_identifier,
    safe_run_id,
)


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    share: float = Field(0.5, gt=0, lt=1)
    names: list[str] = []


def test_validation_errors_name_file_and_dotted_key_but_never_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        validate(_Limits, {"share": 7.5, "names": ["a", 3], "secret@example.com": 1},
                 "config/x.yml", prefix=("limits",))
    lines = caught.value.lines()
    assert any(line.startswith("config/x.yml: limits.share: ") for line in lines)
    assert any(line.startswith("config/x.yml: limits.names[1]: ") for line in lines)
    assert any("limits.secret@example.com: Extra inputs" in line for line in lines)
    assert "7.5" not in str(caught.value)


def test_yaml_errors_say_where_and_a_missing_required_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("a: {b: 1\n")
    with pytest.raises(ConfigError, match=r"broken\.yml: line \d+, column \d+: not valid YAML"):
        read_yaml(broken)
    with pytest.raises(ConfigError, match="absent.yml: file does not exist"):
        read_yaml(tmp_path / "absent.yml")
    assert read_yaml(tmp_path / "absent.yml", required=False) is None
    twice = tmp_path / "twice.yml"
    twice.write_text("segments: []\nsuppression: {}\nsegments: [1]\n")
    with pytest.raises(ConfigError,
                       match=r"twice\.yml: line 3, column 1: duplicate key 'segments'"):
        read_yaml(twice)


def test_run_ids_become_file_names_of_bounded_length() -> None:
    assert safe_run_id("manual__2026-12-02T03:00:00+00:00") == "manual__2026-12-02T03_00_00_00_00"
    assert len(safe_run_id("x" * 500)) == MAX_RUN_ID_LENGTH
    assert safe_run_id("../../etc") == ".._.._etc"


def test_identifiers_are_quoted_with_embedded_quotes_doubled() -> None:
    assert quote_identifier('we"ird') == '"we""ird"'


def test_dbt_receives_the_same_channels_each_with_its_contact_point() -> None:
    assert dbt_vars()["channels"] == list(CHANNELS)
    assert list(CHANNEL_CONTACT_POINTS) == list(CHANNELS)
    assert {point for points in CHANNEL_CONTACT_POINTS.values() for point in points} <= {
        "email", "phone", "postal"}


def _hold(lock_file: Path, seconds: float) -> None:
    with exclusive_lock(lock_file, 5, "busy"):
        lock_file.with_suffix(".held").touch()
        time.sleep(seconds)


def test_a_held_lock_makes_the_next_writer_wait_and_then_give_up_by_name(tmp_path: Path) -> None:
    lock_file = tmp_path / "w.lock"
    holder = multiprocessing.get_context("spawn").Process(target=_hold, args=(lock_file, 3))
    holder.start()
    try:
        deadline = time.monotonic() + 30
        while not lock_file.with_suffix(".held").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with (pytest.raises(LockBusy, match="another writer; gave up after 0s"),
              exclusive_lock(lock_file, 0.3, "another writer")):
            pass
    finally:
        holder.join()
    with exclusive_lock(lock_file, 0, "free again"):  # released when the holder ended
        pass
