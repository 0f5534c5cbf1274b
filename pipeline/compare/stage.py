"""Stage ``compare``: benchmark the focus partnership against its peers.

Glue only: :mod:`pipeline.compare.benchmark` computes the figures into
``benchmark.json``; the ``report`` stage (:mod:`pipeline.report`) renders them,
so a change to the report's wording does not recompute a single interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.compare import benchmark

DEFAULTS: dict[str, Any] = dict(benchmark.DEFAULTS)


def run(
    segments_path: Path,
    reports_path: Path,
    themes_dir: Path,
    out_dir: Path,
    params: dict[str, Any],
    focus: str,
    reference: Path | None = None,
    training: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """Write ``out_dir/benchmark.json``; returns its path. ``training``: the evaluate
    stage's out-of-report predictions, which the grade predictor learns from."""
    benchmark.run(
        segments_path,
        reports_path,
        Path(themes_dir) / "themes.json",
        reference,
        out_dir,
        focus,
        params,
        training_path=training,
        cache_dir=cache,
    )
    return Path(out_dir) / "benchmark.json"
