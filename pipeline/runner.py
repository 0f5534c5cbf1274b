"""``inspections run``: every stage, in order, on any folder of PDFs, outside DVC.

The same stage functions as the DVC pipeline, wired to one output folder:
``DIR/extracted/``, ``DIR/segments/``, ``DIR/embeddings.npz``, ``DIR/classified.jsonl``,
``DIR/themes/``, and the report files at the top of ``DIR``; per-report results kept
between runs in ``DIR/cache/`` (a second run on a grown folder reads, segments and
classifies only the new reports).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.classify import stage as classify
from pipeline.compare import stage as compare
from pipeline.core import engine
from pipeline.core.cache import error_rows
from pipeline.core.errors import InputError
from pipeline.core.io import write_json
from pipeline.core.log import get_logger
from pipeline.core.params import focus_name, section
from pipeline.embed import stage as embed
from pipeline.embed.runtime import select_device
from pipeline.extract import stage as extract
from pipeline.report import render as report
from pipeline.segment import stage as segment
from pipeline.themes import stage as themes
from pipeline.train import stage as train

log = get_logger(__name__)


class _Clock:
    """Seconds per stage: ``start(name)`` ends the running stage and starts the next."""

    def __init__(self, into: dict[str, float] | None):
        self.into = into
        self.name: str | None = None
        self.began = time.perf_counter()

    def start(self, name: str | None) -> None:
        now = time.perf_counter()
        if self.into is not None and self.name is not None:
            self.into[self.name] = self.into.get(self.name, 0.0) + now - self.began
        self.name, self.began = name, now


def check_models_or_labels(model_dir: Path, labels: Path, params_path: Path | None) -> None:
    """Fail at once, saying what to pass, when there is neither a model to classify with
    nor labels to train one from (and the training's sources folder, when it is needed)."""
    if model_dir.exists():
        return
    found = labels.is_file() or (labels.is_dir() and any(labels.glob("*.jsonl")))
    if not found:
        raise InputError(model_dir, f"no trained models here and no labels at {labels} to "
                                    "train them from: pass --model DIR (a folder written by "
                                    "`inspections train`) or --labels DIR (label JSONL files)")
    sources = section("train", train.DEFAULTS, params_path).get("sources_dir")
    if sources and not Path(sources).is_dir():
        raise InputError(params_path or "params.yaml",
                         f"train.sources_dir {sources} is not a folder (needed to train from "
                         f"{labels}): set it in --params, or pass --model DIR")


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
    scheduler: str | None = None,
    timings: dict[str, float] | None = None,
) -> Path:
    """Run extract → segment → embed → classify → themes → compare; return the HTML path.

    Everything a run needs from outside the PDF folder (the focus, a model or labels
    to train one) is checked first, so a run from the wrong folder fails in a second
    with what to pass, not after the PDFs were read. ``timings``, when given, receives
    each stage's wall-clock seconds (``benchmarks/scale.py`` reads them).
    """
    clock = _Clock(timings)
    pdf_dir, out = Path(pdf_dir), Path(out)
    if not pdf_dir.is_dir():
        raise InputError(pdf_dir, "not a folder of PDFs")
    name = focus_name(focus, params_path)
    check_models_or_labels(Path(model_dir), Path(labels), params_path)
    if scheduler is None:
        scheduler = str(section("engine", engine.DEFAULTS, params_path)["scheduler"])
    embed_params = section("embed", embed.DEFAULTS, params_path)
    select_device(embed_params["device"])
    engine.preload(*extract.PRELOAD, "pipeline.segment.preload")
    errors: list[InputError] = []

    clock.start("extract")
    log.info("extracting text")
    errors += extract.extract_path(
        [pdf_dir], out / "extracted", keep_going,
        section("extract", extract.DEFAULTS, params_path), out / "cache" / "extract", scheduler,
    )
    clock.start("segment")
    log.info("segmenting")
    errors += segment.run(
        [out / "extracted"],
        out / "segments",
        section("segment", segment.DEFAULTS, params_path),
        keep_going,
        segment.read_manifest(pdf_dir),
        out / "cache" / "segment",
        scheduler,
    )
    write_json(out / "errors.json", error_rows(errors, "run"))
    warn(errors)

    segments_path = out / "segments" / "segments.jsonl"
    clock.start("embed")
    log.info("embedding segments")
    embed.run(segments_path, out / "embeddings.npz", embed_params, scheduler)
    if not model_dir.exists():
        clock.start("train")
        log.info(f"no models at {model_dir}: training them from {labels} (no evaluation)")
        model_dir = out / "models"
        train.train(
            [labels], model_dir, section("train", train.DEFAULTS, params_path), evaluate=False
        )
    clock.start("classify")
    log.info("classifying")
    classify.classify_file(
        segments_path, model_dir, out / "classified.jsonl", out / "embeddings.npz",
        out / "cache" / "classify", scheduler, embed_params["device"])
    clock.start("themes")
    log.info("clustering themes")
    themes.run(
        out / "classified.jsonl",
        out / "embeddings.npz",
        out / "themes",
        section("themes", themes.DEFAULTS, params_path),
    )
    clock.start("compare")
    log.info("comparing partnerships")
    benchmark_path = compare.run(
        out / "classified.jsonl",
        out / "segments" / "reports.jsonl",
        out / "themes",
        out,
        section("compare", compare.DEFAULTS, params_path),
        name,
        reference,
        cache=out / "cache" / "compare",
    )
    clock.start("report")
    log.info("writing the report")
    written = report.run(benchmark_path, out / "themes" / "themes.json",
                         out / "classified.jsonl", out, out / "segments" / "errors.json")
    clock.start(None)
    return written
