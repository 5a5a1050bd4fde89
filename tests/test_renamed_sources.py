"""Issue 13 acceptance: another company's sources, mapped through YAML only, give the demo's
results.

Every demo source is renamed, every column renamed and every code a role reads replaced by
other words (CRM ``ja``/``nein`` -> ``Y``/``N``, e-mail ``unsubscribe`` -> ``Abmeldung``, ...);
some files change delimiter, encoding and timestamp format as well. The hand-written registry
``tests/data/renamed_sources.yml`` maps all of it back, and identity.yml / survivorship.yml name
the new sources where the originals name the old ones. The run on these files must give the
original run's consent, suppression list, offer responses, traits, preferences, identity graph,
golden records and every export's members and manifest figures.

Profile ids are derived from a cluster's smallest ``source:record_id``, so they differ between
the runs: every profile is compared by a stable key instead, its smallest (original source
name, record id) member. Failure messages carry ids and counts only, never personal data.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from cdp.run import RunSummary, demo_as_of, run_pipeline
from cdp.settings import data_paths
from core.paths import DataPaths
from ingest.registry import Registry, SourceSpec, load_registry
from profiles.activation.hot_events import EVENTS_SOURCE

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
RENAMED_REGISTRY = Path(__file__).resolve().parent / "data" / "renamed_sources.yml"

ISO = "iso"  # a timestamp format: ISO 8601 as the demo writes it


@dataclass(frozen=True)
class Codes:
    """A code column's values through ``mapping`` (original -> own word); empty stays empty,
    an unknown value fails (so no original code slips through unchanged)."""

    mapping: dict[str, str]

    def __call__(self, value: str) -> str:
        if not value:
            return value
        if value not in self.mapping:
            raise AssertionError(f"code {value!r} has no renamed word")
        return self.mapping[value]


def _moment(original: str, own: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if value == "":
            return value
        parsed = (datetime.fromisoformat(value) if original == ISO
                  else datetime.strptime(value, original))
        return parsed.isoformat(timespec="seconds") if own == ISO else parsed.strftime(own)

    return convert


def _separated(original: str, own: str) -> Callable[[str], str]:
    return lambda value: own.join(value.split(original)) if value else value


@dataclass(frozen=True)
class Renaming:
    """How one demo source looks at the other company: name, columns, values, file layout."""

    name: str
    columns: dict[str, str]
    values: dict[str, Callable[[str], str]] = field(default_factory=dict)
    delimiter: str = ","
    encoding: str = "utf-8"


YES_NO = Codes({"ja": "Y", "nein": "N"})

#: Per demo source (the keys of config/sources.yml). Must agree with renamed_sources.yml.
RENAMING: dict[str, Renaming] = {
    "web_events": Renaming(
        "webtracking",
        {"event_id": "hit_id", "event_ts": "zeitpunkt", "anonymous_id": "cookie_id",
         "user_id": "konto_nr", "event_type": "aktion", "email": "e_mail",
         "product_group": "kategorie", "offer_id": "kampagnen_angebot", "page": "url"},
        {"event_type": Codes({
            "page_view": "Seitenaufruf", "product_view": "Produktansicht",
            "add_to_cart": "Warenkorb", "login": "Login_erfolgt",
            "identify": "Newsletter_Formular", "offer_view": "Angebot_gesehen",
            "offer_dismiss": "Angebot_weggeklickt"})}),
    "shop_accounts": Renaming(
        "onlineshop_konten",
        {"account_id": "konto_id", "created_at": "angelegt_am", "updated_at": "geaendert_am",
         "email": "mailadresse", "first_name": "kunde_vorname", "last_name": "kunde_nachname",
         "birth_date": "geburtstag", "phone": "mobilnummer", "street": "anschrift",
         "house_number": "hausnr", "postcode": "postleitzahl", "city": "wohnort",
         "country": "staat", "newsletter_opt_in": "newsletter_abo"},
        {"newsletter_opt_in": Codes({"true": "abonniert", "false": "nicht abonniert"})},
        delimiter=";"),
    "email_events": Renaming(
        "newsletter_tool",
        {"event_id": "ereignis_id", "event_ts": "ereignis_zeit", "email": "empfaenger",
         "event_type": "ereignis", "campaign_id": "aussendung", "offer_id": "angebot_code",
         "product_group": "sortiment"},
        {"event_type": Codes({
            "sent": "Versendet", "delivered": "Zugestellt", "open": "Opened",
            "click": "Clicked", "bounce": "Bounced", "unsubscribe": "Abmeldung",
            "complaint": "Spam"}),
         "event_ts": _moment(ISO, "%d.%m.%Y %H:%M:%S")},
        delimiter="\t"),
    "crm_customers": Renaming(
        "kundenstamm",
        {"crm_row_id": "zeilen_nr", "customer_number": "kdnr", "anrede": "titel",
         "vorname": "rufname", "nachname": "familienname", "geburtsdatum": "geb_datum",
         "email": "mail_privat", "telefon": "rufnummer", "strasse": "str_name",
         "hausnummer": "str_nr", "plz": "ort_plz", "ort": "ort_name", "land": "staat_kz",
         "kundenkarte": "bonuskarte", "email_opt_in": "einwilligung_mail",
         "post_opt_in": "einwilligung_brief", "phone_opt_in": "einwilligung_telefon",
         "updated_at": "stand"},
        {"email_opt_in": YES_NO, "post_opt_in": YES_NO, "phone_opt_in": YES_NO,
         "updated_at": _moment("%d.%m.%Y %H:%M", "%Y%m%d %H%M"),
         "geburtsdatum": _moment("%d.%m.%Y", "%Y%m%d")},
        delimiter="|", encoding="latin-1"),
    "pos_orders": Renaming(
        "kassenbons",
        {"order_id": "bon_nr", "order_ts": "bon_zeit", "store_id": "filiale",
         "loyalty_card": "karten_nr", "amount": "umsatz", "product_group": "warengruppe",
         "offer_id": "coupon"}),
    "support_tickets": Renaming(
        "servicefaelle",
        {"ticket_id": "fall_nr", "created_at": "eroeffnet", "channel": "kontaktweg",
         "customer_number": "kunden_nr", "first_name": "anrufer_vorname",
         "last_name": "anrufer_nachname", "email": "anrufer_mail", "phone": "rueckrufnummer",
         "subject": "betreff", "text": "nachricht", "offer_id": "angebot_nr",
         "offer_outcome": "angebot_ergebnis", "do_not_contact": "werbesperre"},
        {"channel": Codes({"phone": "Telefon", "email": "E-Mail", "chat": "Livechat"}),
         "offer_outcome": Codes({"accepted": "angenommen", "declined": "abgelehnt"}),
         "do_not_contact": Codes({"true": "Sperre", "false": "frei"})}),
    "consent_log": Renaming(
        "praeferenzcenter",
        {"change_id": "aenderung_nr", "changed_at": "geaendert", "customer_number": "kd_nummer",
         "email": "adresse_mail", "phone": "adresse_tel", "channel": "medium",
         "action": "entscheidung", "origin": "quelle", "max_contacts": "max_kontakte",
         "per": "zeitraum", "excluded_product_groups": "ohne_sortimente"},
        {"channel": Codes({"email": "Mail", "sms": "Textnachricht", "phone": "Telefon",
                            "post": "Brief", "online_ads": "Werbung online"}),
         "action": Codes({"opt_in": "Zustimmung", "opt_out": "Widerruf"}),
         "origin": Codes({"call_centre": "Hotline", "preference_centre": "PZ",
                           "web_form": "Formular"}),
         "per": Codes({"week": "Woche", "month": "Monat"}),
         "excluded_product_groups": _separated("|", ",")}),
}
BACK = {renaming.name: source for source, renaming in RENAMING.items()}


# ------------------------------------------------------------------------------------------
# the other company's landing files and configuration


def _read_rows(path: Path, spec: SourceSpec) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one landing file, in file order."""
    if spec.format == "jsonl":
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                   if line.strip()]
        header = list(records[0]) if records else []
        assert all(list(record) == header for record in records), f"{path.name}: keys differ"
        return header, [list(record.values()) for record in records]
    with path.open(encoding=spec.csv.encoding, newline="") as handle:
        header, *rows = list(csv.reader(handle, delimiter=spec.csv.delimiter))
    return header, rows


def _write_rows(path: Path, spec: SourceSpec, renaming: Renaming, header: list[str],
                rows: Iterable[list[Any]]) -> None:
    if spec.format == "jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False))
                handle.write("\n")
        return
    with path.open("w", encoding=renaming.encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=renaming.delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _rename_landing(original: DataPaths, renamed: DataPaths, registry: Registry
                    ) -> dict[str, dict[str, tuple[set[str], set[str]]]]:
    """Write the original run's landing files as the other company delivers them; per
    source and coded column the (original, renamed) values seen."""
    delivered = {folder.name for folder in original.landing.iterdir() if folder.is_dir()}
    assert delivered == set(RENAMING) == {spec.name for spec in registry}, (
        "every demo source must be renamed", sorted(delivered), sorted(RENAMING))
    seen: dict[str, dict[str, tuple[set[str], set[str]]]] = {}
    for source, renaming in RENAMING.items():
        spec = registry[source]
        target = renamed.source_landing(renaming.name)
        target.mkdir(parents=True)
        seen[source] = {column: (set(), set()) for column, change in renaming.values.items()
                        if isinstance(change, Codes)}
        for path in sorted(p for p in original.source_landing(source).iterdir() if p.is_file()):
            header, rows = _read_rows(path, spec)
            missing = [c for c in header if c not in renaming.columns]
            assert not missing, f"{source}/{path.name}: columns without a new name: {missing}"
            convert = [renaming.values.get(column) for column in header]
            out: list[list[Any]] = []
            for row in rows:
                new_row = []
                for column, value, change in zip(header, row, convert, strict=True):
                    if change is not None and value is not None:
                        new_value = change(value)
                        if column in seen[source]:
                            seen[source][column][0].add(value)
                            seen[source][column][1].add(new_value)
                        value = new_value
                    new_row.append(value)
                out.append(new_row)
            _write_rows(target / path.name, spec, renaming,
                        [renaming.columns[c] for c in header], out)
    return seen


def _renamed_config(folder: Path) -> Path:
    """The repository's configuration with the other company's sources.yml, and its
    identity.yml / survivorship.yml naming the new sources where the originals name old ones."""
    shutil.copytree(REPO / "config", folder)
    shutil.copyfile(RENAMED_REGISTRY, folder / "sources.yml")
    identity = yaml.safe_load((folder / "identity.yml").read_text(encoding="utf-8"))
    settings = identity["identity"]
    settings["strong_identifiers"] = {
        field: [RENAMING[name].name for name in sources]
        for field, sources in settings.get("strong_identifiers", {}).items()}
    (folder / "identity.yml").write_text(yaml.safe_dump(identity, sort_keys=False),
                                         encoding="utf-8")
    survivorship = yaml.safe_load((folder / "survivorship.yml").read_text(encoding="utf-8"))
    for rule in survivorship["attributes"].values():
        if "sources" in rule:
            rule["sources"] = [RENAMING[name].name for name in rule["sources"]]
    (folder / "survivorship.yml").write_text(yaml.safe_dump(survivorship, sort_keys=False),
                                             encoding="utf-8")
    return folder


def _column_names(registry: Registry) -> set[str]:
    names: set[str] = set()
    for spec in registry:
        names |= {spec.record_key, *spec.required_columns, *spec.columns}
    return names


def _landing_headers(paths: DataPaths, registry: Registry) -> set[str]:
    headers: set[str] = set()
    for spec in registry:
        for path in paths.source_landing(spec.name).iterdir():
            headers |= set(_read_rows(path, spec)[0])
    return headers


def _assert_nothing_original_left(config: Path, original_paths: DataPaths, renamed: DataPaths,
                                  original: Registry, own: Registry,
                                  seen: dict[str, dict[str, tuple[set[str], set[str]]]]) -> None:
    """No demo source name in the configuration, no demo column name in the registry or the
    files, no demo code among the values a role reads."""
    original_names = {spec.name for spec in original}
    assert not original_names & {spec.name for spec in own}
    word = re.compile(r"\b(" + "|".join(sorted(original_names)) + r")\b")
    for path in sorted(config.glob("*.yml")):
        text = "\n".join(line.split("#", 1)[0]
                         for line in path.read_text(encoding="utf-8").splitlines())
        assert not word.search(text), f"{path.name} still names a demo source"
    original_columns = _column_names(original) | _landing_headers(original_paths, original)
    kept = original_columns & (_column_names(own) | _landing_headers(renamed, own))
    assert not kept, f"demo column names left in the renamed registry or files: {sorted(kept)}"
    for source, columns in seen.items():
        for column, (before, after) in columns.items():
            folded_before = {value.strip().lower() for value in before} - {""}
            same = folded_before & {value.strip().lower() for value in after}
            assert not same, f"{source}.{column}: demo codes kept {sorted(same)}"
            assert folded_before, f"{source}.{column}: no values seen"


# ------------------------------------------------------------------------------------------
# comparing two runs


def _stable_keys(published: Path, back: dict[str, str]) -> dict[str, str]:
    """profile id -> its smallest (original source, record id) member as ``source:record_id``."""
    smallest: dict[str, tuple[str, str]] = {}
    with duckdb.connect(str(published), read_only=True) as con:
        for profile_id, source, record_id in con.execute(
                "SELECT profile_id, source, record_id FROM main.fct_identity_graph").fetchall():
            member = (back.get(source, source), str(record_id))
            if profile_id not in smallest or member < smallest[profile_id]:
                smallest[profile_id] = member
    return {profile_id: f"{s}:{r}" for profile_id, (s, r) in smallest.items()}


@dataclass(frozen=True)
class Compared:
    """A published table as compared, with the columns that identify a row in a failure
    message (ids only). Columns named ``profile_id`` hold profile ids; ``source``,
    ``*_source`` and ``sources`` hold source names."""

    table: str
    key: tuple[str, ...]


COMPARED = (
    Compared("fct_identity_graph", ("source", "record_id")),
    Compared("dim_profiles", ("profile_id",)),
    Compared("dim_profile_addresses", ("profile_id", "is_current")),
    Compared("dim_profile_contact_values", ("profile_id", "identifier_type")),
    Compared("dim_profile_consent", ("profile_id", "channel")),
    Compared("dim_suppression_list", ("identifier_hash", "channel")),
    Compared("fct_offer_responses", ("source", "record_id", "offer_id", "response")),
    Compared("dim_profile_traits", ("profile_id",)),
    Compared("dim_profile_preferences", ("profile_id",)),
)
SOURCE_COLUMN = re.compile(r"(.+_)?source")
SOURCE_LIST_COLUMN = "sources"


@dataclass
class Rows:
    """One side of a comparison: normalised rows and the id-only key of each."""

    rows: Counter[str] = field(default_factory=Counter)
    keys: dict[str, str] = field(default_factory=dict)

    def add(self, row: tuple[Any, ...], key: str) -> None:
        text = repr(row)
        self.rows[text] += 1
        self.keys[text] = key

    @property
    def digest(self) -> str:
        body = "\n".join(sorted(self.rows.elements()))
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def _map_source(value: Any, back: dict[str, str]) -> Any:
    return back.get(value, value) if isinstance(value, str) else value


def _table_rows(published: Path, spec: Compared, profiles: dict[str, str],
                back: dict[str, str]) -> Rows:
    out = Rows()
    with duckdb.connect(str(published), read_only=True) as con:
        cursor = con.execute(f"SELECT * FROM main.{spec.table}")
        columns = [d[0] for d in cursor.description]
        records = cursor.fetchall()
    for record in records:
        row = dict(zip(columns, record, strict=True))
        for column, value in row.items():
            if column == "profile_id" and value is not None:
                row[column] = profiles.get(value, "<profile without records>")
            elif SOURCE_COLUMN.fullmatch(column):
                row[column] = _map_source(value, back)
            elif column == SOURCE_LIST_COLUMN and isinstance(value, list):
                row[column] = sorted(_map_source(v, back) for v in value)
            elif column == SOURCE_LIST_COLUMN and isinstance(value, str):
                row[column] = ",".join(sorted(_map_source(v.strip(), back)
                                              for v in value.split(",")))
        key = "/".join(str(row[c])[:12] if c == "identifier_hash" else str(row[c])
                       for c in spec.key)
        out.add(tuple(row[c] for c in columns), key)
    return out


def _newest_exports(exports: Path) -> dict[str, Path]:
    """Each segment's newest export folder (as benchmarks/output_digest.py finds them)."""
    newest: dict[str, Path] = {}
    for segment in sorted(p for p in exports.iterdir() if p.is_dir()):
        runs = sorted((p for p in segment.iterdir() if p.is_dir()),
                      key=lambda p: p.stat().st_mtime)
        if runs:
            newest[segment.name] = runs[-1]
    return newest


def _export_rows(folder: Path, profiles: dict[str, str]) -> dict[str, Rows]:
    """Per export file: its rows, profile ids as stable keys; the manifest's figures."""
    parts: dict[str, Rows] = {}
    for member in sorted(p for p in folder.iterdir() if p.is_file()):
        rows = Rows()
        if member.name == "manifest.json":
            manifest = json.loads(member.read_text(encoding="utf-8"))
            for entry in manifest.get("files", []):
                rows.add(tuple(sorted((k, repr(v)) for k, v in entry.items() if k != "sha256")),
                         entry["name"])
            for step in manifest.get("steps", []):
                rows.add(tuple(sorted(step.items())), f"step {step.get('step')}")
            rows.add((manifest.get("rows"), manifest.get("candidates")), "rows/candidates")
        else:
            if member.suffix == ".parquet":
                with duckdb.connect() as con:
                    cursor = con.execute("SELECT * FROM read_parquet(?)", [str(member)])
                    header = [d[0] for d in cursor.description]
                    records = [list(r) for r in cursor.fetchall()]
            else:
                with member.open(encoding="utf-8", newline="") as handle:
                    header, *records = list(csv.reader(handle))
            at = header.index("profile_id") if "profile_id" in header else None
            for number, record in enumerate(records, start=1):
                if at is not None:
                    record[at] = profiles.get(record[at], "<profile without records>")
                    key = str(record[at])
                else:
                    key = f"row {number}"  # hashed ad-platform rows: no profile id to show
                rows.add(tuple(record), key)
        parts[member.name] = rows
    return parts


def _difference(name: str, original: Rows, renamed: Rows) -> str | None:
    if original.rows == renamed.rows:
        return None
    only_original = original.rows - renamed.rows
    only_renamed = renamed.rows - original.rows
    keys_original = sorted({original.keys[r] for r in only_original})
    keys_renamed = sorted({renamed.keys[r] for r in only_renamed})
    return (f"{name}: {sum(original.rows.values())} rows (digest {original.digest}) in the "
            f"original run, {sum(renamed.rows.values())} (digest {renamed.digest}) renamed; "
            f"{sum(only_original.values())} rows only in the original, first keys "
            f"{keys_original[:5]}; {sum(only_renamed.values())} only renamed, first keys "
            f"{keys_renamed[:5]}")


def _compare_runs(original: DataPaths, renamed: DataPaths) -> tuple[list[str], list[str]]:
    """(differences, empty parts) of the two runs' outputs."""
    differences: list[str] = []
    empty: list[str] = []
    keys_original = _stable_keys(original.published_db, {})
    keys_renamed = _stable_keys(renamed.published_db, BACK)
    for spec in COMPARED:
        mine = _table_rows(original.published_db, spec, keys_original, {})
        theirs = _table_rows(renamed.published_db, spec, keys_renamed, BACK)
        if not mine.rows or not theirs.rows:
            empty.append(spec.table)
        differences.append(_difference(spec.table, mine, theirs) or "")
    exports_original = _newest_exports(original.exports)
    exports_renamed = _newest_exports(renamed.exports)
    if not exports_original:
        empty.append("exports")
    if sorted(exports_original) != sorted(exports_renamed):
        differences.append(f"segments exported: {sorted(exports_original)} originally, "
                           f"{sorted(exports_renamed)} renamed")
    for segment in sorted(set(exports_original) & set(exports_renamed)):
        mine_files = _export_rows(exports_original[segment], keys_original)
        theirs_files = _export_rows(exports_renamed[segment], keys_renamed)
        if sorted(mine_files) != sorted(theirs_files):
            differences.append(f"export {segment}: files {sorted(mine_files)} originally, "
                               f"{sorted(theirs_files)} renamed")
        if not mine_files.get("members.csv", Rows()).rows:
            empty.append(f"export {segment}/members.csv")
        for name in sorted(set(mine_files) & set(theirs_files)):
            differences.append(
                _difference(f"export {segment}/{name}", mine_files[name], theirs_files[name])
                or "")
    return [d for d in differences if d], empty


# ------------------------------------------------------------------------------------------


def test_renamed_sources_mapped_back_through_yaml_give_the_original_results(
    demo_run: tuple[DataPaths, RunSummary], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original, original_summary = demo_run
    assert original_summary.succeeded, (original_summary.failed_tasks, original_summary.errors)
    as_of = demo_as_of(original)
    assert as_of is not None, "the original run is not on generated demo data"

    shipped = load_registry(REPO / "config" / "sources.yml")  # the demo's: all but the API's
    original_registry = Registry({name: spec for name, spec in shipped.sources.items()
                                  if name != EVENTS_SOURCE}, shipped.path)
    config = _renamed_config(tmp_path / "config")
    own_registry = load_registry(config / "sources.yml")
    renamed = data_paths(tmp_path / "home").ensure()
    seen = _rename_landing(original, renamed, original_registry)
    _assert_nothing_original_left(config, original, renamed, original_registry, own_registry,
                                  seen)

    monkeypatch.setenv("CDP_CONFIG", str(config))
    summary = run_pipeline(renamed, as_of=as_of)

    assert summary.succeeded, (summary.failed_tasks, summary.errors)
    loaded = {BACK[name]: rows for name, rows in summary.records_per_source.items()}
    rejected = {BACK[name]: rows for name, rows in summary.rejected_per_source.items()}
    demo = {spec.name for spec in original_registry}
    assert (loaded, rejected) == (
        {k: v for k, v in original_summary.records_per_source.items() if k in demo},
        {k: v for k, v in original_summary.rejected_per_source.items() if k in demo})
    differences, empty = _compare_runs(original, renamed)
    assert not empty, f"nothing to compare in {empty}: the comparison would pass vacuously"
    assert not differences, "renamed run differs from the original:\n" + "\n".join(differences)
