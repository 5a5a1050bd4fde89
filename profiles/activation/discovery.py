"""The segments on offer: the configured ones plus published dbt segment tables no entry names.

A bare dbt segment is an email audience named after its table: the channel a dbt model selects
for is not visible in the published file, and email is what the models select.
"""

from __future__ import annotations

import duckdb

from profiles.activation.config import ActivationConfig
from profiles.activation.segment import Segment, is_name
from profiles.activation.syntax import SegmentError
from profiles.publishing.published import published_tables


def available_segments(
    config: ActivationConfig, con: duckdb.DuckDBPyConnection
) -> dict[str, Segment]:
    """Configured segments plus every published dbt segment table no entry refers to."""
    segments = dict(config.segments)
    claimed = {s.model for s in segments.values() if s.model}
    for table in sorted(published_tables(con)):
        schema, name = table.split(".", 1)
        if schema == "segments" and name not in claimed and is_name(name):
            segments.setdefault(name, Segment(name=name, channel="email", model=name,
                                              description=f"dbt model {name}"))
    return segments


def find_segment(
    config: ActivationConfig, con: duckdb.DuckDBPyConnection, name: str
) -> Segment:
    segments = available_segments(config, con)
    if name not in segments:
        raise SegmentError(
            f"unknown segment {name!r} (known: {', '.join(sorted(segments)) or 'none'})")
    return segments[name]
