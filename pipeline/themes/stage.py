"""Themes: cluster segment embeddings, label each cluster, and compare partnerships.

Clustering is spherical k-means (k-means on unit vectors, so distance follows
cosine similarity), seeded and run single-threaded so that fixed params give the
same themes on any machine. The number of themes is either fixed
(``n_themes``) or chosen by the cosine silhouette over ``k_min..k_max``.
A segment whose cosine similarity to its theme's centroid is below
``outlier_min_sim`` is an outlier (theme ``-1``); the least similar segments
only, never more than ``max_outlier_share`` of the corpus.

Labels are c-TF-IDF key phrases (see :mod:`pipeline.ctfidf` for why not
BERTopic). Distinctive themes and phrases of each partnership against all the
others use the Monroe et al. (2008) log-odds ratio with an informative
Dirichlet prior, with z-scores as the significance figure. They are computed
for every partnership so the stage does not depend on which one is the focus.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.core.engine import cores
from pipeline.core.errors import InputError
from pipeline.core.io import read_jsonl, write_json, write_jsonl
from pipeline.core.log import progress
from pipeline.core.params import resolve
from pipeline.themes import ctfidf

OUTLIER = -1
SENTIMENTS = ("positive", "negative", "mixed", "neutral")

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "n_themes": 0,  # 0: choose by silhouette over k_min..k_max
    "k_min": 8,
    "k_max": 20,
    "k_step": 2,
    "n_init": 4,
    "silhouette_sample": 3000,  # segments drawn (seeded) to score each k
    "k_sample": 5000,  # segments drawn (seeded) to cluster at each candidate k; 0: all
    "outlier_min_sim": 0.35,
    "max_outlier_share": 0.10,
    "n_phrases": 8,
    "label_phrases": 3,
    "n_representative": 3,
    "ngram_max": 4,  # stop words count inside phrases: "children and young people"
    "min_df": 3,
    "theme_prior": 50.0,  # pseudo-segments in the log-odds prior for themes
    "phrase_prior": 500.0,  # pseudo-phrases in the log-odds prior for phrases
    "n_distinctive": 10,
    "min_z": 1.96,
}


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _kmeans(x: np.ndarray, k: int, seed: int, n_init: int,
            init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, unit centroids); ``init``: start from these centroids, once."""
    from sklearn.cluster import KMeans

    # One thread: faster on small corpora (no BLAS/OpenMP oversubscription) and
    # bit-for-bit repeatable across machines with different core counts.
    with threadpool_limits(1):
        km = KMeans(n_clusters=k, random_state=seed, n_init=n_init if init is None else 1,
                    init="k-means++" if init is None else init).fit(x)
    return km.labels_.astype(int), _normalise(km.cluster_centers_)


@dataclass(frozen=True)
class KChoice:
    """The chosen k, every candidate's silhouette, and the chosen k's clustering of
    the points it was chosen on (the whole corpus unless ``sampled``)."""

    k: int
    silhouette: dict[str, float]
    labels: np.ndarray | None = None
    centroids: np.ndarray | None = None
    sampled: bool = False


def choose_k(x: np.ndarray, params: dict[str, Any]) -> KChoice:
    """The k with the best cosine silhouette over the candidate range (fewest themes on ties),
    clustering at most ``k_sample`` segments drawn with the seed."""
    from sklearn.metrics import silhouette_score

    # k is chosen on a seeded sample of the corpus: at 100 reports choosing k on all
    # 28,000 segments took 21 of the stage's 35 s, and every added report paid it
    # again. A sample of thousands still holds every theme many times over; below
    # ``k_sample`` segments nothing is sampled.
    sampled = 0 < params["k_sample"] < len(x)
    if sampled:
        rng = np.random.default_rng(params["seed"])
        x = x[np.sort(rng.choice(len(x), size=params["k_sample"], replace=False))]
    n = len(x)
    candidates = [
        k for k in range(params["k_min"], params["k_max"] + 1, max(1, params["k_step"]))
        if 2 <= k < n
    ]
    if not candidates:
        return KChoice(max(1, min(params["k_min"], n)), {})
    sample = min(n, params["silhouette_sample"])

    def fit_and_score(k: int) -> tuple[int, float | None, np.ndarray, np.ndarray]:
        labels, centroids = _kmeans(x, k, params["seed"], params["n_init"])
        if len(set(labels.tolist())) < 2:
            return k, None, labels, centroids
        score = silhouette_score(
            x, labels, metric="cosine", sample_size=sample, random_state=params["seed"])
        return k, round(float(score), 5), labels, centroids

    # Candidates in threads, one per core: each fit is seeded and single-threaded
    # (the limit is set once here, for every thread), so the scores are the same as
    # one after another, in half the time on two cores (k-means and the distances
    # release the GIL).
    scores: dict[str, float] = {}
    fits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with threadpool_limits(1), ThreadPoolExecutor(min(len(candidates), cores())) as pool:
        for k, score, labels, centroids in progress(
                pool.map(fit_and_score, candidates), "choosing the number of themes",
                total=len(candidates)):
            if score is not None:
                scores[str(k)] = score
                fits[str(k)] = (labels, centroids)
    if not scores:
        return KChoice(candidates[0], {})
    best = max(scores, key=lambda k: (scores[k], -int(k)))
    return KChoice(int(best), scores, *fits[best], sampled=sampled)


def cluster(x: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, KChoice]:
    """(labels, unit centroids, how k was chosen) for the whole corpus.

    The clustering made while choosing k is kept rather than made again: on the whole
    corpus it is the final one; on a sample its centroids start one k-means pass over
    the whole corpus (a sample's best of ``n_init`` starts is a better start than
    k-means++, and the pass costs a quarter of ``n_init`` fresh ones)."""
    n = len(x)
    if params["n_themes"] > 0:
        choice = KChoice(min(params["n_themes"], n), {})
    else:
        choice = choose_k(x, params)
    k = choice.k
    if k <= 1:
        return np.zeros(n, dtype=int), _normalise(x.mean(axis=0, keepdims=True)), choice
    if choice.labels is not None and not choice.sampled:
        return choice.labels, choice.centroids, choice
    labels, centroids = _kmeans(x, k, params["seed"], params["n_init"], init=choice.centroids)
    return labels, centroids, choice


def assign_outliers(
    similarity: np.ndarray, labels: np.ndarray, min_sim: float, max_share: float
) -> np.ndarray:
    """Mark segments far from their centroid as outliers, capped at ``max_share``."""
    labels = labels.copy()
    candidates = np.flatnonzero(similarity < min_sim)
    cap = int(np.floor(max_share * len(labels)))
    if len(candidates) > cap:
        order = np.lexsort((candidates, similarity[candidates]))
        candidates = candidates[order[:cap]]
    labels[candidates] = OUTLIER
    return labels


def theme_shares(segments: list[dict], assignment: list[int]) -> dict[str, dict[str, Any]]:
    """Per partnership: each theme's share of its segments, split by sentiment.

    Shares are of all the partnership's segments, outliers included, so a
    theme's sentiment parts add up to its share.
    """
    totals: Counter[str] = Counter()
    cells: dict[str, dict[int, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for seg, theme in zip(segments, assignment, strict=True):
        name = seg["partnership"]
        totals[name] += 1
        cells[name][int(theme)][seg.get("sentiment") or "neutral"] += 1
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(totals):
        n = totals[name]
        themes: dict[str, Any] = {}
        for theme in sorted(cells[name]):
            counts = cells[name][theme]
            size = sum(counts.values())
            themes[str(theme)] = {
                "n": size,
                "share": round(size / n, 5),
                "by_sentiment": {s: round(counts.get(s, 0) / n, 5) for s in SENTIMENTS},
            }
        out[name] = {"n": n, "themes": themes}
    return out


def distinctive_themes(
    labels: np.ndarray, partnerships: np.ndarray, focus: str, n_themes: int,
    prior_total: float,
) -> list[dict[str, Any]]:
    """Every theme's log-odds (focus against the rest) with z; outliers left out.

    The shares shown beside z are of all the group's segments, outliers
    included, as in :func:`theme_shares`, so the two never disagree.
    """
    in_theme = labels >= 0
    is_focus = partnerships == focus
    a = np.bincount(labels[in_theme & is_focus], minlength=n_themes)
    b = np.bincount(labels[in_theme & ~is_focus], minlength=n_themes)
    n_a, n_b = int(is_focus.sum()), int((~is_focus).sum())
    delta, z = ctfidf.log_odds_dirichlet(a, b, prior_total)
    rows = []
    for t in range(n_themes):
        rows.append({
            "theme": t,
            "delta": round(float(delta[t]), 4),
            "z": round(float(z[t]), 3),
            "focus_share": round(float(a[t] / n_a), 4) if n_a else 0.0,
            "peer_share": round(float(b[t] / n_b), 4) if n_b else 0.0,
        })
    return sorted(rows, key=lambda r: (-r["z"], r["theme"]))


def phrase_totals(counts: Any, names: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(partnerships, each one's phrase counts summed over its segments), in one sparse
    product rather than one slice per partnership (1.8 s at 100 reports)."""
    from scipy import sparse

    groups = sorted(set(names.tolist()))
    index = {g: i for i, g in enumerate(groups)}
    member = sparse.csr_matrix(
        (np.ones(len(names)), ([index[g] for g in names], np.arange(len(names)))),
        shape=(len(groups), len(names)))
    return groups, np.asarray((member @ counts).todense())


def distinctive_phrases(
    a: np.ndarray, b: np.ndarray, vocab: np.ndarray, params: dict[str, Any],
    index: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Phrases the focus uses more than the rest, by log-odds z (over ``min_z``);
    ``a`` and ``b`` are the focus's and the rest's count of each phrase, ``index``
    the vocabulary's positions (made here when not given; a corpus of 100
    partnerships gives it once)."""
    if len(vocab) == 0 or not a.any() or not b.any():
        return []
    delta, z = ctfidf.log_odds_dirichlet(a, b, params["phrase_prior"])
    # Only phrases the focus really uses more than once: one-off wording is noise.
    z = np.where(a >= 2, z, -np.inf)
    picked = ctfidf.top_phrases(
        z, vocab, params["n_distinctive"], min_score=params["min_z"], prefer_longer=0.75)
    index = index if index is not None else {str(p): i for i, p in enumerate(vocab)}
    return [
        {
            "phrase": phrase,
            "z": round(score, 3),
            "delta": round(float(delta[index[phrase]]), 4),
            "count": int(a[index[phrase]]),
            "peer_count": int(b[index[phrase]]),
        }
        for phrase, score in picked
    ]


def _representatives(
    x: np.ndarray, members: np.ndarray, centroid: np.ndarray, segments: list[dict], n: int
) -> list[dict[str, Any]]:
    sims = x[members] @ centroid
    order = np.lexsort((members, -sims))
    chosen: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in order:
        seg = segments[int(members[i])]
        key = " ".join(seg["text"].lower().split())
        if key in seen:
            continue
        seen.add(key)
        chosen.append({
            "segment_id": seg.get("segment_id"),
            "report_id": seg.get("report_id"),
            "partnership": seg.get("partnership"),
            "page": seg.get("page"),
            "text": seg["text"],
            "similarity": round(float(sims[i]), 4),
        })
        if len(chosen) >= n:
            break
    return chosen


def build_themes(
    segments: list[dict], embeddings: np.ndarray, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Themes of the corpus, with per-partnership shares and distinctive themes/phrases.

    Returns a JSON-ready dict; ``assignment`` (one theme id per segment, ``-1``
    for outliers, in input order) is included for :func:`run` to write out.
    """
    p = resolve("themes", DEFAULTS, params)
    n = len(segments)
    if embeddings.shape[0] != n:
        raise ValueError(f"{n} segments but {embeddings.shape[0]} embeddings")
    x = _normalise(embeddings)
    if n == 0:
        return {"n_segments": 0, "n_themes": 0, "outlier_share": 0.0, "themes": [],
                "partnerships": {}, "distinctive": {}, "assignment": [],
                "k_selection": {"method": "none", "silhouette": {}}, "params": p}

    raw, centroids, choice = cluster(x, p)
    k, sil = choice.k, choice.silhouette
    method = "fixed" if p["n_themes"] > 0 else "silhouette"

    # Theme ids by size (largest first), so "theme 0" means the same thing run to run.
    sizes = np.bincount(raw, minlength=k)
    order = sorted(range(k), key=lambda t: (-sizes[t], t))
    remap = np.empty(k, dtype=int)
    remap[order] = np.arange(k)
    raw = remap[raw]
    centroids = centroids[order]
    similarity = np.einsum("ij,ij->i", x, centroids[raw])
    labels = assign_outliers(similarity, raw, p["outlier_min_sim"], p["max_outlier_share"])

    names = np.array([s["partnership"] for s in segments], dtype=object)
    counts, vocab = ctfidf.phrase_counts(
        [s["text"] for s in segments], extra_stop_words=sorted(set(names)),
        ngram_max=p["ngram_max"], min_df=p["min_df"],
    )
    weights = ctfidf.class_tfidf(ctfidf.class_counts(counts, labels, k))
    forms = ctfidf.surface_forms(s["text"] for s in segments)

    themes = []
    for t in range(k):
        members = np.flatnonzero(labels == t)
        phrases = [(ctfidf.display_phrase(ph, forms), sc) for ph, sc in
                   ctfidf.top_phrases(weights[t], vocab, p["n_phrases"])] if len(vocab) else []
        label_words = [ph for ph, _ in phrases[: p["label_phrases"]]]
        label = ", ".join(label_words) if label_words else f"theme {t}"
        sentiment = Counter(segments[i].get("sentiment") or "neutral" for i in members)
        themes.append({
            "id": t,
            "label": label[:1].upper() + label[1:],
            "key_phrases": [{"phrase": ph, "score": round(sc, 5)} for ph, sc in phrases],
            "size": int(len(members)),
            "share": round(len(members) / n, 5),
            "sentiment": {s: int(sentiment.get(s, 0)) for s in SENTIMENTS},
            "representative": _representatives(
                x, members, centroids[t], segments, p["n_representative"]),
        })

    distinctive = {}
    groups, totals = phrase_totals(counts, names)
    overall = totals.sum(axis=0)
    index = {str(p): i for i, p in enumerate(vocab)}
    for name, mine in zip(groups, totals, strict=True):
        by_theme = distinctive_themes(labels, names, name, k, p["theme_prior"])
        distinctive[name] = {
            "themes": [r for r in by_theme if r["z"] >= p["min_z"]],
            "themes_under": [r for r in reversed(by_theme) if r["z"] <= -p["min_z"]],
            "phrases": [{**row, "phrase": ctfidf.display_phrase(row["phrase"], forms)}
                        for row in distinctive_phrases(mine, overall - mine, vocab, p, index)],
        }

    outliers = int((labels == OUTLIER).sum())
    return {
        "n_segments": n,
        "n_themes": k,
        "k_selection": {"method": method, "silhouette": sil,
                        "segments": p["k_sample"] if choice.sampled else n},
        "outlier_share": round(outliers / n, 5),
        "n_outliers": outliers,
        "outlier_min_sim": p["outlier_min_sim"],
        "themes": themes,
        "partnerships": theme_shares(segments, labels.tolist()),
        "distinctive": distinctive,
        "assignment": labels.tolist(),
        "params": p,
    }


def run(
    segments_path: str | Path,
    embeddings_path: str | Path,
    out_dir: str | Path,
    params: dict[str, Any] | None = None,
    metrics_path: str | Path | None = None,
) -> dict[str, Any]:
    """Read classified segments and their cached embeddings; write themes.json and
    segment_themes.jsonl (and a small metrics file when asked)."""
    from pipeline.embed.stage import EmbeddingCache, stored_encoder

    segments = read_jsonl(segments_path)
    for lineno, seg in enumerate(segments, start=1):
        missing = [k for k in ("segment_id", "partnership", "text") if not seg.get(k)]
        if missing:
            raise InputError(segments_path, f"row {lineno} lacks {', '.join(missing)}")
    embeddings_path = Path(embeddings_path)
    if not embeddings_path.exists():
        raise InputError(embeddings_path, "embedding cache not found (run the embed stage)")
    try:
        cache = EmbeddingCache(embeddings_path, stored_encoder(embeddings_path))
        vectors = cache.embed([s["text"] for s in segments])
    except (OSError, ValueError, KeyError) as err:
        raise InputError(embeddings_path, f"unreadable embedding cache ({err})") from None
    result = build_themes(segments, vectors, params)
    assignment = result.pop("assignment")
    out_dir = Path(out_dir)
    write_json(out_dir / "themes.json", result)
    write_jsonl(
        out_dir / "segment_themes.jsonl",
        ({"segment_id": s["segment_id"], "theme": t} for s, t in zip(segments, assignment,
                                                                      strict=True)),
    )
    if metrics_path:
        write_json(metrics_path, {
            "n_themes": result["n_themes"],
            "outlier_share": result["outlier_share"],
            "silhouette": result["k_selection"]["silhouette"].get(str(result["n_themes"])),
        })
    return result
