"""Build the identity input frame straight from landing files (tests and benchmarks).

In production the dbt staging models feed :func:`identity.resolve`; this reader exists so the
identity package can be measured against the demo data without the warehouse.  It follows the
``identity`` mapping of the source registry (``config/sources.yml``) and keeps values raw (as
strings).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from identity.normalise import INPUT_COLUMNS
from ingest.registry import SourceSpec, compose_key, load_registry


def _read_file(path: Path, spec: SourceSpec) -> pd.DataFrame:
    fmt = spec.format
    if fmt == "csv":
        return pd.read_csv(path, sep=spec.csv.delimiter, encoding=spec.csv.encoding,
                           header=0 if spec.csv.header else None,
                           dtype=str, keep_default_na=False, na_values=[""])
    if fmt == "jsonl":
        frame = pd.read_json(path, lines=True, dtype=False)
        return frame.astype("object").where(frame.notna(), None).astype("string")
    if fmt == "parquet":
        return pd.read_parquet(path).astype("string")
    raise ValueError(f"unsupported landing format {fmt!r} for {path}")


def read_source(landing: Path, spec: SourceSpec) -> pd.DataFrame:
    """One source's records mapped onto the identity input schema."""
    name = spec.name
    folder = landing / name
    files = sorted(folder.glob(spec.path))
    frames = [_read_file(f, spec) for f in files if f.is_file()]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in INPUT_COLUMNS})
    raw = pd.concat(frames, ignore_index=True)
    out = pd.DataFrame(index=raw.index)
    out["source"] = name
    if spec.composite_key:  # composed as ingest composes it (ingest.registry.compose_key)
        parts = [raw[part].astype("object").where(raw[part].notna(), None)
                 for part in spec.key_columns]
        out["record_id"] = pd.Series([compose_key(values) for values in zip(*parts, strict=True)],
                                     index=raw.index, dtype="string")
    else:
        out["record_id"] = raw[spec.record_key].astype("string").str.strip()
    ts_raw = raw[spec.timestamp] if spec.timestamp else pd.Series(pd.NA, index=raw.index)
    out["record_ts"] = pd.to_datetime(ts_raw, format=spec.timestamp_format or "ISO8601",
                                      errors="coerce", utc=False)
    mapping = spec.identity
    for canonical, column in mapping.items():
        out[canonical] = raw[column] if column in raw.columns else pd.NA
    if "birth_date" in mapping and spec.birth_date_format:
        out["birth_date"] = pd.to_datetime(out["birth_date"], format=spec.birth_date_format,
                                           errors="coerce").dt.date
    for column in INPUT_COLUMNS:
        if column not in out.columns:
            out[column] = pd.NA
    # the same record may arrive twice (re-delivery, late files): keep its latest version
    out = out.sort_values(["record_id", "record_ts"], kind="stable", na_position="first")
    out = out.drop_duplicates("record_id", keep="last")
    return out[list(INPUT_COLUMNS)].reset_index(drop=True)


def records_from_landing(landing: str | Path, sources_yml: str | Path,
                         sources: list[str] | None = None) -> pd.DataFrame:
    """All sources of the registry ``sources_yml`` (or ``sources``) as one identity input
    frame."""
    registry = load_registry(Path(sources_yml))
    names = sources or list(registry.sources)
    frames = [read_source(Path(landing), registry[name]) for name in names]
    return pd.concat(frames, ignore_index=True)
