"""Compare stage: benchmark the focus partnership and write the comparison report.

Glue only: :mod:`pipeline.benchmark` computes the figures and :mod:`pipeline.report`
renders them, so each can be tested (and swapped) on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import benchmark, report
from pipeline.io import read_json, read_jsonl

DEFAULTS: dict[str, Any] = dict(benchmark.DEFAULTS)


def run(
    segments_path: Path,
    reports_path: Path,
    themes_dir: Path,
    out_dir: Path,
    params: dict[str, Any],
    focus: str,
    reference: Path | None = None,
) -> Path:
    """Write benchmark.json, comparison.html, comparison.md and plot files into ``out_dir``."""
    themes_path = Path(themes_dir) / "themes.json"
    result = benchmark.run(
        segments_path,
        reports_path,
        themes_path,
        Path(themes_dir) / "segment_themes.jsonl",
        reference,
        out_dir,
        focus,
        params,
    )
    report.render(result, read_json(themes_path), read_jsonl(segments_path), Path(out_dir))
    return Path(out_dir) / "comparison.html"
