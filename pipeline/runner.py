"""``inspections run``: every stage, in order, on any folder of PDFs, outside DVC.

The same stage functions as the DVC pipeline, wired to one output folder:
``DIR/extracted/``, ``DIR/segments/``, ``DIR/embeddings.npz``, ``DIR/classified.jsonl``,
``DIR/themes/``, and the report files at the top of ``DIR``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import classify, compare, embed, extract, segment, themes, train
from pipeline.errors import InputError
from pipeline.io import read_jsonl, write_json, write_jsonl
from pipeline.params import read_params, section


def focus_name(focus: str | None, params_path: Path | None) -> str:
    if focus:
        return focus
    data = read_params(params_path).get("data") or {}
    name = data.get("focus")
    if not name:
        raise InputError(params_path or "params.yaml", "no focus partnership: pass --focus NAME")
    return str(name)


def classify_file(
    segments_path: Path, model_dir: Path, out_path: Path, embeddings: Path | None = None
) -> int:
    """Classify every segment of a JSONL file with the models in ``model_dir``.

    ``embeddings`` is the embed stage's cache: when it was filled by the models' encoder,
    its vectors are reused instead of encoding every sentence a second time (texts it
    lacks, such as headings, are encoded); a cache of another encoder is not used.
    """
    models = classify.load_models(model_dir)  # first, so a bad model fails before reading
    cache = None
    if embeddings and Path(embeddings).exists() \
            and embed.stored_encoder(embeddings) == models.encoder:
        cache = embed.EmbeddingCache(embeddings, models.encoder)
    rows = classify.classify(read_jsonl(segments_path), models, cache)
    write_jsonl(out_path, rows)
    return len(rows)


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
    log: Callable[[str], Any] = print,
    warn: Callable[[list[InputError]], Any] = lambda e: None,
) -> Path:
    """Run extract → segment → embed → classify → themes → compare; return the HTML path."""
    pdf_dir, out = Path(pdf_dir), Path(out)
    if not pdf_dir.is_dir():
        raise InputError(pdf_dir, "not a folder of PDFs")
    name = focus_name(focus, params_path)
    errors: list[InputError] = []

    log("extracting text")
    errors += extract.extract_path(
        [pdf_dir], out / "extracted", keep_going, section("extract", extract.DEFAULTS, params_path)
    )
    log("segmenting")
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
    log("embedding segments")
    embed.run(segments_path, out / "embeddings.npz", section("embed", embed.DEFAULTS, params_path))
    if not model_dir.exists():
        log(f"no models at {model_dir}: training them from {labels} (no evaluation)")
        model_dir = out / "models"
        train.train(
            [labels], model_dir, section("train", train.DEFAULTS, params_path), evaluate=False
        )
    log("classifying")
    classify_file(segments_path, model_dir, out / "classified.jsonl", out / "embeddings.npz")
    log("clustering themes")
    themes.run(
        out / "classified.jsonl",
        out / "embeddings.npz",
        out / "themes",
        section("themes", themes.DEFAULTS, params_path),
    )
    log("comparing partnerships")
    return compare.run(
        out / "classified.jsonl",
        out / "segments" / "reports.jsonl",
        out / "themes",
        out,
        section("compare", compare.DEFAULTS, params_path),
        name,
        reference,
    )
