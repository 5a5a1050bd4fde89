"""What a run hands to its users, digested (benchmarks/output_digest.py, the digest a
refactoring is proven with): every published table and each segment's newest export."""

from __future__ import annotations

import importlib.util
from typing import Any

from cdp.settings import REPO_ROOT
from core.paths import DataPaths


def digest_tool() -> Any:
    spec = importlib.util.spec_from_file_location(
        "output_digest", REPO_ROOT / "benchmarks" / "output_digest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def output_digests(paths: DataPaths) -> dict[str, str]:
    tool = digest_tool()
    return {**tool.table_digests(paths.published_db), **tool.export_digests(paths.exports)}
