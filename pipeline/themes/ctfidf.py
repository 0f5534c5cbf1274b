"""Key phrases for groups of sentences: class-based TF-IDF and Monroe log-odds.

Why not BERTopic: it would pull in umap-learn, numba and hdbscan (and their
compiled wheels) for the one piece we need, c-TF-IDF over a ``CountVectorizer``,
which is a few lines of scikit-learn and fully deterministic. The formula is
BERTopic's: ``W[c, t] = tf[c, t] / |c| * log(1 + A / f[t])`` with ``A`` the
mean number of phrase tokens per class and ``f[t]`` the frequency of ``t``
over all classes.

Distinctive phrases and themes use the log-odds ratio with an informative
Dirichlet prior (Monroe, Colaresi and Quinn 2008, "Fightin' Words", eq. 22):
frequent words do not dominate as with raw differences, rare words do not
dominate as with plain log-odds, and the z-score says how sure we are.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

# Words of letters, keeping hyphens and apostrophes inside them ("inter-agency", "child's").
# Numbers and percentages ("85", "2019") are not phrases an analyst can read.
TOKEN_RE = re.compile(r"(?u)\b[^\W\d_]+(?:['’-][^\W\d_]+)*\b")
# Words too generic to start or end a key phrase, beyond scikit-learn's English list.
EXTRA_STOP_WORDS = frozenset({"did", "does", "doing", "just", "ll", "ve", "s"})


def stop_words(extra: Iterable[str] = ()) -> list[str]:
    """English stop words plus ``extra`` words (e.g. partnership names), lower-cased."""
    words = set(ENGLISH_STOP_WORDS) | EXTRA_STOP_WORDS
    for item in extra:
        words.update(w.lower() for w in item.replace("-", " ").split())
    return sorted(words)


class PhraseAnalyzer:
    """Turn a text into its 1..n-gram phrases, none starting or ending with a stop word.

    Stop words stay inside phrases ("looked after children", "children and young
    people"), which reads better than scikit-learn's removal before n-gramming
    ("looked children"). A class, not a closure, so a fitted vectorizer pickles.
    """

    def __init__(self, stop: frozenset[str], ngram_max: int):
        self.stop = stop
        self.ngram_max = ngram_max

    def __call__(self, text: str) -> list[str]:
        tokens = [t.lower().replace("\u2019", "'") for t in TOKEN_RE.findall(text)]
        tokens = [t for t in tokens if len(t) > 1]
        out: list[str] = []
        for size in range(1, self.ngram_max + 1):
            for i in range(len(tokens) - size + 1):
                first, last = tokens[i], tokens[i + size - 1]
                if first in self.stop or last in self.stop:
                    continue
                out.append(" ".join(tokens[i : i + size]))
        return out


def phrase_counts(
    texts: Sequence[str],
    extra_stop_words: Iterable[str] = (),
    ngram_max: int = 3,
    min_df: int = 2,
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Segment x phrase counts (1..``ngram_max``-grams, see :class:`PhraseAnalyzer`).

    ``min_df`` counts segments, so a phrase must recur to be a candidate label.
    Falls back to ``min_df=1`` on tiny inputs where nothing would survive.
    """
    if not texts:
        return sparse.csr_matrix((0, 0), dtype=np.int64), np.array([], dtype=object)
    analyzer = PhraseAnalyzer(frozenset(stop_words(extra_stop_words)), max(1, ngram_max))
    for df in (min(min_df, len(texts)), 1):
        vectorizer = CountVectorizer(min_df=df, analyzer=analyzer)
        try:
            counts = vectorizer.fit_transform(texts)
        except ValueError:  # empty vocabulary
            continue
        return counts.tocsr(), vectorizer.get_feature_names_out()
    return sparse.csr_matrix((len(texts), 0), dtype=np.int64), np.array([], dtype=object)


def surface_forms(texts: Iterable[str]) -> dict[str, str]:
    """How each lower-cased word is usually written, where that is not lower case.

    Phrases are counted lower-cased; for display, "camhs" should read "CAMHS"
    and "port cairnish" "Port Cairnish". Words at the start of a sentence are
    not counted, so a capital there does not stick.
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for text in texts:
        for match in TOKEN_RE.finditer(text):
            before = text[: match.start()].rstrip()
            if not before or before[-1] in ".:;!?\u2013-(\"'\u201c":
                continue
            word = match.group().replace("\u2019", "'")
            counts[word.lower()][word] += 1
    out = {}
    for low, forms in counts.items():
        best = min(forms.items(), key=lambda kv: (-kv[1], kv[0] != low, kv[0]))[0]
        if best != low:
            out[low] = best
    return out


def display_phrase(phrase: str, forms: dict[str, str]) -> str:
    return " ".join(forms.get(word, word) for word in phrase.split(" "))


def class_counts(counts: sparse.csr_matrix, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Sum segment rows into class rows; labels outside ``0..n_classes-1`` are ignored."""
    labels = np.asarray(labels)
    keep = (labels >= 0) & (labels < n_classes)
    indicator = sparse.csr_matrix(
        (np.ones(int(keep.sum())), (labels[keep], np.flatnonzero(keep))),
        shape=(n_classes, counts.shape[0]),
    )
    return np.asarray((indicator @ counts).todense(), dtype=float)


def class_tfidf(per_class: np.ndarray) -> np.ndarray:
    """c-TF-IDF weights (classes x terms) from class-level term counts."""
    if per_class.size == 0:
        return per_class.astype(float)
    sizes = per_class.sum(axis=1, keepdims=True)
    tf = np.divide(per_class, sizes, out=np.zeros_like(per_class), where=sizes > 0)
    avg_tokens = float(sizes.mean())
    term_freq = per_class.sum(axis=0)
    idf = np.log1p(np.divide(avg_tokens, term_freq, out=np.zeros_like(term_freq),
                             where=term_freq > 0))
    return tf * idf


def _overlaps(a: str, b: str) -> bool:
    """True when one phrase is a contiguous part of the other ("risk" in "risk assessment")."""
    ta, tb = f" {a} ", f" {b} "
    return ta in tb or tb in ta


def top_phrases(
    scores: np.ndarray, vocab: np.ndarray, n: int, min_score: float = 0.0,
    prefer_longer: float = 0.5,
) -> list[tuple[str, float]]:
    """The ``n`` best phrases by score, none repeating another's words.

    A longer phrase that contains a chosen one replaces it when it scores at
    least ``prefer_longer`` times as much: "looked after children" says more
    than "looked". Sorted by score, best first.
    """
    chosen: list[tuple[str, float]] = []
    # Stable order: score descending, then phrase, so ties never depend on hashing.
    # Only phrases over min_score are sorted, with numpy's lexsort rather than sorted()
    # with a key: the distinctive phrases of every partnership sorted the whole
    # vocabulary, which at 100 reports took 4 s.
    scores = np.asarray(scores, dtype=float)
    above = np.flatnonzero(scores > min_score)
    order = above[np.lexsort((np.asarray(vocab[above], dtype=str), -scores[above]))]
    pool = [int(i) for i in order[: max(50, 20 * n)]]
    for i in pool:
        phrase, score = str(vocab[i]), float(scores[i])
        clash = [j for j, (p, _) in enumerate(chosen) if _overlaps(phrase, p)]
        if not clash:
            if len(chosen) < n:
                chosen.append((phrase, score))
            continue
        inside = all(f" {chosen[j][0]} " in f" {phrase} " for j in clash)
        if inside and score >= prefer_longer * max(chosen[j][1] for j in clash):
            chosen[clash[0]] = (phrase, score)
            chosen = [c for j, c in enumerate(chosen) if j not in clash[1:]]
    return sorted(chosen, key=lambda c: (-c[1], c[0]))


def log_odds_dirichlet(
    counts_a: np.ndarray, counts_b: np.ndarray, prior_total: float
) -> tuple[np.ndarray, np.ndarray]:
    """Log-odds ratio of each item in group A against group B, and its z-score.

    The informative prior is the pooled frequency of each item scaled to
    ``prior_total`` pseudo-counts: items are shrunk toward "no difference" in
    proportion to how little evidence there is for them.
    """
    a = np.asarray(counts_a, dtype=float)
    b = np.asarray(counts_b, dtype=float)
    pooled = a + b
    if pooled.sum() <= 0:
        zeros = np.zeros_like(a)
        return zeros, zeros
    alpha = prior_total * pooled / pooled.sum()
    alpha = np.maximum(alpha, 1e-9)
    alpha0 = alpha.sum()
    n_a, n_b = a.sum(), b.sum()
    delta = np.log((a + alpha) / (n_a + alpha0 - a - alpha)) - np.log(
        (b + alpha) / (n_b + alpha0 - b - alpha)
    )
    variance = 1.0 / (a + alpha) + 1.0 / (b + alpha)
    return delta, delta / np.sqrt(variance)
