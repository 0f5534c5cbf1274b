"""Contrastive (SetFit-style) fine-tuning of the MiniLM sentence encoder.

Why: the frozen encoder places sentences by topic and wording; a few hundred
labelled pairs ("these two are both mixed", "these two speak of different QIs")
reshape the space so that what the labels care about decides the distance. That
transfers to real report wording better than word features do. The pair loop is
written here with plain PyTorch (cosine-similarity regression, as SetFit does)
so that no training framework is needed beyond sentence-transformers itself.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classifier import qi_area


def make_pairs(
    texts: Sequence[str],
    sentiments: Sequence[str],
    qi_main: Sequence[str],
    n_pairs: int,
    seed: int,
) -> list[tuple[str, str, float]]:
    """Balanced positive/negative pairs, half by sentiment and half by QI.

    Target similarity for a QI pair: 1 for the same code, 0.5 for another code of
    the same area (so areas stay together), 0 otherwise. Rare classes are drawn
    as often as common ones, which is what lets 8 neutral sentences count.
    """
    rng = random.Random(seed)
    pairs: list[tuple[str, str, float]] = []
    tasks = (
        (sentiments, lambda a, b: 1.0 if a == b else 0.0),
        (qi_main, lambda a, b: 1.0 if a == b else (0.5 if qi_area(a) == qi_area(b) else 0.0)),
    )
    per_task = n_pairs // len(tasks)
    for labels, target in tasks:
        by_label: dict[str, list[int]] = defaultdict(list)
        for i, label in enumerate(labels):
            by_label[label].append(i)
        classes = sorted(by_label)
        if len(classes) < 2:
            continue
        for k in range(per_task):
            a_label = classes[k % len(classes)]
            i = rng.choice(by_label[a_label])
            if k % 2 == 0:
                j = rng.choice(by_label[a_label])
            else:
                b_label = rng.choice([c for c in classes if c != a_label])
                j = rng.choice(by_label[b_label])
            pairs.append((texts[i], texts[j], target(labels[i], labels[j])))
    rng.shuffle(pairs)
    return pairs


def finetune_encoder(
    base_path: str,
    pairs: list[tuple[str, str, float]],
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 2e-5,
    seed: int = 0,
    max_seq_length: int = 128,
) -> Any:
    """A fine-tuned copy of the encoder at ``base_path`` (a SentenceTransformer)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    model = SentenceTransformer(base_path, device="cpu")
    model.max_seq_length = max_seq_length
    if not pairs:
        return model
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * ((len(pairs) + batch_size - 1) // batch_size)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps)
    )
    rng = random.Random(seed)
    model.train()
    for _ in range(epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = [pairs[k] for k in order[start:start + batch_size]]
            left = _embed(model, [a for a, _, _ in batch])
            right = _embed(model, [b for _, b, _ in batch])
            target = torch.tensor([t for _, _, t in batch], dtype=torch.float32)
            loss = torch.nn.functional.mse_loss(
                torch.cosine_similarity(left, right), target
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    model.eval()
    return model


def _embed(model: Any, texts: list[str]) -> Any:
    features = model.tokenize(texts)
    return model(features)["sentence_embedding"]


def encode_with(model: Any, texts: list[str], batch_size: int = 32) -> np.ndarray:
    if not texts:
        dim = model.get_sentence_embedding_dimension()
        return np.zeros((0, dim), dtype=np.float32)
    vecs = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vecs, dtype=np.float32)


def save_encoder(model: Any, path: Path) -> None:
    model.save(str(path), safe_serialization=True)
