"""Per-report work kept between runs, keyed by its inputs, code and parameters.

The DVC stages keep their single outputs (``data/extracted``, ``data/segments`` ...),
which DVC deletes before it re-runs a stage; the per-report results they are
assembled from live in a cache folder beside them (``data/cache/<stage>``, a
``persist`` output), so adding one report to a corpus reads, segments and
classifies that report only. A key is a hash of everything that produces the
result: the input's own hash, the source files of the code that runs on it,
the versions of the libraries it calls, and the stage's parameters; a change to
any of them misses the cache, so a cached result is always the one a fresh run
would give. Entries the current corpus no longer uses are pruned at the end of a
run, so removing a report removes its results.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.core.errors import InputError
from pipeline.core.io import read_json, write_json

PACKAGE = Path(__file__).resolve().parents[1]


class DuplicateReport(InputError):
    """A second copy of a report already in the corpus: listed, not analysed."""

    def __init__(self, path: str | Path | None, reason: str, duplicate_of: str):
        super().__init__(path, reason)
        self.duplicate_of = duplicate_of


def error_rows(errors: list[InputError], stage: str) -> list[dict[str, Any]]:
    """``errors.json`` rows: ``file``, ``reason``, ``stage``, and ``duplicate_of`` for copies."""
    rows = []
    for err in errors:
        row: dict[str, Any] = {"file": err.path, "reason": err.reason,
                               "stage": getattr(err, "stage", None) or stage}
        if isinstance(err, DuplicateReport):
            row["duplicate_of"] = err.duplicate_of
        rows.append(row)
    return rows


@lru_cache(maxsize=16)
def code_key(packages: tuple[str, ...], libraries: tuple[str, ...] = ()) -> str:
    """Hash of the source files of ``pipeline/<package>`` (and the core) and of the
    installed versions of ``libraries``: what a cached result was produced by."""
    digest = hashlib.sha256()
    for name in sorted({*packages, "core"}):
        for path in sorted((PACKAGE / name).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".yaml"}:
                digest.update(str(path.relative_to(PACKAGE)).encode())
                digest.update(path.read_bytes())
    for lib in libraries:
        try:
            digest.update(f"{lib}={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{lib}=none".encode())
    return digest.hexdigest()


def key_of(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (dict keys sorted)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ReportCache:
    """One JSON file per key in ``folder``; no folder means no caching.

    JSON, because the cached values are the same dicts the stage writes as JSON:
    a value read back is exactly the value computed (floats round-trip), so an
    output assembled from the cache is byte-identical to one computed afresh.
    """

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder else None
        self.used: set[str] = set()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{key}.json"

    def get(self, key: str) -> Any | None:
        """The cached value, or None (also for an unreadable entry, which is recomputed)."""
        if self.folder is None:
            return None
        self.used.add(key)
        path = self._path(key)
        if not path.exists():
            self.misses += 1
            return None
        try:
            value = read_json(path)
        except InputError:
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        if self.folder is not None:
            self.used.add(key)
            write_json(self._path(key), value)

    def prune(self) -> int:
        """Delete entries this run did not use; return how many."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        stale = [p for p in self.folder.glob("*.json") if p.stem not in self.used]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)
