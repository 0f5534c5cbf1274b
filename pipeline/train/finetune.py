"""Contrastive (SetFit-style) fine-tuning of the MiniLM sentence encoder.

Why: the frozen encoder places sentences by topic and wording; labelled pairs
("these two are both mixed", "these two speak of different QIs") reshape the
space so that what the labels care about decides the distance, and that carries
over to real report wording better than word features do.

How: instead of SetFit's sampled pairs, every pair inside a batch is used
(cosine similarity regressed on a target similarity), so one forward pass of 32
sentences trains on 496 pairs. On two CPU cores that is what makes fine-tuning
affordable. Batches are drawn class-balanced so that mixed and neutral sentences
weigh as much as positive ones.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.schema import qi_area


def target_similarity(
    sentiments: Sequence[str], qi_main: Sequence[str], qi_weight: float
) -> np.ndarray:
    """Pairwise target: same sentiment counts 1 - qi_weight, QI up to qi_weight.

    A QI pair scores 1 for the same code and 0.5 for another code of the same area,
    so that areas stay together in the space (label smoothing over areas).
    """
    s = np.asarray(sentiments)
    q = np.asarray(qi_main)
    areas = np.asarray([qi_area(c) for c in q])
    same_sent = (s[:, None] == s[None, :]).astype(np.float32)
    same_qi = np.where(
        q[:, None] == q[None, :], 1.0, np.where(areas[:, None] == areas[None, :], 0.5, 0.0)
    ).astype(np.float32)
    return (1.0 - qi_weight) * same_sent + qi_weight * same_qi


def balanced_batches(
    sentiments: Sequence[str], batch_size: int, n_batches: int, seed: int
) -> list[list[int]]:
    """Batches that draw each sentiment class about equally often."""
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(sentiments):
        by_class[label].append(i)
    classes = sorted(by_class)
    pools = {c: [] for c in classes}
    batches = []
    for _ in range(n_batches):
        batch: list[int] = []
        for k in range(batch_size):
            c = classes[k % len(classes)]
            if not pools[c]:
                pools[c] = list(by_class[c])
                rng.shuffle(pools[c])
            batch.append(pools[c].pop())
        batches.append(batch)
    return batches


def finetune_encoder(
    base_path: str,
    texts: Sequence[str],
    sentiments: Sequence[str],
    qi_main: Sequence[str],
    steps: int = 60,
    batch_size: int = 32,
    lr: float = 3e-5,
    qi_weight: float = 0.5,
    frozen_layers: int = 3,
    seed: int = 0,
    max_seq_length: int = 128,
) -> Any:
    """A fine-tuned copy of the encoder at ``base_path`` (a SentenceTransformer).

    ``frozen_layers`` lower transformer layers (and the word embeddings) keep their
    weights: it halves the cost of a step and keeps the general-English knowledge
    the real reports need.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    model = SentenceTransformer(base_path, device="cpu")
    model.max_seq_length = max_seq_length
    if steps <= 0 or len(texts) < 2:
        return model
    _freeze(model, frozen_layers)
    target = torch.tensor(target_similarity(sentiments, qi_main, qi_weight))
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps)
    )
    model.train()
    batch_size = min(batch_size, len(texts))
    upper = torch.triu(torch.ones(batch_size, batch_size, dtype=torch.bool), diagonal=1)
    for batch in balanced_batches(sentiments, batch_size, steps, seed):
        features = model.preprocess([texts[i] for i in batch])
        emb = torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)
        sims = emb @ emb.T
        idx = torch.tensor(batch)
        goal = target[idx][:, idx]
        loss = torch.nn.functional.mse_loss(sims[upper], goal[upper])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _freeze(model: Any, frozen_layers: int) -> None:
    transformer = model[0].auto_model
    for p in transformer.embeddings.parameters():
        p.requires_grad_(False)
    for layer in transformer.encoder.layer[:frozen_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)


def encode_with(model: Any, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    if not texts:
        dim = model.get_sentence_embedding_dimension()
        return np.zeros((0, dim), dtype=np.float32)
    vecs = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vecs, dtype=np.float32)


def save_encoder(model: Any, path: Path) -> None:
    model.save(str(path), safe_serialization=True)
