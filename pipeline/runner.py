"""``inspections run``: every stage, in order, on any folder of PDFs, outside DVC.

The same stage functions as the DVC pipeline, wired to one output folder:
``DIR/extracted/``, ``DIR/segments/``, ``DIR/embeddings.npz``, ``DIR/classified.jsonl``,
``DIR/themes/``, and the report files at the top of ``DIR``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.classify import stage as classify
from pipeline.compare import stage as compare
from pipeline.core.errors import InputError
from pipeline.core.io import write_json
from pipeline.core.log import get_logger
from pipeline.core.params import focus_name, section
from pipeline.embed import stage as embed
from pipeline.extract import stage as extract
from pipeline.report import render as report
from pipeline.segment import stage as segment
from pipeline.themes import stage as themes
from pipeline.train import stage as train

log = get_logger(__name__)


def run_all(
    pdf_dir: Path,
    out: Path,
    *,
    focus: str | None,
    model_dir: Path,
    labels: Path,
    reference: Path | None,
    keep_going: bool,
    params_path: Path | None,
    warn: Callable[[list[InputError]], Any] = lambda e: None,
) -> Path:
    """Run extract → segment → embed → classify → themes → compare; return the HTML path."""
    pdf_dir, out = Path(pdf_dir), Path(out)
    if not pdf_dir.is_dir():
        raise InputError(pdf_dir, "not a folder of PDFs")
    name = focus_name(focus, params_path)
    errors: list[InputError] = []

    log.info("extracting text")
    errors += extract.extract_path(
        [pdf_dir], out / "extracted", keep_going, section("extract", extract.DEFAULTS, params_path)
    )
    log.info("segmenting")
    errors += segment.run(
        [out / "extracted"],
        out / "segments",
        section("segment", segment.DEFAULTS, params_path),
        keep_going,
        segment.read_manifest(pdf_dir),
    )
    write_json(out / "errors.json", [{"file": e.path, "reason": e.reason} for e in errors])
    warn(errors)

    segments_path = out / "segments" / "segments.jsonl"
    log.info("embedding segments")
    embed.run(segments_path, out / "embeddings.npz", section("embed", embed.DEFAULTS, params_path))
    if not model_dir.exists():
        log.info(f"no models at {model_dir}: training them from {labels} (no evaluation)")
        model_dir = out / "models"
        train.train(
            [labels], model_dir, section("train", train.DEFAULTS, params_path), evaluate=False
        )
    log.info("classifying")
    classify.classify_file(
        segments_path, model_dir, out / "classified.jsonl", out / "embeddings.npz")
    log.info("clustering themes")
    themes.run(
        out / "classified.jsonl",
        out / "embeddings.npz",
        out / "themes",
        section("themes", themes.DEFAULTS, params_path),
    )
    log.info("comparing partnerships")
    benchmark_path = compare.run(
        out / "classified.jsonl",
        out / "segments" / "reports.jsonl",
        out / "themes",
        out,
        section("compare", compare.DEFAULTS, params_path),
        name,
        reference,
    )
    log.info("writing the report")
    return report.run(
        benchmark_path, out / "themes" / "themes.json", out / "classified.jsonl", out)
