"""Themes stage on synthetic embeddings: clusters, labels, outliers, shares, distinctiveness."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.core.io import text_hash
from pipeline.themes import ctfidf
from pipeline.themes import stage as themes

# Four topics with their own vocabulary; each segment's embedding sits near its topic's centre.
TOPICS = [
    ("ferry travel to the outer islands", ["islands", "ferry", "mainland"]),
    ("school attendance and exclusions of looked after pupils", ["school", "pupils"]),
    ("kinship carers felt supported", ["kinship carers", "carers"]),
    ("inter-agency referral discussions with CAMHS and police", ["referral", "police"]),
]
NAMES = ["Avonford", "Brackenmuir", "Corriedale"]
DIM = 24


def make_corpus(per_topic: int = 30, n_far: int = 0, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM)[: len(TOPICS)] * 3.0
    segments, vectors = [], []
    for t, (phrase, _) in enumerate(TOPICS):
        for i in range(per_topic):
            # Avonford talks mostly about the islands (topic 0), rarely about the rest.
            name = "Avonford" if (t == 0 and i % 3 != 2) or (t != 0 and i % 10 == 0) else \
                NAMES[1 + i % 2]
            segments.append({
                "segment_id": f"s{t}-{i}", "report_id": f"r-{name}", "partnership": name,
                "page": 1 + i, "sentiment": "positive" if i % 4 else "negative",
                "text": f"Staff said {phrase} in case {i}.",
            })
            vectors.append(centres[t] + rng.normal(0, 0.35, DIM))
    for j in range(n_far):
        segments.append({"segment_id": f"far{j}", "report_id": "r-Avonford",
                         "partnership": "Avonford", "page": 99, "sentiment": "neutral",
                         "text": f"Unrelated remark number {j}."})
        v = np.zeros(DIM)
        v[len(TOPICS) + j] = 3.0
        vectors.append(v + rng.normal(0, 0.05, DIM))
    return segments, np.asarray(vectors, dtype=np.float32)


PARAMS = {"k_min": 2, "k_max": 7, "k_step": 1, "min_df": 2}


def test_finds_the_topics_and_labels_them_by_their_words():
    segments, x = make_corpus()
    result = themes.build_themes(segments, x, PARAMS)
    assert result["n_themes"] == 4
    assert result["k_selection"]["method"] == "silhouette"
    assert result["outlier_share"] < 0.15
    by_topic = {}
    for seg, theme in zip(segments, result["assignment"], strict=True):
        by_topic.setdefault(seg["segment_id"].split("-")[0], set()).add(theme)
    assert all(len(ids) == 1 for ids in by_topic.values())  # one topic, one theme
    labels = {t["id"]: t["label"].lower() for t in result["themes"]}
    for t, (_, words) in enumerate(TOPICS):
        theme = by_topic[f"s{t}"].pop()
        assert any(w in labels[theme] or w in " ".join(
            p["phrase"].lower() for p in result["themes"][theme]["key_phrases"]) for w in words)
    camhs = [p["phrase"] for t in result["themes"] for p in t["key_phrases"] if "camhs" in
             p["phrase"].lower()]
    assert all("CAMHS" in p for p in camhs)  # shown as written, not lower-cased


def test_representatives_are_closest_to_the_centroid_and_cite_the_page():
    segments, x = make_corpus()
    result = themes.build_themes(segments, x, {**PARAMS, "n_themes": 4})
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    for t in result["themes"]:
        members = [i for i, a in enumerate(result["assignment"]) if a == t["id"]]
        centre = xn[members].mean(axis=0)
        centre /= np.linalg.norm(centre)
        best = max(members, key=lambda i: float(xn[i] @ centre))
        reps = t["representative"]
        assert 2 <= len(reps) <= 3
        assert reps[0]["segment_id"] == segments[best]["segment_id"]
        assert reps[0]["page"] == segments[best]["page"] and reps[0]["report_id"]


def test_deterministic_for_fixed_params():
    segments, x = make_corpus()
    a = themes.build_themes(segments, x, PARAMS)
    b = themes.build_themes(segments, x, PARAMS)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_far_segments_are_outliers_within_the_cap():
    segments, x = make_corpus(n_far=6)
    result = themes.build_themes(segments, x, {**PARAMS, "n_themes": 4})
    far = [a for s, a in zip(segments, result["assignment"], strict=True)
           if s["segment_id"].startswith("far")]
    assert far == [themes.OUTLIER] * 6
    assert result["outlier_share"] == pytest.approx(6 / len(segments), abs=1e-4)
    capped = themes.build_themes(segments, x, {**PARAMS, "n_themes": 4,
                                               "max_outlier_share": 0.02})
    assert capped["n_outliers"] == int(0.02 * len(segments))


def test_partnership_shares_split_by_sentiment():
    segments, x = make_corpus()
    result = themes.build_themes(segments, x, PARAMS)
    for info in result["partnerships"].values():
        total = sum(cell["share"] for cell in info["themes"].values())
        assert total == pytest.approx(1.0, abs=1e-3)
        for cell in info["themes"].values():
            assert sum(cell["by_sentiment"].values()) == pytest.approx(cell["share"], abs=1e-3)


def test_distinctive_theme_and_phrases_of_a_partnership():
    segments, x = make_corpus()
    result = themes.build_themes(segments, x, PARAMS)
    islands = result["assignment"][0]
    avon = result["distinctive"]["Avonford"]
    assert avon["themes"][0]["theme"] == islands
    assert avon["themes"][0]["z"] > 1.96
    assert avon["themes"][0]["focus_share"] > avon["themes"][0]["peer_share"]
    phrases = " ".join(p["phrase"] for p in avon["phrases"])
    assert "islands" in phrases or "ferry" in phrases
    assert all(p["z"] >= 1.96 for p in avon["phrases"])
    assert "avonford" not in phrases.lower()  # partnership names are never key phrases


def test_log_odds_is_antisymmetric_and_shrinks_rare_items():
    a = np.array([30.0, 5.0, 1.0, 0.0])
    b = np.array([10.0, 5.0, 0.0, 1.0])
    delta, z = ctfidf.log_odds_dirichlet(a, b, prior_total=10.0)
    delta_r, z_r = ctfidf.log_odds_dirichlet(b, a, prior_total=10.0)
    assert np.allclose(delta, -delta_r) and np.allclose(z, -z_r)
    assert z[0] > 1.96
    assert abs(z[2]) < 1.96  # one occurrence is not significant


def test_ctfidf_weights_words_of_one_class():
    counts, vocab = ctfidf.phrase_counts(
        ["ferry to islands", "ferry late", "school pupils", "school attendance"], min_df=1)
    per_class = ctfidf.class_counts(counts, np.array([0, 0, 1, 1]), 2)
    weights = ctfidf.class_tfidf(per_class)
    top0 = ctfidf.top_phrases(weights[0], vocab, 2, prefer_longer=1.01)
    assert top0[0][0] == "ferry"
    assert "school" not in [p for p, _ in top0]


def test_phrases_keep_inner_stop_words_and_prefer_longer_phrases():
    analyzer = ctfidf.PhraseAnalyzer(frozenset(ctfidf.stop_words()), 4)
    grams = analyzer("Children and young people were looked after well.")
    assert "children and young people" in grams
    assert "and young" not in grams and "well" not in grams
    vocab = np.array(["looked", "looked after children", "children", "ferry"])
    picked = ctfidf.top_phrases(np.array([1.0, 0.8, 0.9, 0.1]), vocab, 2)
    assert [p for p, _ in picked] == ["looked after children", "ferry"]


def test_top_phrases_break_score_ties_by_phrase():
    vocab = np.array(["ferry", "carers", "pupils", "police"])
    picked = ctfidf.top_phrases(np.array([0.5, 0.5, 0.9, -np.inf]), vocab, 3)
    assert picked == [("pupils", 0.9), ("carers", 0.5), ("ferry", 0.5)]


def test_k_is_chosen_on_a_sample_of_a_large_corpus():
    segments, x = make_corpus(per_topic=60)
    x = themes._normalise(x)
    params = {**themes.DEFAULTS, **PARAMS}
    whole = themes.choose_k(x, {**params, "k_sample": 0})
    sampled = themes.choose_k(x, {**params, "k_sample": 80})
    assert whole.k == sampled.k == 4
    assert not whole.sampled and sampled.sampled
    assert whole.silhouette != sampled.silhouette  # scored on different points
    assert len(whole.labels) == len(x) and len(sampled.labels) == 80
    # A sample larger than the corpus is the corpus.
    larger = themes.choose_k(x, {**params, "k_sample": 10_000})
    assert larger.silhouette == whole.silhouette and not larger.sampled
    # Too small a sample for the candidates falls back to k_min, never crashes.
    assert themes.choose_k(x, {**params, "k_min": 2, "k_sample": 2}).k == 2


def test_a_sample_s_clustering_is_refined_on_the_whole_corpus():
    segments, x = make_corpus(per_topic=60)
    x = themes._normalise(x)
    topic = np.repeat(np.arange(len(TOPICS)), 60)
    labels, centroids, choice = themes.cluster(x, {**themes.DEFAULTS, **PARAMS, "k_sample": 80})
    assert choice.sampled and len(labels) == len(x) and centroids.shape == (4, DIM)
    # Every topic is one theme and every theme one topic.
    assert {(t, lab) for t, lab in zip(topic, labels, strict=True)} == \
        {(t, labels[topic == t][0]) for t in range(4)}
    assert len(set(labels.tolist())) == 4
    # Unsampled, the clustering made while choosing k is the final one.
    whole, _, choice = themes.cluster(x, {**themes.DEFAULTS, **PARAMS, "k_sample": 0})
    assert not choice.sampled and np.array_equal(whole, choice.labels)
    assert np.array_equal(whole, themes._kmeans(x, 4, 0, themes.DEFAULTS["n_init"])[0])


def test_run_writes_outputs(tmp_path):
    segments, x = make_corpus()
    seg_path = tmp_path / "segments.jsonl"
    seg_path.write_text("".join(json.dumps(s) + "\n" for s in segments))
    emb_path = tmp_path / "embeddings.npz"
    np.savez(emb_path, keys=np.array([text_hash(s["text"]) for s in segments], dtype="U40"),
             vectors=x)
    out = tmp_path / "themes"
    themes.run(seg_path, emb_path, out, PARAMS, metrics_path=tmp_path / "m.json")
    data = json.loads((out / "themes.json").read_text())
    assert data["n_themes"] == 4 and "assignment" not in data
    for t in data["themes"]:
        assert {"id", "label", "key_phrases", "size", "representative"} <= set(t)
    rows = [json.loads(line) for line in (out / "segment_themes.jsonl").read_text().splitlines()]
    assert [r["segment_id"] for r in rows] == [s["segment_id"] for s in segments]
    assert json.loads((tmp_path / "m.json").read_text())["n_themes"] == 4
    with pytest.raises(InputError, match="embedding cache not found"):
        themes.run(seg_path, tmp_path / "missing.npz", out, PARAMS)
    seg_path.write_text(json.dumps({"segment_id": "x", "text": "t"}) + "\n")
    with pytest.raises(InputError, match="row 1 lacks partnership"):
        themes.run(seg_path, emb_path, out, PARAMS)


def test_small_and_empty_inputs():
    assert themes.build_themes([], np.zeros((0, DIM)), PARAMS)["n_themes"] == 0
    segments, x = make_corpus(per_topic=1)
    result = themes.build_themes(segments, x, {"k_min": 8, "k_max": 20})
    assert 1 <= result["n_themes"] <= len(segments)
    with pytest.raises(InputError, match="unknown parameter themes.n_topics"):
        themes.build_themes(segments, x, {"n_topics": 3})
