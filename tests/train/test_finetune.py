"""The fine-tuned sentiment encoder on a handful of sentences (real MiniLM weights,
a few seconds on two cores): it learns, it is repeatable, and it saves and loads
without pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.core.schema import SENTIMENTS
from pipeline.train.finetune import SETTINGS_FILE, FinetunedSentiment

POSITIVE, NEGATIVE = SENTIMENTS.index("positive"), SENTIMENTS.index("negative")
TEXTS = [f"Staff were skilled and the support for family {i} was excellent." for i in range(8)]
TEXTS += [f"Planning for child {i} was poor and risks were missed." for i in range(8)]
LABELS = [POSITIVE] * 8 + [NEGATIVE] * 8


def small(**params) -> FinetunedSentiment:
    return FinetunedSentiment(**{"epochs": 3, "learning_rate": 1e-4,
                                 "head_learning_rate": 1e-2, "batch_size": 8,
                                 "max_length": 24, **params})


@pytest.fixture(scope="module")
def fitted() -> FinetunedSentiment:
    return small().fit(TEXTS, LABELS)


def test_it_learns_its_training_sentences_and_reads_each_text_once(fitted):
    probs = fitted.predict_proba(TEXTS + TEXTS[:1])
    assert probs.shape == (17, len(SENTIMENTS)) and np.allclose(probs.sum(axis=1), 1)
    assert (probs[:16].argmax(axis=1) == LABELS).all()
    assert np.array_equal(probs[16], probs[0])
    assert fitted.predict_proba([]).shape == (0, len(SENTIMENTS))


def test_one_seed_gives_the_same_model(fitted):
    again = small().fit(TEXTS, LABELS)
    assert np.array_equal(again.predict_proba(TEXTS), fitted.predict_proba(TEXTS))


def test_it_saves_as_safetensors_and_loads_the_same(fitted, tmp_path):
    files = {p.name for p in fitted.save(tmp_path / "m")}
    assert {"model.safetensors", "head.safetensors", SETTINGS_FILE} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    loaded = FinetunedSentiment.load(tmp_path / "m")
    assert loaded.get_params() == fitted.get_params()
    assert np.array_equal(loaded.predict_proba(TEXTS), fitted.predict_proba(TEXTS))


def test_a_folder_that_is_not_one_is_a_one_line_error(fitted, tmp_path):
    with pytest.raises(InputError, match="settings missing"):
        FinetunedSentiment.load(tmp_path)
    fitted.save(tmp_path / "m")
    settings = tmp_path / "m" / SETTINGS_FILE
    settings.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match="not a fine-tuned model of this tool"):
        FinetunedSentiment.load(tmp_path / "m")


def test_one_class_or_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match="at least two sentiments"):
        small().fit(TEXTS[:8], LABELS[:8])
    with pytest.raises(ValueError, match="16 texts for 15 labels"):
        small().fit(TEXTS, LABELS[:15])
