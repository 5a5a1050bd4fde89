"""``cdp identity train`` and ``cdp explain``: the model artefact and why a profile exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import duckdb
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from cdp.context import RunContext
from cdp.settings import data_paths

console = Console(stderr=True)

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="Data directory (default: $CDP_HOME or ./data).")
]
IDENTIFIERS = {"email": "email", "phone": "phone", "customer_number": "text",
               "user_id": "text", "anonymous_id": "text", "loyalty_card": "text"}


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


def _training_records(ctx: RunContext, from_landing: bool) -> tuple[pd.DataFrame, str]:
    """This build's identity records, or the landing files when asked / nothing is built."""
    paths = ctx.paths
    if not from_landing and paths.build_db.exists():
        con = duckdb.connect(str(paths.build_db), read_only=True)
        try:
            return (con.sql("select * from intermediate.int_identity__records").df(),
                    f"{paths.build_db} (intermediate.int_identity__records)")
        except duckdb.CatalogException:
            pass
        finally:
            con.close()
    from identity.landing import records_from_landing

    return (records_from_landing(paths.landing, ctx.config.sources),
            f"landing files under {paths.landing}")


def train(
    home: HomeOption = None,
    from_landing: Annotated[bool, typer.Option(
        "--from-landing", help="Train on the landing files instead of the last build.")] = False,
    out_dir: Annotated[Path | None, typer.Option(
        help="Model folder (default: <data dir>/models/identity).")] = None,
) -> None:
    """Estimate the Splink model and save it as a new version (`model: auto` uses the newest)."""
    from identity.model_store import save_versioned
    from identity.resolve import train as train_model

    ctx = RunContext.at_edge(home)
    records, origin = _training_records(ctx, from_landing)
    if records.empty:
        raise _fail(f"no identity records in {origin}; run the pipeline or land files first")
    try:
        document = train_model(records, None, ctx.identity)
    except ValueError as error:
        raise _fail(str(error)) from None
    path = save_versioned(document, out_dir or ctx.paths.models)
    out = Console()
    out.print(f"trained on {len(records):,} records from {origin}")
    out.print(f"training nodes: {document['fingerprint']['rows']:,}  "
              f"fingerprint: {document['fingerprint']['sha256'][:16]}")
    out.print(f"model written: {path}")


def _published(home: Path | None) -> duckdb.DuckDBPyConnection:
    published = data_paths(home).published_db
    if not published.exists():
        raise _fail(f"no published warehouse at {published}; run the pipeline first")
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
            raise _fail(_successor(con, profile_id) or f"no profile {profile_id} is published")
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
        raise _fail("this profile has no Splink edges to chart")
    names = sorted(set(splink["model"].dropna()))
    path = data_paths(home).models / names[-1] if names else None
    if path is None or not path.exists():
        raise _fail(f"model file {path} that scored these edges is not available")
    written = waterfall_html(splink, load_model(path), html)
    Console().print(f"waterfall chart of {len(splink)} Splink edge(s): {written}")
