"""First-name normalisation (English nicknames, honorifics) and the configurable birth-date floor.

Pure normalisation functions and config parsing: no Splink, fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from identity import IdentityConfig, IdentityConfigError
from identity.normalise import (
    MIN_BIRTH_DATE,
    normalise_birth_date,
    normalise_first_name_value,
    normalise_last_name_value,
    normalise_records,
)
from identity.similarity import first_names_compatible

THRESHOLD = IdentityConfig().first_name_similarity


def compatible(a: str, b: str) -> bool:
    """The clustering guard's question, asked of raw names as a source would hold them."""
    na, nb = normalise_first_name_value(a), normalise_first_name_value(b)
    assert na is not None and nb is not None
    return first_names_compatible(na, nb, THRESHOLD)


# ----------------------------------------------------------------------------- nicknames


@pytest.mark.parametrize(("short", "full"), [
    ("Tom", "thomas"), ("Tommie", "thomas"), ("Bill", "william"), ("Billy", "william"),
    ("Bob", "robert"), ("Bobby", "robert"), ("Peggy", "margaret"), ("Maggie", "margaret"),
    ("Betsy", "elizabeth"), ("Bessie", "elizabeth"), ("Dick", "richard"), ("Jim", "james"),
    ("Ned", "edward"), ("Hank", "henry"), ("Chuck", "charles"), ("Archy", "archibald"),
    ("Gus", "augustus"), ("Dolly", "dorothy"), ("Ike", "isaac"), ("Hattie", "harriet"),
    ("Johnny", "john"), ("Jno", "john"), ("Thos", "thomas"), ("Wm", "william"),
])
def test_english_nicknames_map_to_the_full_name(short: str, full: str) -> None:
    assert normalise_first_name_value(short) == normalise_first_name_value(full.title())
    assert compatible(short, full)


@pytest.mark.parametrize("name", ["Jack", "Harry", "Molly", "Sophie", "Sally", "Archie"])
def test_short_forms_that_are_given_names_stay_as_typed(name: str) -> None:
    """Jack or Harry on a birth certificate is not John or Henry: kept apart for matching."""
    assert normalise_first_name_value(name) == name.lower()


@pytest.mark.parametrize(("short", "full"), [
    ("Jack", "John"), ("Harry", "Henry"), ("Molly", "Mary"), ("Polly", "Mary"),
    ("Sally", "Sarah"), ("Sophie", "Sophia"), ("Wally", "Walter"), ("Terry", "Terence"),
    ("Jake", "Jakob"), ("Lewis", "Louis"),
])
def test_given_name_short_forms_are_compatible_with_the_full_name(short: str, full: str
                                                                  ) -> None:
    assert compatible(short, full)


@pytest.mark.parametrize(("short", "fulls"), [
    ("Bert", ("Albert", "Herbert", "Robert")),
    ("Millie", ("Amelia", "Emily", "Mildred")),
    ("Nell", ("Eleanor", "Helen")),
    ("Chris", ("Christian", "Christina", "Christopher")),
])
def test_ambiguous_short_forms_are_left_as_typed(short: str, fulls: tuple[str, ...]) -> None:
    """A short form claimed by several full names is not rewritten to any one of them, but
    stays compatible with each."""
    assert normalise_first_name_value(short) == short.lower()
    for full in fulls:
        assert normalise_first_name_value(full) == full.lower()
        assert compatible(short, full)


def test_two_short_forms_of_one_name_are_compatible() -> None:
    assert compatible("Bill", "Willie")  # william, william
    assert compatible("Ted", "Ned")      # both Edward


@pytest.mark.parametrize(("a", "b"), [
    ("John", "Mary"), ("William", "Henry"), ("Bert", "Sam"), ("Ian", "John"),
    ("Jean", "John"), ("Harold", "Henry"), ("Molly", "Sally"), ("Anna", "Bernd"),
])
def test_different_people_still_conflict(a: str, b: str) -> None:
    assert not compatible(a, b)


def test_canonical_names_are_never_rewritten() -> None:
    # joseph is both a canonical English name and a German variant of Josef
    assert normalise_first_name_value("Joseph") == "joseph"
    assert normalise_first_name_value("Thomas") == "thomas"
    assert normalise_first_name_value("Catherine") == "katherine"  # a spelling, not a name


def test_german_nicknames_unchanged() -> None:
    assert normalise_first_name_value("Hans") == "johannes"
    assert normalise_first_name_value("Sepp") == "josef"
    assert normalise_first_name_value("Flo") == "florian"
    assert normalise_first_name_value("Jessi") == "jessica"


# ----------------------------------------------------------------------------- honorifics


@pytest.mark.parametrize(("raw", "expected"), [
    ("Sir", None), ("Lady", None), ("Rt. Hon.", None), ("1st", None), ("2nd", None),
    ("Sir William", "william"), ("Rt. Hon. William", "william"),
    ("Maj.-Gen. Frederick", "frederick"), ("Reverend John", "john"), ("Dr. Hans-Peter",
                                                                        "hans peter"),
    ("Anna", "anna"),
])
def test_honorifics_and_ordinals_are_not_first_names(raw: str, expected: str | None) -> None:
    assert normalise_first_name_value(raw) == expected


def test_family_names_that_look_like_titles_are_kept() -> None:
    assert normalise_last_name_value("Major") == "major"
    assert normalise_last_name_value("Lord") == "lord"


# ---------------------------------------------------------------------------- birth dates

DATES = pd.Series(["1900-01-01", "1900-01-02", "1899-12-31", "1850-05-05", "1620-03-12",
                   "12.03.1620", "junk", None, "2999-01-01", "1985-04-12"], dtype=object)


def test_birth_date_floor_default_unchanged() -> None:
    assert MIN_BIRTH_DATE == dt.date(1900, 1, 1) == IdentityConfig().min_birth_date
    got = normalise_birth_date(DATES, today=dt.date(2026, 1, 1)).tolist()
    assert got[0] is pd.NA          # the 1900-01-01 placeholder
    assert got[1] == dt.date(1900, 1, 2)
    assert all(v is pd.NA for v in got[2:9])
    assert got[9] == dt.date(1985, 4, 12)


def test_birth_date_floor_configurable() -> None:
    got = normalise_birth_date(DATES, today=dt.date(2026, 1, 1),
                               min_date=dt.date(1600, 1, 1)).tolist()
    assert got[0] is pd.NA  # still a placeholder whatever the floor
    assert got[1:6] == [dt.date(1900, 1, 2), dt.date(1899, 12, 31), dt.date(1850, 5, 5),
                        dt.date(1620, 3, 12), dt.date(1620, 3, 12)]
    assert got[6] is pd.NA and got[7] is pd.NA and got[8] is pd.NA  # junk, missing, future
    later = normalise_birth_date(DATES, today=dt.date(2026, 1, 1),
                                 min_date=dt.date(1700, 1, 1)).tolist()
    assert later[3] == dt.date(1850, 5, 5) and later[4] is pd.NA


def test_birth_date_floor_applies_to_date_values() -> None:
    dates = pd.Series([dt.date(1850, 1, 1), dt.date(1900, 1, 1), None], dtype=object)
    assert normalise_birth_date(dates).isna().tolist() == [True, True, True]
    low = normalise_birth_date(dates, min_date=dt.date(1800, 1, 1)).tolist()
    assert low[0] == dt.date(1850, 1, 1) and low[1] is pd.NA and low[2] is pd.NA


def test_normalise_records_passes_the_floor() -> None:
    rows = pd.DataFrame([{"source": "s", "record_id": "1", "birth_date": "1850-05-05"},
                         {"source": "s", "record_id": "2", "birth_date": "1985-04-12"}])
    assert normalise_records(rows)["birth_date"].isna().tolist() == [True, False]
    floor = IdentityConfig.from_dict({"min_birth_date": "1800-01-01"}).min_birth_date
    out = normalise_records(rows, "DE", min_birth_date=floor)["birth_date"].tolist()
    assert out == [dt.date(1850, 5, 5), dt.date(1985, 4, 12)]


# ---------------------------------------------------------------------------------- config


def test_min_birth_date_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "identity.yml"
    path.write_text("identity:\n  min_birth_date: 1800-01-01\n", encoding="utf-8")  # YAML date
    assert IdentityConfig.from_yaml(path).min_birth_date == dt.date(1800, 1, 1)
    path.write_text("identity:\n  min_birth_date: '1750-06-30'\n", encoding="utf-8")
    assert IdentityConfig.from_yaml(path).min_birth_date == dt.date(1750, 6, 30)
    assert IdentityConfig(min_birth_date="1820-02-03").min_birth_date == dt.date(1820, 2, 3)


@pytest.mark.parametrize("value", ["1800", "1800-13-01", "01.01.1800", "'soon'", "[1800]",
                                   "2999-01-01", "true"])
def test_min_birth_date_errors_are_clear(tmp_path: Path, value: str) -> None:
    path = tmp_path / "identity.yml"
    path.write_text(f"identity:\n  min_birth_date: {value}\n", encoding="utf-8")
    with pytest.raises(IdentityConfigError, match="min_birth_date") as raised:
        IdentityConfig.from_yaml(path)
    assert str(path) in str(raised.value)


def test_config_file_that_is_not_utf8_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "identity.yml"
    path.write_bytes(b"identity:\n  default_region: D\xff\n")
    with pytest.raises(IdentityConfigError, match=r"cannot be read \(UnicodeDecodeError\)"):
        IdentityConfig.from_yaml(path)


def _level(comparison: object, pair: dict[str, str | None]) -> str:
    """Label of the first level of a Splink comparison that holds for one pair, evaluated by
    DuckDB on the level's own SQL (columns ``<name>_l`` / ``<name>_r``)."""
    import duckdb

    levels = comparison.get_comparison("duckdb").comparison_levels  # type: ignore[attr-defined]
    con = duckdb.connect()
    con.execute("CREATE TABLE pair AS SELECT " + ", ".join(
        f"CAST(? AS VARCHAR) AS \"{name}\"" for name in pair), list(pair.values()))
    for level in levels:
        if level.sql_condition == "ELSE":
            return "ELSE"
        if con.execute(f"SELECT coalesce(({level.sql_condition}), false) FROM pair"
                       ).fetchone()[0]:
            return str(level.label_for_charts)
    raise AssertionError("no level holds")


@pytest.mark.parametrize(("left", "right", "expected"), [
    ("anna.berger", "anna.bergre", "typo in local part, same provider"),
    ("f.j", "h.k", "ELSE"),  # two edits turn any short local part into any other
])
def test_a_typo_level_needs_a_local_part_long_enough_to_hold_a_typo(
        left: str, right: str, expected: str) -> None:
    from identity.splink_model import _email_comparison

    pair = {f"{column}_{side}": value for side, local in (("l", left), ("r", right))
            for column, value in (("email", f"{local}@sharp.com"), ("email_local", local),
                                  ("email_domain", "sharp.com"),
                                  ("email_letters", local.replace(".", "")))}
    assert _level(_email_comparison(), pair).startswith(expected)


@pytest.mark.parametrize(("left", "right", "in_other_field"), [
    (("anna", "berg"), ("berg", "ana"), True),      # swapped, with a typo
    (("anna", "berg"), ("berg", None), True),       # the given name missing on one side
    (("isaac", "james"), ("james", "dixon"), False),  # two people
])
def test_a_name_in_the_other_field_counts_only_where_the_rest_fits_a_swap(
        left: tuple[str, str | None], right: tuple[str, str | None],
        in_other_field: bool) -> None:
    from identity.splink_model import _name_comparison

    pair = {"first_name_l": left[0], "last_name_l": left[1],
            "first_name_r": right[0], "last_name_r": right[1]}
    label = _level(_name_comparison("first_name", "last_name", crossed=True), pair)
    assert (label == "a name given in the other name field") is in_other_field
