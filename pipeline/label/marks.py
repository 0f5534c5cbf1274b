"""Mark the segments of the analysed corpus that people labelled.

Once a user labels sentences of the reports being compared and retrains, the
models' reading of those sentences is in-sample: it repeats the label rather than
predicts it. The report says so, per sentence and per report, so that a reader
does not take a labelled report's figures as the models' independent reading.

The match is by the label reader's text key (case and spacing ignored), the same
key the trained models keep of their training sentences; so the keys may come
from label files (:func:`keys_from_label_files`) or from the models' manifest
(``info["training_text_keys"]``), which also covers the neutral context sentences
added at training time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.train.data import label_files, read_label_file, text_key

MARK = "labelled"


def keys_from_label_files(paths: Sequence[Path]) -> set[str]:
    """Text keys of every sentence in the label files or folders ``paths``."""
    if not paths:
        return set()
    return {text_key(r["text"]) for f in label_files(list(paths)) for r in read_label_file(f)}


def mark_labelled(
    segments: Iterable[Mapping[str, Any]], keys: Collection[str]
) -> list[dict[str, Any]]:
    """Copies of ``segments`` with ``labelled``: true where the sentence is labelled,
    false elsewhere (the input rows are left as they are)."""
    keys = set(keys)
    return [{**seg, MARK: isinstance(seg.get("text"), str) and text_key(seg["text"]) in keys}
            for seg in segments]


def labelled_counts(segments: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Marked segments per report (reports without any are left out): what a report
    page needs for a line such as "12 of these sentences were labelled"."""
    counts = Counter(str(s.get("report_id")) for s in segments if s.get(MARK))
    return dict(sorted(counts.items()))
