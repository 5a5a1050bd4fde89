"""Demo data: realistic landing files for the seven registered sources plus the ground truth.

The demo needs data whose correct answer is known: every record is rendered from a hidden person,
so ``truth/demo_truth.csv`` says exactly which person each record belongs to and identity
resolution can be scored. Output is byte-identical for the same arguments (seeded RNG streams,
Faker seeded per instance, dates relative to a fixed reference day).
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cdp.demo.noise import NOISE_LEVELS, NoiseConfig, Noiser, resolve_noise
from cdp.demo.people import build_population
from cdp.demo.sources import (
    SourceData,
    render_consent_log,
    render_crm,
    render_email_events,
    render_pos_orders,
    render_shop_accounts,
    render_tickets,
    render_web_events,
)
from cdp.demo.timeline import build_campaigns, plan_consents, plan_tickets
from core.paths import DataPaths

SOURCES: tuple[str, ...] = ("web_events", "shop_accounts", "email_events", "crm_customers",
                            "pos_orders", "support_tickets", "consent_log")

# File-name patterns this generator owns inside landing/<source>/ (removed before regenerating).
GENERATED_PATTERNS: dict[str, tuple[str, ...]] = {
    "web_events": ("events_*.jsonl",),
    "shop_accounts": ("accounts.csv",),
    "email_events": ("email_events.csv",),
    "crm_customers": ("crm_export.csv",),
    "pos_orders": ("orders_*.csv",),
    "support_tickets": ("tickets.csv",),
    "consent_log": ("consent_changes.csv",),
}
TRUTH_FILE = "demo_truth.csv"
TICKET_LABELS_FILE = "ticket_labels.csv"


@dataclass(frozen=True)
class GenerationReport:
    """What was generated: counts per source and every file written."""

    home: Path
    people: int  # known persons (as requested)
    anonymous_visitors: int  # extra persons that only appear as anonymous web visitors
    seed: int
    noise: str
    records: dict[str, int]  # distinct records per source (record keys)
    rows: dict[str, int]  # rows written per source (email events include duplicate rows)
    files: dict[str, list[Path]]
    truth_files: list[Path]
    seconds: float = field(compare=False)

    @property
    def total_records(self) -> int:
        return sum(self.records.values())


def _validate(people: int, seed: int, noise: str | NoiseConfig) -> NoiseConfig:
    if isinstance(people, bool) or not isinstance(people, int):
        raise ValueError(f"people must be an integer, got {type(people).__name__}")
    if people <= 0:
        raise ValueError(f"people must be a positive number of persons, got {people}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {type(seed).__name__}")
    return resolve_noise(noise)


def clear_generated(home: DataPaths) -> None:
    """Remove files a previous run generated, so a regeneration never mixes two datasets."""
    for source, patterns in GENERATED_PATTERNS.items():
        folder = home.source_landing(source)
        if not folder.is_dir():
            continue
        for pattern in patterns:
            for path in sorted(folder.glob(pattern)):
                if path.is_file():
                    path.unlink()
    for name in (TRUTH_FILE, TICKET_LABELS_FILE):
        (home.truth / name).unlink(missing_ok=True)


def _write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable[object]],
               delimiter: str = ",") -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_source(home: DataPaths, data: SourceData) -> list[Path]:
    folder = home.source_landing(data.name)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, rows in data.files.items():
        path = folder / name
        if data.fmt == "jsonl":
            columns = data.columns
            with path.open("w", encoding="utf-8", newline="\n") as handle:
                for row in rows:
                    handle.write(json.dumps(dict(zip(columns, row, strict=True)),
                                            ensure_ascii=False))
                    handle.write("\n")
        else:
            _write_csv(path, data.columns, rows, data.delimiter)
        written.append(path)
    return written


def generate(home: DataPaths, people: int = 10_000, seed: int = 42,
             noise: str | NoiseConfig = "default") -> GenerationReport:
    """Write landing files for all seven demo sources and the truth files under ``home``.

    ``noise`` is a level name (``low``, ``default``, ``hard``) or a custom :class:`NoiseConfig`.
    Raises ValueError for a non-positive ``people`` or an unknown noise level.
    """
    started = time.perf_counter()
    config = _validate(people, seed, noise)
    clear_generated(home)
    home.truth.mkdir(parents=True, exist_ok=True)

    def noiser(stream: str) -> Noiser:
        return Noiser(config, random.Random(f"{seed}:{stream}"),
                      random.Random(f"{seed}:{stream}:hard-cases"))

    persons, visitors = build_population(people, seed, config)
    plan_tickets(persons, random.Random(f"{seed}:ticket-plan"))
    plan_consents(persons, random.Random(f"{seed}:consent-plan"))
    campaigns = build_campaigns(random.Random(f"{seed}:campaigns"))

    records: dict[str, int] = {}
    rows: dict[str, int] = {}
    files: dict[str, list[Path]] = {}
    truth_path = home.truth / TRUTH_FILE
    labels_path = home.truth / TICKET_LABELS_FILE
    # Render order matters: email events complete the consent history (unsubscribes) and the
    # offers people were mailed, which tickets, web events and the consent log then use.
    renderers = (
        ("email_events", lambda n: render_email_events(persons, campaigns, n)),
        ("support_tickets", lambda n: render_tickets(persons, n)),
        ("web_events", lambda n: render_web_events(persons, visitors, n)),
        ("shop_accounts", lambda n: render_shop_accounts(persons, n)),
        ("crm_customers", lambda n: render_crm(persons, n)),
        ("pos_orders", lambda n: render_pos_orders(persons, n)),
        ("consent_log", lambda n: render_consent_log(persons, n)),
    )
    truth_parts: dict[str, list[tuple[str, str]]] = {}
    for name, render in renderers:
        data = render(noiser(name))
        files[name] = _write_source(home, data)
        records[name] = len(data.truth)
        rows[name] = data.record_count()
        truth_parts[name] = data.truth
        if "ticket_labels" in data.extra:
            _write_csv(labels_path, ("ticket_id", "label"), data.extra["ticket_labels"])
        del data
    # truth in registry order, records in file order; the person's hard case (HARD_CASES)
    patterns = {person.person_id: person.pattern or "" for person in persons}
    _write_csv(truth_path, ("source", "record_id", "person_id", "pattern"),
               ((name, key, person, patterns.get(person, ""))
                for name in SOURCES for key, person in truth_parts[name]))
    return GenerationReport(
        home=home.home,
        people=people,
        anonymous_visitors=len(visitors),
        seed=seed,
        noise=config.name,
        records={name: records[name] for name in SOURCES},
        rows={name: rows[name] for name in SOURCES},
        files={name: files[name] for name in SOURCES},
        truth_files=[truth_path, labels_path],
        seconds=time.perf_counter() - started,
    )


__all__ = ["NOISE_LEVELS", "SOURCES", "GenerationReport", "NoiseConfig", "generate"]
