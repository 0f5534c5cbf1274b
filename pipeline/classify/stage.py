"""Stage ``classify``: add QI and sentiment predictions to segments.

Every input field is kept; ``qi`` (ranked codes, main first; a second code only
where the model gives it a calibrated probability above the trained threshold),
``qi_scores`` (all 20 codes and ``none``), ``sentiment`` and ``sentiment_scores``
are added. Segments are expected in file order: a segment's neighbours are the
adjacent segments of the same report.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.cache import ReportCache, code_key, key_of
from pipeline.core.engine import Limits, run_tasks
from pipeline.core.errors import InputError
from pipeline.core.io import read_jsonl, sha256_file, write_jsonl
from pipeline.core.log import get_logger
from pipeline.embed.runtime import check_precision
from pipeline.embed.stage import EmbeddingCache, encoder_tag, stored_encoder
from pipeline.label.marks import mark_labelled
from pipeline.train.model import SegmentClassifier, labels_from_scores
from pipeline.train.persist import load_models as _load
from pipeline.train.segments import encode
from pipeline.train.vectors import Encode, vector_keys

log = get_logger(__name__)
#: The models' own encoder's vectors, kept in the cache folder between runs.
VECTORS_GLOB = "vectors-*.npz"
PREDICTED_FIELDS = ("qi", "qi_scores", "sentiment", "sentiment_scores")


def vectors_path(cache_dir: Path) -> Path:
    """Where the models' encoder's vectors are kept: named after the encoding code's
    key, so that vectors made by other code (another pooling, the batched int8 passes
    of before) are never mixed with today's; older files are deleted after a run."""
    return Path(cache_dir) / f"vectors-{code_key(('embed',))[:16]}.npz"


@dataclass
class Models:
    """A verified classifier and what it was trained on (the manifest's info)."""

    classifier: SegmentClassifier
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder(self) -> str:
        """The frozen encoder the models were trained with."""
        return str(self.info["params"]["encoder"])

    @property
    def precision(self) -> str:
        """The encoder precision the models were trained with (``fp32`` for models
        written before it was recorded)."""
        return precision_of(self)

    def frozen_encoder(self, path: str | Path | None = None,
                       device: str = "auto") -> EmbeddingCache:
        """An embedding cache (in memory without ``path``) giving the vectors these
        models were trained on: their encoder, at their precision."""
        return models_encoder(self, path, device)


def precision_of(models: Any) -> str:
    """The encoder precision in the models' manifest info (``fp32`` where it is not
    recorded: models written before it was)."""
    return str((models.info.get("params") or {}).get("encoder_precision", "fp32"))


def models_encoder(models: Any, path: str | Path | None = None,
                   device: str = "auto") -> EmbeddingCache:
    """See :meth:`Models.frozen_encoder`."""
    return EmbeddingCache(path, models.encoder, device, precision_of(models))


def check_encoder(models: Models, encoder: Any) -> None:
    """Refuse an embedding cache of another encoder or precision than the models':
    vectors of an int8 encoder fed to fp32-trained models (or the reverse) would
    shift every prediction a little, silently."""
    tag = getattr(encoder, "tag", None)
    wanted = encoder_tag(models.encoder, precision_of(models))
    if tag is not None and tag != wanted:
        raise InputError("classify", f"the models were trained on {wanted} vectors but "
                                     f"were given {tag} vectors")


def load_models(model_dir: Path) -> Models:
    """Load and verify the models written by the train stage (InputError if unusable)."""
    models = Models(*_load(Path(model_dir)))
    check_precision(models.precision, "encoder_precision in the model manifest")
    return models


def classify(
    segments: list[dict], models: Models, frozen_encoder: Encode | None = None
) -> list[dict]:
    """Segments with predictions added; ``frozen_encoder`` may be an embedding cache
    filled by the models' encoder, so that vectors already computed for the corpus
    are reused."""
    if not segments:
        return []
    clf = models.classifier
    sent, qi = predict_scores(segments, models, frozen_encoder)
    out = []
    for segment, s, q in zip(segments, sent, qi, strict=True):
        row = {k: v for k, v in segment.items() if k not in PREDICTED_FIELDS}
        row.update(labels_from_scores(s, q, clf.second_code_threshold))
        out.append(row)
    return out


def predict_scores(
    segments: list[dict], models: Models, frozen_encoder: Encode | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(sentiment probabilities in ``SENTIMENTS`` order, QI probabilities in ``QI_CODES``
    order), one row per segment: what ``classify`` labels from and ``evaluate`` scores."""
    encoder = frozen_encoder or models_encoder(models)
    check_encoder(models, encoder)
    sent, qi = models.classifier.predict_proba(encode(segments, encoder))
    return sent, qi


def model_key(model_dir: Path) -> str:
    """Hash of every file of the model folder: cached predictions belong to one model."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(model_dir)).encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


@lru_cache(maxsize=2)
def _cached_models(model_dir: str, key: str) -> Models:
    return load_models(Path(model_dir))


def loaded_models(model_dir: Path) -> tuple[Models, str]:
    """(models, their key), loaded once per process and model: a Dask worker or a
    long-lived caller classifying report after report does not reload them."""
    key = model_key(model_dir)
    return _cached_models(str(Path(model_dir).resolve()), key), key


def by_report(segments: list[dict]) -> dict[str, list[dict]]:
    """Segments grouped by report, reports in first-seen order, file order kept inside:
    the neighbour features only ever read segments of the same report."""
    groups: dict[str, list[dict]] = {}
    for row in segments:
        groups.setdefault(str(row.get("report_id")), []).append(row)
    return groups


def report_key(model: str, rows: list[dict]) -> str:
    """What one report's predictions depend on: the model, the report's segments and
    the code that turns them into predictions."""
    return key_of("classify", model, code_key(("classify", "train", "embed")), rows)


def _classify_task(model_dir: str, rows: list[dict], vectors: dict[str, Any],
                   device: str) -> tuple[list[dict], dict[str, Any]]:
    """What a Dask worker runs: one report, with the vectors already known; returns its
    rows and the vectors it had to compute, for the caller's store."""
    models, _ = loaded_models(Path(model_dir))
    cache = models_encoder(models, None, device)
    cache.update(vectors)
    wanted = vector_keys(rows) - set(vectors)
    return classify(rows, models, cache), cache.known(wanted)


def classify_file(
    segments_path: Path, model_dir: Path, out_path: Path, embeddings: Path | None = None,
    cache_dir: Path | None = None, scheduler: str = "", device: str = "auto",
) -> int:
    """Classify every segment of a JSONL file with the models in ``model_dir``.

    ``embeddings`` is the embed stage's cache: when it was filled by the models' encoder,
    its vectors are reused instead of encoding every sentence a second time (texts it
    lacks, such as headings, are encoded); a cache of another encoder is not used.
    With ``cache_dir``, each report's predictions are kept under a key of the model,
    its segments and the code, so a report classified before is not classified again,
    and the vectors of the models' encoder (when ``embeddings`` holds another's) are
    kept there (:func:`vectors_path`), so that models retrained on new labels classify
    the corpus again without encoding it again (Dask workers send theirs back);
    the reports to classify go to a Dask cluster when ``scheduler`` is given (one task
    a report; the model folder must be readable by the workers at the same path).
    """
    models, model = loaded_models(model_dir)  # first, so a bad model fails before reading
    from pipeline.embed.runtime import select_device

    select_device(device)
    segments = read_jsonl(segments_path)
    groups = by_report(segments)
    store = ReportCache(cache_dir)
    done: dict[str, list[dict]] = {}
    keys = {report: report_key(model, rows) for report, rows in groups.items()}
    for report in groups:
        cached = store.get(keys[report])
        if cached is not None:
            done[report] = cached
    todo = [report for report in groups if report not in done]
    cache = None
    if todo and embeddings and Path(embeddings).exists() \
            and stored_encoder(embeddings) == encoder_tag(models.encoder, precision_of(models)):
        cache = models_encoder(models, embeddings, device)
    elif todo and cache_dir:
        # The models' encoder is not the embed stage's, so its vectors are kept here:
        # after a retraining every report is classified again, and its sentences,
        # headings and clauses need not be encoded again (nor those of a report
        # that repeats another's sentences).
        cache = models_encoder(models, vectors_path(cache_dir), device)
    if todo and scheduler:
        tasks = []
        for report in todo:
            known = cache.known(vector_keys(groups[report])) if cache is not None else {}
            tasks.append((report, (str(Path(model_dir).resolve()), groups[report], known,
                                   device)))
        for outcome in run_tasks(_classify_task, tasks, Limits(section="classify"), scheduler):
            if outcome.error is not None:
                raise outcome.error
            done[outcome.label], computed = outcome.value
            if cache is not None:
                cache.update(computed)
    elif todo:
        rows = classify([row for report in todo for row in groups[report]], models,
                        cache or models_encoder(models, None, device))
        for report, part in by_report(rows).items():
            done[report] = part
    for report in todo:
        store.put(keys[report], done[report])
    pruned = store.prune()
    # The kept vectors follow the corpus: a removed report's go with its predictions.
    if store.folder is not None:
        kept = vectors_path(store.folder)
        if cache is not None and cache.path == kept:
            cache.save(keep_keys=vector_keys(segments))
        elif pruned and kept.exists():
            models_encoder(models, kept, device).save(keep_keys=vector_keys(segments))
        for stale in set(store.folder.glob(VECTORS_GLOB)) - {kept}:
            stale.unlink(missing_ok=True)
    if len(groups) > 1 or store.hits:
        log.info("classify: %d reports classified, %d from the cache", len(todo), store.hits)
    # Sentences the models were trained on are read in-sample: the report says so.
    out = mark_labelled([row for report in groups for row in done[report]],
                        models.info.get("training_text_keys") or [])
    write_jsonl(out_path, out)
    return len(out)
