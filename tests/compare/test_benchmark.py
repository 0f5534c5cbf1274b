"""Benchmark stage: per-QI scores and intervals, focus verdicts, peers, grades, reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.compare import benchmark as bm
from pipeline.compare import grade_predictor as gp
from pipeline.compare import intervals as iv
from pipeline.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
FOCUS = "Avonford"
# partnership -> QI -> (positive, negative, mixed) counts. The focus is clearly better than
# every peer on 5.1, clearly worse on 6.4, like them on 2.1, and thin on 9.2.
PROFILE = {
    "Avonford": {"5.1": (18, 2, 0), "6.4": (2, 16, 2), "2.1": (9, 5, 2), "9.2": (2, 0, 0),
                 "1.1": (6, 4, 0), "2.2": (7, 3, 0)},
    "Brackenmuir": {"5.1": (6, 12, 2), "6.4": (14, 4, 2), "2.1": (10, 5, 1), "9.2": (8, 2, 0),
                    "1.1": (8, 2, 0), "2.2": (8, 2, 0)},
    "Corriedale": {"5.1": (7, 11, 2), "6.4": (13, 5, 2), "2.1": (9, 6, 1), "9.2": (6, 4, 0),
                   "1.1": (4, 6, 0), "2.2": (5, 5, 0)},
    "Drumlee": {"5.1": (5, 13, 2), "6.4": (15, 3, 2), "2.1": (8, 6, 2), "9.2": (3, 7, 0),
                "1.1": (2, 8, 0), "2.2": (3, 7, 0)},
    "Eskbank": {"5.1": (8, 10, 2), "6.4": (12, 6, 2), "2.1": (11, 4, 1), "9.2": (9, 1, 0),
                "1.1": (9, 1, 0), "2.2": (9, 1, 0)},
    "Fintry": {"5.1": (6, 12, 2), "6.4": (13, 5, 2), "2.1": (9, 5, 2), "9.2": (5, 5, 0),
               "1.1": (5, 5, 0), "2.2": (6, 4, 0)},
}
GRADES = {
    "Avonford": {"9": "Good", "2.1": "Good", "2.2": "Good", "1.1": "Adequate"},
    "Brackenmuir": {"9": "Very good", "2.1": "Very good", "2.2": "Very good", "1.1": "Very good"},
    "Corriedale": {"9": "Good", "2.1": "Good", "2.2": "Adequate", "1.1": "Adequate"},
    "Drumlee": {"9": "Weak", "2.1": "Adequate", "2.2": "Weak", "1.1": "Weak"},
    "Eskbank": {"9": "Excellent", "2.1": "Very good", "2.2": "Very good", "1.1": "Very good"},
    "Fintry": {"9": "Adequate", "2.1": "Good", "2.2": "Good", "1.1": "Good"},
}
PARTS = ["q1", "q2", "q3", "q4", "q5"]


def make_segments(profile=PROFILE) -> list[dict]:
    segments = []
    for r, (name, cells) in enumerate(profile.items()):
        rid = f"r{r}"
        i = 0
        for qi, (pos, neg, mixed) in cells.items():
            labels = ["positive"] * pos + ["negative"] * neg + ["mixed"] * mixed
            for j, sentiment in enumerate(labels):
                segments.append({
                    "segment_id": f"{rid}-{i:03d}", "report_id": rid, "partnership": name,
                    "part": PARTS[i % 5], "kind": "key_message" if j < 2 else "body",
                    "subsection": "", "page": 3 + i // 10,
                    "text": f"Sentence {i} on {qi} that is {sentiment}.",
                    "qi": [qi], "qi_scores": {qi: 0.9}, "sentiment": sentiment,
                })
                i += 1
        # Context and appendix sentences: not scored on a QI / not used by the predictor.
        segments.append({"segment_id": f"{rid}-ctx", "report_id": rid, "partnership": name,
                         "part": "context", "kind": "context", "subsection": "", "page": 2,
                         "text": "The area has a population of many people.", "qi": ["none"],
                         "qi_scores": {"none": 1.0}, "sentiment": "neutral"})
        i += 1
    return segments


def make_reports() -> list[dict]:
    return [{"report_id": f"r{r}", "partnership": name, "title": f"Report {r}",
             "published": "2019-06", "programme": "2018-2020 care and protection",
             "grades": GRADES[name], "fictional": True}
            for r, name in enumerate(PROFILE)]


REFERENCE = [
    {"programme": "2018-2020 care and protection", "partnership": "Realtown", "published":
     "2019-01", "indicator": "2.1", "grade": "Very good", "source_url": "https://example.org/a"},
    {"programme": "2018-2020 care and protection", "partnership": "Othertown", "published":
     "2019-02", "indicator": "2.1", "grade": "Good", "source_url": "https://example.org/b"},
    {"programme": "2018-2020 care and protection", "partnership": "Othertown", "published":
     "2019-02", "indicator": "9", "grade": "Weak", "source_url": "https://example.org/b"},
    {"programme": "2012-2017 services for children and young people", "partnership":
     "Oldtown", "published": "", "indicator": "5.2 (Assessing and responding to risks and "
     "needs)", "grade": "Adequate", "source_url": "https://example.org/c"},
]


def build(params=None, focus=FOCUS, segments=None):
    segments = segments if segments is not None else make_segments()
    themes = {"themes": [], "params": {}}
    return bm.build_benchmark(segments, make_reports(), themes, REFERENCE, focus,
                              {"n_draws": 500, **(params or {})})


def comparison(result, qi):
    return next(c for c in result["focus"]["comparison"] if c["qi"] == qi)


def test_cell_scores_are_shares_and_net():
    result = build()
    focus_report = result["reports"][0]
    assert focus_report["partnership"] == FOCUS
    cell = focus_report["qi_scores"]["6.4"]
    assert cell["n"] == 20
    assert cell["positive"] == pytest.approx(0.1)
    assert cell["negative"] == pytest.approx(0.8)
    assert cell["mixed"] == pytest.approx(0.1)
    assert cell["net"] == pytest.approx((2 - 16) / 20)
    assert cell["lo"] <= cell["net"] <= cell["hi"]
    assert "none" not in focus_report["qi_scores"]


def test_posterior_is_seeded_and_unanimous_cells_are_not_certain():
    rng = lambda: np.random.default_rng([0, 1, 2])  # noqa: E731
    small = iv.net_draws(np.array([6, 4, 0]), 0.5, 2000, rng())
    again = iv.net_draws(np.array([6, 4, 0]), 0.5, 2000, rng())
    large = iv.net_draws(np.array([60, 40, 0]), 0.5, 2000, rng())
    assert np.array_equal(small, again)
    assert small.mean() == pytest.approx(0.18, abs=0.03)
    assert np.std(large) < np.std(small) / 2
    five = np.array([5, 0, 0])
    lo5, hi5 = iv.net_interval(five, iv.net_draws(five, 0.5, 4000, rng()), 0.95)
    many = np.array([300, 0, 0])
    lo300, hi300 = iv.net_interval(many, iv.net_draws(many, 0.5, 4000, rng()), 0.95)
    assert hi5 == hi300 == 1.0  # the observed side reaches the boundary
    assert lo5 < 0.5  # five out of five is not certainty...
    assert lo300 > 0.98  # ...three hundred out of three hundred is


def test_focus_verdicts_follow_the_evidence():
    result = build()
    assert comparison(result, "5.1")["verdict"] == "above"
    assert comparison(result, "5.1")["diff_lo"] > 0
    assert comparison(result, "5.1")["rank"] == comparison(result, "5.1")["rank_lo"] == 1
    assert comparison(result, "6.4")["verdict"] == "below"
    assert comparison(result, "6.4")["rank"] == comparison(result, "6.4")["rank_of"] == 6
    assert comparison(result, "6.4")["rank_hi"] == 6
    assert comparison(result, "2.1")["verdict"] == "similar"
    lo, hi = comparison(result, "2.1")["diff_lo"], comparison(result, "2.1")["diff_hi"]
    assert lo < 0 < hi
    assert result["focus"]["strongest"][0] == "5.1"
    assert result["focus"]["weakest"][0] == "6.4"


def test_thin_evidence_is_said_in_words():
    result = build()
    thin = comparison(result, "9.2")
    assert thin["thin"] is True and thin["verdict"] == "thin"
    assert "Too little evidence" in thin["note"] and "only 2 sentence" in thin["note"]
    assert thin["rank_lo"] <= thin["rank_hi"]  # ranked, with its uncertainty, but no verdict
    assert "9.2" not in result["focus"]["strongest"] + result["focus"]["weakest"]
    # A QI only peers talk about: no data for the focus, said so.
    profile = {k: dict(v) for k, v in PROFILE.items()}
    profile["Brackenmuir"]["7.1"] = (5, 5, 0)
    result = build(segments=make_segments(profile))
    missing = comparison(result, "7.1")
    assert missing["verdict"] == "no data" and "No sentence" in missing["note"]


def test_too_few_peers_gives_no_verdict():
    result = build({"min_peers": 6})
    assert {c["verdict"] for c in result["focus"]["comparison"]} == {"no comparison"}
    assert "too few" in comparison(result, "5.1")["note"]


def test_few_peers_make_a_weak_comparison_and_no_strongest_or_weakest():
    result = build({"min_peers_verdict": 6})
    clear_before = comparison(build(), "5.1")
    weak = comparison(result, "5.1")
    assert weak["verdict"] == "weak" and weak["weak"] is True
    assert "Weak comparison" in weak["note"] and "5 peers" in weak["note"]
    assert weak["diff_lo"] == clear_before["diff_lo"]  # same figures, no verdict
    assert result["focus"]["strongest"] == result["focus"]["weakest"] == []


def test_a_unanimous_thin_cell_is_not_called_a_clear_difference():
    """The issue's case: 5 of 5 positive against three scattered peers."""
    profile = {name: {"7.1": cells} for name, cells in [
        (FOCUS, (5, 0, 0)), ("Brackenmuir", (9, 1, 0)), ("Corriedale", (2, 7, 0)),
        ("Drumlee", (2, 7, 1))]}
    segments = make_segments({**{k: dict(v) for k, v in PROFILE.items()}, **profile})
    row = comparison(build({"min_peers_verdict": 3}, segments=segments), "7.1")
    assert row["focus"]["hi"] == 1.0 and row["focus"]["lo"] < 0.5
    assert row["verdict"] == "similar"  # three scattered peers: no clear difference
    assert row["rank_lo"] == 1 and row["rank_hi"] >= 2


def test_unknown_focus_lists_partnerships_present():
    with pytest.raises(InputError) as err:
        build(focus="Nowhere")
    message = str(err.value)
    assert "Nowhere" in message and "Avonford" in message and "Fintry" in message


def test_focus_match_forgives_case_and_spacing():
    assert build(focus="  avonFORD ")["focus"]["partnership"] == FOCUS


def test_nearest_peer_is_the_one_with_the_same_profile():
    profile = dict(PROFILE)
    profile["Twinford"] = PROFILE[FOCUS]
    segments = make_segments(profile)
    reports = make_reports() + [{"report_id": "r6", "partnership": "Twinford", "grades": {},
                                 "fictional": True}]
    result = bm.build_benchmark(segments, reports, {"themes": []}, [], FOCUS,
                                {"n_draws": 200})
    assert result["peers"][0]["partnership"] == "Twinford"
    assert result["peers"][0]["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert len(result["peers"]) == bm.DEFAULTS["n_peers"]


def test_grade_features_use_the_five_questions_only():
    segments = make_segments()
    base = gp.report_features([s for s in segments if s["report_id"] == "r1"],
                              gp.DEFAULT_GRADE_QIS, PARTS, 3.0)
    flipped = [dict(s) for s in segments if s["report_id"] == "r1"]
    for s in flipped:
        if s["part"] == "q1":
            s["part"] = "appendix1"
            s["sentiment"] = "negative"
    moved = gp.report_features(flipped, gp.DEFAULT_GRADE_QIS, PARTS, 3.0)
    untouched = gp.report_features(flipped, gp.DEFAULT_GRADE_QIS, PARTS + ["appendix1"], 3.0)
    assert moved != untouched  # appendix text would change the features if it were used
    assert moved["2.1"] != base["2.1"]  # and removing q1 sentences changes them
    assert set(base) == {"9", "2.1", "2.2", "1.1"}


def test_grade_predictor_probabilities_and_ordering():
    X = np.array([[-0.8, -0.5, 0.8], [-0.2, 0.0, 0.5], [0.3, 0.3, 0.3], [0.8, 0.6, 0.1],
                  [0.9, 0.8, 0.0], [-0.5, -0.3, 0.7]])
    y = np.array([2, 3, 4, 5, 6, 2])
    model = gp.GradePredictor(alpha=0.1).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (6, 6)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert model.sigma_ >= 0.5
    pred = model.predict(X)
    order = np.argsort(model.decision_function(X))
    assert np.all(np.diff(pred[order]) >= 0)  # grades rise with the regression score
    assert pred[4] > pred[0]  # more positive text, higher grade
    assert abs(pred - y).max() <= 1


def test_loro_evaluation_and_training_exclusions():
    result = build()
    ev = result["grade_predictor"]
    assert ev["available"] is True
    assert FOCUS in ev["excluded_partnerships"] and "Midlothian" in ev["excluded_partnerships"]
    assert "r0" not in ev["train_reports"] and len(ev["train_reports"]) == 5
    loro = ev["loro"]
    assert loro["n"] == 20 and loro["n_reports"] == 5
    for key in ("exact", "within_one", "majority_rate"):
        assert 0.0 <= loro[key] <= 1.0
    assert loro["within_one"] >= loro["exact"]
    assert "thin" in ev["note"] or "only" in ev["note"]
    focus_pred = result["reports"][0]["predicted_grades"]
    assert set(focus_pred) == {"9", "2.1", "2.2", "1.1"}
    assert focus_pred["2.1"]["how"] == "held out"
    assert 0 < focus_pred["2.1"]["confidence"] <= 1
    assert result["reports"][1]["predicted_grades"]["9"]["how"] == "leave-one-report-out"
    assert result["reports"][0]["official_grades"]["1.1"] == "Adequate"


def test_predictor_unavailable_with_too_few_graded_reports():
    reports = make_reports()
    for r in reports[2:]:
        r["grades"] = {}
    result = bm.build_benchmark(make_segments(), reports, {"themes": []}, [], FOCUS,
                                {"n_draws": 100})
    assert result["grade_predictor"]["available"] is False
    assert "3 needed" in result["grade_predictor"]["note"]


def test_agreement_metrics():
    metrics = gp.agreement([4, 4, 5, 3], [4, 5, 5, 1])
    assert metrics["exact"] == 0.5
    assert metrics["within_one"] == 0.75
    assert -1 <= metrics["qwk"] <= 1
    assert gp.quadratic_kappa([4, 5, 3], [4, 5, 3]) == 1.0


def test_reference_grouped_by_programme_focus_programme_first():
    ref = build()["reference"]
    programmes = [p["programme"] for p in ref["programmes"]]
    assert programmes[0] == "2018-2020 care and protection"
    first = ref["programmes"][0]
    assert first["same_as_focus"] and not ref["programmes"][1]["same_as_focus"]
    c21 = next(c for c in first["comparison"] if c["code"] == "2.1")
    assert (c21["focus_grade"], c21["higher"], c21["same"], c21["lower"]) == ("Good", 1, 1, 0)
    c9 = next(c for c in first["comparison"] if c["code"] == "9")
    assert (c9["higher"], c9["lower"]) == (0, 1)
    assert ref["programmes"][1]["comparison"] == []  # never compared across programmes
    assert ref["programmes"][1]["rows"][0]["code"] == "5.2"


def test_run_writes_benchmark_and_rejects_bad_reference(tmp_path):
    seg_path = tmp_path / "segments.jsonl"
    seg_path.write_text("".join(json.dumps(s) + "\n" for s in make_segments()))
    rep_path = tmp_path / "reports.jsonl"
    rep_path.write_text("".join(json.dumps(r) + "\n" for r in make_reports()))
    themes_path = tmp_path / "themes.json"
    themes_path.write_text(json.dumps({"themes": [], "params": {}}))
    ref_path = tmp_path / "ref.csv"
    ref_path.write_text("programme,partnership,published,indicator,grade,source_url\n"
                        "2018-2020 care and protection,Realtown,2019,2.1,Good,https://x\n")
    out = tmp_path / "out"
    bm.run(seg_path, rep_path, themes_path, ref_path, out, FOCUS,
           {"n_draws": 100, "calibration_trials": 20}, metrics_path=tmp_path / "metrics.json")
    data = json.loads((out / "benchmark.json").read_text())
    assert data["focus"]["partnership"] == FOCUS
    assert {"report_id", "partnership", "official_grades", "predicted_grades", "qi_scores",
            "theme_shares"} <= set(data["reports"][0])
    assert "grade_exact" in json.loads((tmp_path / "metrics.json").read_text())
    assert [c["n"] for c in data["calibration"]["coverage"]] == list(iv.SIZES)
    assert not list(out.glob(".*.tmp"))

    ref_path.write_text("programme,partnership,grade\nx,y,Good\n")
    with pytest.raises(InputError, match="missing column"):
        bm.run(seg_path, rep_path, themes_path, ref_path, out, FOCUS, {"n_draws": 100})
    ref_path.write_text("programme,partnership,published,indicator,grade,source_url\n")
    with pytest.raises(InputError, match="segments.jsonl.*Nowhere"):
        bm.run(seg_path, rep_path, themes_path, ref_path, out, "Nowhere",
               {"n_draws": 100, "calibration_trials": 20})


def test_unknown_param_is_rejected():
    with pytest.raises(InputError, match="n_bootstrap"):
        build({"n_bootstrap": 10})


def test_defaults_and_params_yaml_agree():
    """benchmark.DEFAULTS is the one place of defaults; params.yaml repeats them."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert params["compare"] == bm.DEFAULTS


def test_theme_figures_are_read_from_themes_json():
    themes = {"themes": [{"id": 0, "label": "Alpha"}, {"id": 1, "label": "Beta"}],
              "params": {"min_z": 2.5},
              "partnerships": {FOCUS: {"n": 3, "themes": {"0": {"n": 2, "share": 0.66667}}}},
              "distinctive": {FOCUS: {"themes": [{"theme": 1, "z": 3.0}],
                                      "themes_under": [{"theme": 0, "z": -2.6}],
                                      "phrases": [{"phrase": "x", "z": 4.0}]}}}
    result = bm.build_benchmark(make_segments(), make_reports(), themes, [], FOCUS,
                                {"n_draws": 100})
    assert result["reports"][0]["theme_shares"] == {"0": {"n": 2, "share": 0.66667}}
    assert result["focus"]["distinctive_themes"] == [{"theme": 1, "z": 3.0, "label": "Beta"}]
    assert result["focus"]["underrepresented_themes"][0]["label"] == "Alpha"
    assert result["focus"]["distinctive_phrases"] == [{"phrase": "x", "z": 4.0}]
    assert result["themes"]["min_z"] == 2.5


def test_grade_predictor_learns_from_out_of_report_readings():
    """Given out-of-report predictions, the predictor's training features come from them
    (what the classifier makes of an unseen report), not from the in-sample segments."""
    segments = make_segments()
    # Out-of-report readings: every labelled sentence of r1..r5 read one notch kinder.
    kinder = {"negative": "mixed", "mixed": "positive", "positive": "positive"}
    predictions = [{"report_id": s["report_id"], "part": s["part"], "kind": s["kind"],
                    "text": s["text"], "sentiment": s["sentiment"], "qi": s["qi"],
                    "predicted_sentiment": kinder.get(s["sentiment"], s["sentiment"]),
                    "predicted_qi": s["qi"]}
                   for s in segments if s["report_id"] != "r0" and s["part"] in PARTS]
    training = bm.out_of_report_segments(predictions)
    assert set(training) == {"r1", "r2", "r3", "r4", "r5"}
    plain = build()
    result = bm.build_benchmark(segments, make_reports(), {"themes": [], "params": {}},
                                REFERENCE, FOCUS, {"n_draws": 200}, training)
    ev = result["grade_predictor"]
    assert ev["learns_from"].startswith("out-of-report")
    assert ev["out_of_report_reports"] == ["r1", "r2", "r3", "r4", "r5"]
    learnt = result["reports"][1]["predicted_grades"]["9"]["features"]["overall_net"]
    assert learnt > plain["reports"][1]["predicted_grades"]["9"]["features"]["overall_net"]
    # The focus is still read from its own classified segments.
    assert result["reports"][0]["predicted_grades"]["9"]["features"] == \
        plain["reports"][0]["predicted_grades"]["9"]["features"]


def test_calibration_is_computed_once_per_parameters(tmp_path, monkeypatch):
    calls = []

    def fake(p):
        calls.append(p["prior"])
        return {"prior": p["prior"]}

    monkeypatch.setattr(bm.iv, "calibration", fake)
    p = bm.resolve("compare", bm.DEFAULTS, {})
    assert bm.cached_calibration(p, tmp_path) == {"prior": p["prior"]}
    assert bm.cached_calibration(p, tmp_path) == {"prior": p["prior"]}
    assert len(calls) == 1  # the second run read the cache
    other = {**p, "prior": 1.0}
    assert bm.cached_calibration(other, tmp_path) == {"prior": 1.0} and len(calls) == 2
    assert len(list(tmp_path.glob("*.json"))) == 1  # the unused entry was pruned
    assert bm.cached_calibration(p, None) == {"prior": p["prior"]} and len(calls) == 3
