"""Sentence embeddings for segments, from encoders shipped on PyPI (``pipeline.encoders``).

Models are loaded by path, so nothing ever reaches a model hub. Embeddings are
cached by text hash: re-running the pipeline after adding one report only encodes
that report's new sentences. A cache remembers which encoder filled it, and a
cache filled by another encoder is ignored rather than mixed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.engine import Limits, run_tasks
from pipeline.core.io import atomic_write, text_hash
from pipeline.core.params import resolve
from pipeline.embed import runtime as encoder_runtime
from pipeline.embed.encoders import DIMENSIONS, check_name

DEFAULT_ENCODER = "minilm"


def encode(
    texts: list[str], encoder: str = DEFAULT_ENCODER, batch_size: int | None = None,
    device: str = "auto", precision: str = "fp32",
) -> np.ndarray:
    """Unit-normalised embeddings, one row per text, float32 (on a GPU when ``device``
    is ``auto`` and there is one, or ``cuda``; ``int8``: the quantised encoder)."""
    if not texts:
        return np.zeros((0, DIMENSIONS[encoder]), dtype=np.float32)
    return encoder_runtime.load(encoder, device, precision).encode(
        texts, batch_size=batch_size)[0]


def encoder_tag(encoder: str, precision: str = "fp32") -> str:
    """What a cache records as its filler: the encoder, ``:int8`` added when quantised
    (so fp32 and int8 vectors are never mixed)."""
    return encoder if precision == "fp32" else f"{encoder}:{precision}"


class EmbeddingCache:
    """A text-hash -> vector store in one ``.npz`` file; call it to embed texts.

    Why one file: DVC tracks it as a single output, and a corpus of 32 reports is
    about 15,000 sentences (22 MB), small enough to load whole. Span vectors
    (a clause pooled from its sentence's pass, see ``spans``) are stored under a
    key of the text and the offsets. With no path it is an in-memory store.
    """

    def __init__(self, path: str | Path | None, encoder: str = DEFAULT_ENCODER,
                 device: str = "auto", precision: str = "fp32"):
        self.path = Path(path) if path else None
        self.encoder = check_name(encoder)
        self.device = device
        self.precision = encoder_runtime.check_precision(precision, "encoder precision")
        self.tag = encoder_tag(self.encoder, self.precision)
        self._vectors: dict[str, np.ndarray] = {}
        self._loaded: set[str] = set()
        if self.path and self.path.exists() and stored_encoder(self.path) == self.tag:
            with np.load(self.path, allow_pickle=False) as data:
                for key, vec in zip(data["keys"], data["vectors"], strict=True):
                    self._vectors[str(key)] = vec
            self._loaded = set(self._vectors)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.embed(texts)

    def embed(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        keys = [text_hash(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items()
        )
        if missing:
            new = encode([t for _, t in missing], self.encoder, batch_size, self.device,
                         self.precision)
            for (key, _), vec in zip(missing, new, strict=True):
                self._vectors[key] = vec
        return self._stack(keys)

    def spans(self, texts: list[str], spans: list[tuple[int, int]]) -> np.ndarray:
        """One vector per (text, span): the span's tokens pooled out of the whole text's
        pass; offsets are into the text with surrounding whitespace stripped. The
        texts' own vectors are stored on the way."""
        keys = [span_key(t, s) for t, s in zip(texts, spans, strict=True)]
        wanted: dict[str, list[tuple[int, int]]] = {}
        for key, text, span in zip(keys, texts, spans, strict=True):
            if key not in self._vectors:
                wanted.setdefault(text, []).append(span)
        if wanted:
            todo = sorted(wanted)
            vectors, pooled = encoder_runtime.load(
                self.encoder, self.device, self.precision).encode(
                todo, [wanted[t] for t in todo])
            for text, vec, span_vecs in zip(todo, vectors, pooled, strict=True):
                self._vectors[text_hash(text)] = vec
                for span, span_vec in zip(wanted[text], span_vecs, strict=True):
                    self._vectors[span_key(text, span)] = span_vec
        return self._stack(keys)

    def missing(self, texts: list[str]) -> list[str]:
        """The distinct texts not yet in the store, in first-seen order."""
        return list(dict.fromkeys(t for t in texts if text_hash(t) not in self._vectors))

    def known(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored vectors among ``keys`` (text or span keys), to hand to a worker."""
        return {k: self._vectors[k] for k in keys if k in self._vectors}

    def update(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors by key (what a worker computed, as :meth:`known` handed them)."""
        for key, vec in vectors.items():
            self._vectors[key] = np.asarray(vec, dtype=np.float32)

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        """Store vectors computed elsewhere (on a Dask worker) for ``texts``."""
        for text, vec in zip(texts, vectors, strict=True):
            self._vectors[text_hash(text)] = np.asarray(vec, dtype=np.float32)

    def _stack(self, keys: list[str]) -> np.ndarray:
        if not keys:
            return np.zeros((0, DIMENSIONS[self.encoder]), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys])

    def save(self, keep: list[str] | None = None, keep_keys: set[str] | None = None) -> None:
        """Write the cache; ``keep`` (texts) or ``keep_keys`` (keys, span keys among
        them: see :func:`span_key`) limit it to what the corpus still uses. Nothing is
        written when that is exactly what was loaded."""
        if self.path is None:
            return
        wanted = set(self._vectors)
        if keep is not None:
            wanted &= {text_hash(t) for t in keep}
        if keep_keys is not None:
            wanted &= keep_keys
        if wanted == self._loaded and self.path.exists():
            return
        keys = sorted(wanted)
        vectors = (
            np.stack([self._vectors[k] for k in keys])
            if keys
            else np.zeros((0, DIMENSIONS[self.encoder]), dtype=np.float32)
        )
        with atomic_write(self.path, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="U40"), vectors=vectors,
                     encoder=np.array(self.tag))
        self._loaded = set(keys)


def span_key(text: str, span: tuple[int, int]) -> str:
    """The key a span's vector is stored under (the text's own is ``text_hash``)."""
    return text_hash(f"{text.strip()}\x1f{span[0]}:{span[1]}")


def stored_encoder(path: str | Path) -> str:
    """The encoder that filled a cache file, as :func:`encoder_tag` writes it (caches
    written before it was recorded: MiniLM)."""
    with np.load(path, allow_pickle=False) as data:
        return str(data["encoder"]) if "encoder" in data.files else "minilm"


DEFAULTS: dict[str, Any] = {
    "batch_size": 16,
    "encoder": DEFAULT_ENCODER,
    # auto: a CUDA GPU when there is one (ONNX Runtime's CUDA provider, else PyTorch),
    # else the CPU; cpu or cuda to insist (cuda without a GPU is an error).
    "device": "auto",
}


def _encode_task(texts: list[str], encoder: str, batch_size: int, device: str) -> np.ndarray:
    """What a Dask worker runs: one report's new sentences (the worker keeps the
    encoder loaded between tasks)."""
    return encode(texts, encoder, batch_size, device)


def _embed_on_cluster(cache: EmbeddingCache, rows: list[dict[str, Any]],
                      params: dict[str, Any], scheduler: str) -> None:
    """Send each report's sentences that the cache lacks to the Dask cluster."""
    by_report: dict[str, list[str]] = {}
    wanted = set(cache.missing([row["text"] for row in rows]))
    for row in rows:
        if row["text"] in wanted:
            by_report.setdefault(str(row.get("report_id")), []).append(row["text"])
            wanted.discard(row["text"])
    tasks = [(report, (texts, cache.encoder, params["batch_size"], params["device"]))
             for report, texts in sorted(by_report.items())]
    for outcome in run_tasks(_encode_task, tasks, Limits(section="embed"), scheduler):
        if outcome.error is not None:
            raise outcome.error
        cache.add(tasks[outcome.index][1][0], outcome.value)


def run(segments_path: str | Path, out_path: str | Path, params: dict[str, Any],
        scheduler: str = "") -> int:
    """Embed every segment of ``segments_path`` into the cache at ``out_path``.

    Locally all new sentences are encoded in this process, longest first in
    batches (the encoder already uses every core, so more processes would only
    share them); with a Dask ``scheduler`` each report's new sentences are one task.
    """
    from pipeline.core.io import read_jsonl

    params = resolve("embed", DEFAULTS, params)
    encoder_runtime.select_device(params["device"])  # a bad device fails before the work
    rows = read_jsonl(segments_path)
    texts = [row["text"] for row in rows]
    cache = EmbeddingCache(out_path, check_name(params["encoder"], "embed.encoder"),
                           params["device"])
    if scheduler:
        _embed_on_cluster(cache, rows, params, scheduler)
    cache.embed(texts, batch_size=params["batch_size"])
    cache.save(keep=texts)
    return len(texts)
