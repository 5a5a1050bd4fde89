"""``cdp identity``: train the model, evaluate against a truth file; ``cdp explain``: why a
profile exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import duckdb
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from cdp.commands.options import HomeOption, fail
from cdp.context import RunContext
from cdp.settings import data_paths

identity_app = typer.Typer(help="Identity resolution.", no_args_is_help=True)

IDENTIFIERS = {"email": "email", "phone": "phone", "customer_number": "text",
               "user_id": "text", "anonymous_id": "text", "loyalty_card": "text"}


def _training_records(ctx: RunContext, from_landing: bool) -> tuple[pd.DataFrame, str]:
    """This build's normalised identity records (what the pipeline's training step reads),
    or the landing files, normalised, when asked or when nothing is built."""
    from identity.training import NORMALISED_TABLE, read_normalised

    paths = ctx.paths
    if not from_landing and paths.build_db.exists():
        try:
            return (read_normalised(paths.build_db, named_only=True),
                    f"{paths.build_db} ({NORMALISED_TABLE}, records holding a name)")
        except duckdb.CatalogException:
            pass
    from identity.landing import records_from_landing
    from identity.normalise import normalise_records

    records = records_from_landing(paths.landing, ctx.config.sources)
    return (normalise_records(records, ctx.identity.default_region, ctx.identity.min_birth_date),
            f"landing files under {paths.landing}")


@identity_app.command("train")
def train(
    home: HomeOption = None,
    from_landing: Annotated[bool, typer.Option(
        "--from-landing", help="Train on the landing files instead of the last build.")] = False,
    out_dir: Annotated[Path | None, typer.Option(
        help="Model folder (default: <data dir>/models/identity).")] = None,
) -> None:
    """Estimate the Splink model and save it as a new version (`model: auto` uses the newest)."""
    from identity.model_store import save_versioned
    from identity.resolve import train_normalised

    ctx = RunContext.at_edge(home)
    records, origin = _training_records(ctx, from_landing)
    if records.empty:
        fail(f"no identity records in {origin}; run the pipeline or land files first")
    try:
        document = train_normalised(records, ctx.identity, overrides=ctx.identity_overrides)
    except ValueError as error:
        fail(error)
    path = save_versioned(document, out_dir or ctx.paths.models)
    out = Console()
    out.print(f"trained on {len(records):,} records from {origin}")
    out.print(f"training nodes: {document['fingerprint']['rows']:,}  "
              f"fingerprint: {document['fingerprint']['sha256'][:16]}")
    out.print(f"model written: {path}")


@identity_app.command("evaluate")
def evaluate(
    truth: Annotated[Path, typer.Option(
        help="CSV with columns source,record_id,person_id and optionally pattern.")],
    home: HomeOption = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the figures to this JSON file.")] = None,
) -> None:
    """Pairwise precision, recall and F1 of the published identity graph against a truth file,
    why the missed true pairs were missed, and figures per truth `pattern`."""
    from cdp.run import evaluate_published
    from identity.diagnostics import MAX_PERSON_RECORDS, diagnose_publication

    ctx = RunContext.at_edge(home)
    paths = ctx.paths
    if not truth.exists():
        fail(f"truth file {truth} does not exist")
    if not paths.published_db.exists():
        fail(f"no published warehouse at {paths.published_db}")
    figures = evaluate_published(paths.published_db, truth)
    out = Console()
    table = Table(title="Identity resolution vs ground truth")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if not isinstance(value, dict):
            table.add_row(key, _figure(value))
    out.print(table)
    if paths.build_db.exists():
        figures["misses"] = diagnose_publication(paths, ctx.identity,
                                                 pd.read_csv(truth, dtype=str))
        out.print(_misses_table(figures["misses"]))
        out.print(f"true pairs of persons with more than {MAX_PERSON_RECORDS} records are not "
                  f"enumerated: {figures['misses']['skipped_persons']:,} persons, "
                  f"{figures['misses']['skipped_true_pairs']:,} pairs; blocking rules from "
                  f"the {figures['misses']['blocking_rules_from']}")
        if "note" in figures["misses"]:
            out.print(f"[yellow]{figures['misses']['note']}[/]")
    else:
        out.print(f"[yellow]no build file at {paths.build_db}: missed pairs not broken "
                  "down[/]")
    if figures["patterns"]:
        out.print(_patterns_table(figures["patterns"]))
    if json_out is not None:
        json_out.write_text(json.dumps(figures, indent=2))
        out.print(f"figures written: {json_out}")


def _figure(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else f"{value:,}"


def _misses_table(misses: dict[str, Any]) -> Table:
    """Missed true pairs by cause, blocking recall and the edges that merged two persons."""
    table = Table(title="Missed true pairs (in different profiles) by cause")
    table.add_column("cause")
    table.add_column("pairs", justify="right")
    table.add_row("missed true pairs", _figure(misses["missed_pairs"]))
    table.add_row("  never compared (no blocking rule, no rule edge)",
                  _figure(misses["never_compared"]))
    table.add_row("  compared, scored below the threshold", _figure(misses["below_threshold"]))
    for reason, pairs in misses["refused"].items():
        table.add_row(f"  refused by a guard: {reason}", _figure(pairs))
    table.add_row("true pairs compared directly", _figure(misses["compared_pairs"]))
    table.add_row("blocking recall (true pairs compared, directly or through a chain)",
                  f"{misses['blocking_recall']:.4f} of {misses['true_pairs']:,}")
    for via, edges in misses["false_merge_edges"].items():
        table.add_row(f"merged edges joining two persons: {via}", _figure(edges))
    return table


def _patterns_table(patterns: dict[str, dict[str, Any]]) -> Table:
    """Per truth pattern: pairs with both records labelled with it."""
    table = Table(title="Per truth pattern (pairs with both records labelled)")
    for column in ("pattern", "records", "true pairs", "predicted pairs", "precision",
                   "recall"):
        table.add_column(column, justify="left" if column == "pattern" else "right")
    for label, m in patterns.items():
        table.add_row(label, _figure(m["records"]), _figure(m["true_pairs"]),
                      _figure(m["predicted_pairs"]), _figure(m["precision"]),
                      _figure(m["recall"]))
    return table


def _published(home: Path | None) -> duckdb.DuckDBPyConnection:
    published = data_paths(home).published_db
    if not published.exists():
        fail(f"no published warehouse at {published}; run the pipeline first")
    return duckdb.connect(str(published), read_only=True)


def _successor(con: duckdb.DuckDBPyConnection, profile_id: str) -> str | None:
    row = con.execute(
        "select new_id, change, run_id from main.fct_profile_id_history "
        "where old_id = ? order by changed_at desc limit 1", [profile_id]).fetchone()
    return f"{profile_id} was retired ({row[1]} into {row[0]}, run {row[2]})" if row else None


def _edges_table(edges: pd.DataFrame) -> Table:
    table = Table(title="Edges")
    for column in ("left", "right", "evidence", "weight", "status"):
        table.add_column(column, justify="right" if column == "weight" else "left")
    for edge in edges.itertuples(index=False):
        if edge.edge_type == "splink":
            parts = json.loads(edge.comparison_weights) if edge.comparison_weights else {}
            evidence = "splink: " + ", ".join(
                f"{name} {detail['weight']:+.1f} ({detail['level']})"
                for name, detail in parts.items() if detail["weight"])
            weight = f"{edge.match_weight:.1f} (p={edge.match_probability:.3f})"
        else:
            evidence, weight = f"rule: {edge.rule}", ""
        table.add_row(f"{edge.source_l}:{edge.record_id_l}", f"{edge.source_r}:{edge.record_id_r}",
                      evidence, weight, edge.status)
    return table


def explain(
    profile_id: Annotated[str, typer.Argument(help="Profile id, e.g. P0123456789abcdef.")],
    home: HomeOption = None,
    show_pii: Annotated[bool, typer.Option(
        "--show-pii", help="Print identifiers unmasked (mind who can see your terminal).")] = False,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Write Splink's waterfall chart of the profile's Splink edges here.")]
    = None,
) -> None:
    """Show a profile's records (identifiers masked) and the edges that joined them, read
    from the published warehouse."""
    from identity.explain import mask

    con = _published(home)
    try:
        records = con.execute(
            "select source, record_id, record_ts, " + ", ".join(IDENTIFIERS)
            + " from main.fct_identity_graph where profile_id = ? order by source, record_id",
            [profile_id]).df()
        if records.empty:
            fail(_successor(con, profile_id) or f"no profile {profile_id} is published")
        con.register("profile_records", records[["source", "record_id"]])
        edges = con.execute(
            "select l.* from main.fct_identity_links l where exists (select 1 from "
            "profile_records p where (p.source = l.source_l and p.record_id = l.record_id_l) "
            "or (p.source = l.source_r and p.record_id = l.record_id_r)) "
            "order by l.status <> 'merged', l.edge_type, l.source_l, l.record_id_l").df()
    finally:
        con.close()
    table = Table(title=f"Profile {profile_id}: {len(records)} records")
    for column in ("source", "record_id", "record_ts", "identifiers"):
        table.add_column(column)
    for row in records.itertuples(index=False):
        shown = [f"{name}={value if show_pii else mask(value, kind)}"
                 for name, kind in IDENTIFIERS.items()
                 if (value := getattr(row, name)) is not None and not pd.isna(value)]
        table.add_row(row.source, row.record_id, str(row.record_ts or ""), ", ".join(shown))
    out = Console()
    out.print(table)
    out.print(_edges_table(edges))
    if html is not None:
        _write_waterfall(edges, home, html)


def _write_waterfall(edges: pd.DataFrame, home: Path | None, html: Path) -> None:
    """The chart needs the model version that scored the edges (named in the links table)."""
    from identity.explain import waterfall_html
    from identity.splink_model import load_model

    splink = edges[(edges["edge_type"] == "splink") & edges["gamma"].notna()]
    if splink.empty:
        fail("this profile has no Splink edges to chart")
    names = sorted(set(splink["model"].dropna()))
    path = data_paths(home).models / names[-1] if names else None
    if path is None or not path.exists():
        fail(f"model file {path} that scored these edges is not available")
    written = waterfall_html(splink, load_model(path), html)
    Console().print(f"waterfall chart of {len(splink)} Splink edge(s): {written}")
