"""The compare stage: benchmark the focus partnership, then write the comparison report.

Two steps kept in their own modules (:mod:`pipeline.benchmark` computes,
:mod:`pipeline.report` presents); this module only wires the stage's files
together for the CLI and DVC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import benchmark, report
from pipeline.errors import InputError
from pipeline.io import read_json, read_jsonl

DEFAULTS: dict[str, Any] = dict(benchmark.DEFAULTS)


def run(
    segments_path: str | Path,
    reports_path: str | Path,
    themes_dir: str | Path,
    out_dir: str | Path,
    params: dict[str, Any] | None = None,
    focus: str | None = None,
    reference: str | Path | None = None,
    metrics_path: str | Path | None = None,
) -> Path:
    """Write ``benchmark.json``, ``comparison.html``/``.md`` and plot files; return the HTML path.

    ``themes_dir`` is the themes stage's folder (``themes.json``,
    ``segment_themes.jsonl``). Without ``reference`` the real-partnership
    section is empty.
    """
    if not focus or not focus.strip():
        raise InputError(None, "no focus partnership given (--focus, or data.focus in "
                               "params.yaml)")
    themes_dir = Path(themes_dir)
    out_dir = Path(out_dir)
    result = benchmark.run(
        segments_path, reports_path, themes_dir / "themes.json",
        themes_dir / "segment_themes.jsonl", reference, out_dir, focus, params, metrics_path,
    )
    report.render(result, read_json(themes_dir / "themes.json"), read_jsonl(segments_path),
                  out_dir)
    return out_dir / "comparison.html"
