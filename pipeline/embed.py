"""Sentence embeddings for segments, from encoders shipped on PyPI (``pipeline.encoders``).

Models are loaded by path, so nothing ever reaches a model hub. Embeddings are
cached by text hash: re-running the pipeline after adding one report only encodes
that report's new sentences. A cache remembers which encoder filled it, and a
cache filled by another encoder is ignored rather than mixed in.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.encoders import DIMENSIONS, check_name, model_path
from pipeline.io import atomic_write, text_hash

# Set before sentence-transformers / transformers are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_ENCODER = "minilm"


@lru_cache(maxsize=4)
def load_encoder(encoder: str = DEFAULT_ENCODER) -> Any:
    """Load (once per process) the named encoder from its local folder."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path(encoder), device="cpu")


def encode(
    texts: list[str], encoder: str = DEFAULT_ENCODER, batch_size: int = 32
) -> np.ndarray:
    """Unit-normalised embeddings, one row per text, float32."""
    if not texts:
        return np.zeros((0, DIMENSIONS[encoder]), dtype=np.float32)
    model = load_encoder(encoder)
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


class EmbeddingCache:
    """A text-hash -> vector store in one ``.npz`` file.

    Why one file: DVC tracks it as a single output, and a corpus of 32 reports is
    about 15,000 sentences (22 MB), small enough to load whole.
    """

    def __init__(self, path: str | Path | None, encoder: str = DEFAULT_ENCODER):
        self.path = Path(path) if path else None
        self.encoder = check_name(encoder)
        self._vectors: dict[str, np.ndarray] = {}
        if self.path and self.path.exists() and stored_encoder(self.path) == encoder:
            with np.load(self.path, allow_pickle=False) as data:
                for key, vec in zip(data["keys"], data["vectors"], strict=True):
                    self._vectors[str(key)] = vec

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        keys = [text_hash(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items()
        )
        if missing:
            new = encode([t for _, t in missing], self.encoder, batch_size)
            for (key, _), vec in zip(missing, new, strict=True):
                self._vectors[key] = vec
        if not texts:
            return np.zeros((0, DIMENSIONS[self.encoder]), dtype=np.float32)
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
            else np.zeros((0, DIMENSIONS[self.encoder]), dtype=np.float32)
        )
        with atomic_write(self.path, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="U40"), vectors=vectors,
                     encoder=np.array(self.encoder))


def stored_encoder(path: str | Path) -> str:
    """The encoder that filled a cache file (caches written before it was recorded: MiniLM)."""
    with np.load(path, allow_pickle=False) as data:
        return str(data["encoder"]) if "encoder" in data.files else "minilm"


DEFAULTS: dict[str, Any] = {"batch_size": 32, "encoder": DEFAULT_ENCODER}


def run(segments_path: str | Path, out_path: str | Path, params: dict[str, Any]) -> int:
    """Embed every segment of ``segments_path`` into the cache at ``out_path``."""
    from pipeline.io import read_jsonl

    texts = [row["text"] for row in read_jsonl(segments_path)]
    cache = EmbeddingCache(out_path, check_name(params["encoder"], "embed.encoder"))
    cache.embed(texts, batch_size=params["batch_size"])
    cache.save(keep=texts)
    return len(texts)
