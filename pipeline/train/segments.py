"""The classifiers' X and y: segments with their sentence vectors, and their labels.

Why a container rather than a matrix: the models read, per row, its fields (text,
part, kind, heading, report) *and* its vectors, and several features read the
neighbouring rows of the same report. ``Segments`` keeps the two together and
slices both by row, as scikit-learn's splitters and helpers do
(``X[train_index]``), so ``LeaveOneGroupOut`` and ``clone`` work on it unchanged.
Rows stay in file order under sorted indices, which is what the neighbour
features need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pipeline.train.vectors import Encode, row_vectors

POSITION_FIELDS = ("part", "kind", "subsection")  # where a sentence sits


class Label(NamedTuple):
    """One sentence's labels: its sentiment and its QI codes, main code first."""

    sentiment: str
    qi: tuple[str, ...]


@dataclass(frozen=True)
class Segments:
    """Rows (dicts with ``text`` and optional context fields) and their vectors
    (``text``, ``heading``, ``clause_first``, ``clause_last``, one row each)."""

    rows: list[dict[str, Any]]
    vectors: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        for name, mat in self.vectors.items():
            if len(mat) != len(self.rows):
                raise ValueError(f"vectors[{name!r}] has {len(mat)} rows for "
                                 f"{len(self.rows)} segments")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int]:
        """(n,): what scikit-learn reads to count samples and to slice by row."""
        return (len(self.rows),)

    def __getitem__(self, index: Any) -> Segments:
        """The segments at ``index`` (indices, a boolean mask or a slice), as Segments."""
        if isinstance(index, tuple):  # scikit-learn slices arrays as X[index, ...]
            index = index[0]
        picked = np.arange(len(self.rows))[index]
        picked = np.atleast_1d(picked)
        return Segments([self.rows[i] for i in picked],
                        {name: mat[picked] for name, mat in self.vectors.items()})

    @property
    def groups(self) -> np.ndarray:
        """Each row's report id: the groups of leave-one-report-out."""
        return np.array([str(r.get("report_id") or "") for r in self.rows])

    def without_context(self) -> Segments:
        """The segments with part, kind and heading left out (and so no heading vector),
        as bare sentences or another report generation arrive; order, and so the
        neighbours, is kept."""
        rows = [{**r, **dict.fromkeys(POSITION_FIELDS, "")} for r in self.rows]
        return Segments(rows, {**self.vectors,
                               "heading": np.zeros_like(self.vectors["heading"])})


def encode(rows: Sequence[dict[str, Any]], encoder: Encode) -> Segments:
    """Segments of ``rows`` with their vectors from ``encoder``."""
    rows = list(rows)
    return Segments(rows, row_vectors(rows, encoder))


def labels(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """y for the rows: an object array of :class:`Label`, sliceable like X."""
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = Label(row["sentiment"], tuple(row["qi"]))
    return out
