"""Ingestion: landing files of every registered source into DuckDB's ``raw`` schema.

``load_registry`` reads ``config/sources.yml``; ``load_all`` loads each source's new files
exactly once (ledger ``raw._load_ledger``), keeps every column in append-only
``raw.<source>`` and quarantines what cannot be parsed in ``raw.<source>__rejected``.
"""

from ingest.errors import IngestError, IngestRunError
from ingest.loader import load_all, load_source
from ingest.registry import Registry, RegistryError, SourceSpec, load_registry
from ingest.reports import FileLoadReport, SourceLoadReport

__all__ = [
    "FileLoadReport",
    "IngestError",
    "IngestRunError",
    "Registry",
    "RegistryError",
    "SourceLoadReport",
    "SourceSpec",
    "load_all",
    "load_registry",
    "load_source",
]
