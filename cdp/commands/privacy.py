"""``cdp privacy forget | access``: a data subject's rights (GDPR Art. 15, 17, 19).

Identifiers as ``kind:value`` arguments (``email:anna@example.org``, ``phone:…``,
``customer_number:…``, ``national_id:…``, ``loyalty_card:…``, ``profile_id:…``) or a CSV
with columns ``kind,value``. Values are never printed: the summary names hashes, counts and places.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cdp.commands.options import HomeOption, console, fail

if TYPE_CHECKING:
    from cdp.context import RunContext
    from privacy.identifiers import Identifier

privacy_app = typer.Typer(help="Data-subject requests: forget a person, or show what is held.",
                          no_args_is_help=True)

IdentifiersArgument = Annotated[list[str] | None, typer.Argument(
    help="kind:value, kind one of email, phone, customer_number, national_id, loyalty_card, "
    "profile_id.",
    show_default=False)]
FromCsvOption = Annotated[Path | None, typer.Option(
    "--from-csv", help="CSV with the columns kind and value, one identifier per row.")]
ConfigDirOption = Annotated[Path | None, typer.Option(
    "--config-dir", help="Configuration folder (default: $CDP_CONFIG or ./config).")]


def _request(identifiers: list[str] | None, from_csv: Path | None, home: Path | None,
             config_dir: Path | None) -> tuple[RunContext, list[Identifier]]:
    from cdp.context import RunContext
    from privacy.identifiers import InvalidRequest, parse, read_csv

    try:
        found = [parse(text, f"argument {n}") for n, text in enumerate(identifiers or [], 1)]
        if from_csv is not None:
            found += read_csv(from_csv)
    except InvalidRequest as error:
        fail(error)
    if not found:
        fail("name at least one identifier (kind:value) or --from-csv FILE")
    return RunContext.at_edge(home, config_dir), list(dict.fromkeys(found))


@privacy_app.command("forget")
def forget_command(identifiers: IdentifiersArgument = None, from_csv: FromCsvOption = None,
                   home: HomeOption = None, config_dir: ConfigDirOption = None) -> None:
    """Erase a person everywhere (landing, raw, warehouse, publications, exports, reports,
    logs), keep their hashed identifiers suppressed, and rebuild and publish without them."""
    from cdp.pipeline import forget_person
    from privacy.locate import UnknownPerson

    ctx, found = _request(identifiers, from_csv, home, config_dir)
    try:
        with console.status("forgetting …") as status:
            report = forget_person(ctx, found,
                                   on_step=lambda step: status.update(f"forgetting: {step} …"))
    except UnknownPerson as error:
        fail(error)
    console.print(f"request {report.request_id}: {sum(report.records.values())} records in "
                  f"{report.profiles} profile(s) forgotten"
                  + (" (resumed)" if report.resumed else "") + f" in {report.seconds:.1f} s")
    for step, counts in report.removed.items():
        console.print(f"  {step:<9} {counts}")
    if report.segments:
        console.print(f"  segments that held them: {', '.join(report.segments)}; export runs: "
                      f"{len(report.export_runs)} (their next export lists them as left)")
    console.print(f"  kept: {len(report.identifier_hashes)} hashed identifier(s), "
                  "suppressed on every direct channel")


@privacy_app.command("access")
def access_command(identifiers: IdentifiersArgument = None, from_csv: FromCsvOption = None,
                   home: HomeOption = None, config_dir: ConfigDirOption = None,
                   out: Annotated[Path | None, typer.Option(
                       "--out", help="Folder for access.json and access.html "
                       "(default: reports/privacy/access-<hash>/).")] = None) -> None:
    """Everything held about a person: one JSON file and one readable HTML page."""
    import hashlib

    import duckdb

    from cdp.settings import REPO_ROOT
    from privacy.access import build_access_report, write_access_report
    from privacy.locate import UnknownPerson, locate

    ctx, found = _request(identifiers, from_csv, home, config_dir)
    paths = ctx.paths
    if not paths.build_db.exists():
        fail("no warehouse yet: nothing is held about anyone")
    con = duckdb.connect(str(paths.build_db), read_only=True)
    try:
        person = locate(con, ctx.registry, found)
    finally:
        con.close()
    try:
        report = build_access_report(
            paths, ctx.registry, person, requested=found,
            marts_yml=REPO_ROOT / "dbt_project" / "models" / "marts" / "_marts.yml")
    except UnknownPerson as error:
        fail(error)
    key = hashlib.sha256("\n".join(sorted(i.hash for i in found)).encode()).hexdigest()[:16]
    folder = out or paths.reports / "privacy" / f"access-{key}"
    json_file, html_file = write_access_report(report, folder)
    console.print(f"{person.record_count} records in {len(person.profile_ids)} profile(s): "
                  f"{json_file} and {html_file}")
