"""Digest of everything a run hands to its users, to prove a refactoring changed no output.

Covers every table of ``published.duckdb`` (rows sorted, order-independent), the member list
of every segment export of the newest run and the identity graph / profile ids (part of the
published tables). Columns that hold the wall-clock time or the run id of the run itself
(``recorded_at``, ``published_at``, ``run_id`` ...) are left out: they differ on every run.

    python benchmarks/output_digest.py --home data            # one line per part + total
    python benchmarks/output_digest.py --home a --compare b   # exit 1 when they differ
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import duckdb

#: Columns stamped with the time or id of the run that wrote them, not with data.
VOLATILE = {"recorded_at", "published_at", "run_id", "_run_id", "_loaded_at", "exported_at",
            "built_at"}
#: Per table: further run-stamped columns (the id history's change time and the KPI
#: snapshot's time are the run's time).
VOLATILE_IN = {"fct_profile_id_history": {"changed_at"}, "fct_kpi_history": {"snapshot_at"}}
#: Columns whose value embeds the run's time: {column: SQL that strips it}. A model trained
#: in the run is named model-<time>-<fingerprint>.json; the fingerprint is what counts.
NORMALISED = {"model": """regexp_replace("model", '^model-[0-9]+-', 'model-')"""}


def table_digests(published: Path) -> dict[str, str]:
    digests: dict[str, str] = {}
    with duckdb.connect(str(published), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            columns = [
                name for (name,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? "
                    "AND table_name = ? ORDER BY column_index", [schema, table]).fetchall()
                if name not in VOLATILE | VOLATILE_IN.get(table, set())
            ]
            body = ", ".join(NORMALISED.get(c, f'"{c}"') for c in columns)
            row = con.execute(
                f'SELECT count(*), bit_xor(hash(row({body}))), sum(hash(row({body}))::HUGEINT) '
                f'FROM "{schema}"."{table}"'
            ).fetchone()
            digests[f"table {schema}.{table}"] = f"{row[0]} rows {row[1]}:{row[2]}"
    return digests


def export_digests(exports: Path) -> dict[str, str]:
    """Sorted member lines of each segment's newest export (file names carry the run id)."""
    digests: dict[str, str] = {}
    for segment in sorted(p for p in exports.iterdir() if p.is_dir()) if exports.exists() else []:
        runs = sorted((p for p in segment.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        if not runs:
            continue
        for member in sorted(runs[-1].iterdir()):
            if member.name == "manifest.json" or not member.is_file():
                continue
            if member.suffix == ".parquet":
                with duckdb.connect() as con:
                    lines = [repr(r) for r in con.execute(
                        "SELECT * FROM read_parquet(?)", [str(member)]).fetchall()]
            else:
                lines = member.read_text(encoding="utf-8").splitlines()
            digest = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]
            digests[f"export {segment.name}/{member.name}"] = f"{len(lines)} lines {digest}"
    return digests


def digest(home: Path) -> dict[str, str]:
    parts = table_digests(home / "warehouse" / "published.duckdb")
    parts.update(export_digests(home / "exports"))
    total = hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()[:16]
    parts["TOTAL"] = total
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--compare", type=Path, help="a second data directory to compare with")
    args = parser.parse_args()
    mine = digest(args.home)
    if args.compare is None:
        for key, value in mine.items():
            print(f"{key}: {value}")
        return 0
    theirs = digest(args.compare)
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    for key in differ:
        print(f"DIFFERS {key}: {mine.get(key)} vs {theirs.get(key)}")
    print("identical" if not differ else f"{len(differ) - ('TOTAL' in differ)} part(s) differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
