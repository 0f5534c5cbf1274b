"""Benchmark one partnership against the rest of the corpus, indicator by indicator.

For each partnership and quality indicator (the segment's main QI; ``none``
skipped): segment counts, sentiment shares and a net score, ``(positive -
negative) / n`` with mixed and neutral counting 0, with a 95% interval from the
cell's Dirichlet posterior under a weak (Jeffreys) prior, so that five positive
sentences out of five do not read as certainty (see :mod:`pipeline.compare.intervals`
for the method and why it replaced the percentile bootstrap).

The focus partnership is then placed within the distribution of its peers per
QI, with its own uncertainty and theirs: "more/less positive than the peers"
means the interval of (focus - a typical peer) excludes 0, which holds against
both the sampling of sentences and the choice of peers. The rule needs evidence
on both sides (``min_segments`` sentences for the focus and for each peer
counted, ``min_peers`` peers to compare at all, ``min_peers_verdict`` to call a
difference); short of that the verdict says so (``thin``, ``no comparison``,
``weak``). The focus's rank among the peers comes with an interval from the same
posterior draws. Coverage and false-positive rate are checked by simulation at
the parameters in use and written beside the figures (``calibration``).

Theme shares and distinctive themes are the themes stage's own figures, read
from ``themes.json``, not recomputed.

Grades: the official ones read from each report beside ones predicted from
the five inspection questions only (see :mod:`pipeline.grade_predictor`),
evaluated leave-one-report-out. The focus partnership, and any partnership in
``predictor_exclude`` (Midlothian: kept for evaluation, never trained on), is
never in the predictor's training set; every predicted grade is out-of-sample.
"""

from __future__ import annotations

import csv
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.compare import grade_predictor as gp
from pipeline.compare import intervals as iv
from pipeline.core.cache import ReportCache, code_key, key_of
from pipeline.core.errors import InputError
from pipeline.core.io import read_json, read_jsonl, write_json
from pipeline.core.params import resolve
from pipeline.core.schema import FRAMEWORK, SENTIMENTS

QI_TITLES: dict[str, str] = dict(FRAMEWORK.indicators)
GRADED_TITLES: dict[str, str] = {code: g["title"] for code, g in FRAMEWORK.graded.items()}

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "n_draws": 2000,  # posterior draws per cell
    "ci": 0.95,
    "prior": 0.5,  # Dirichlet pseudo-sentences per class (positive, negative, other): Jeffreys
    "min_segments": 5,  # fewer segments in a cell: the evidence is called thin
    "min_peers": 2,  # fewer peers with enough segments: no comparison at all
    "min_peers_verdict": 5,  # fewer: the comparison is weak, no more/less positive verdict
    "calibration_trials": 300,  # simulated corpora per peer count in the false-positive check
    "n_peers": 3,  # nearest peers listed
    "profile_shrink": 3.0,  # pseudo-segments pulling a thin QI toward the corpus mean
    "grade_shrink": 3.0,  # same, toward the report's own net, for the grade features
    "ridge_alpha": 1.0,
    "min_sigma": 0.5,
    "predictor_parts": ["q1", "q2", "q3", "q4", "q5"],
    "predictor_exclude": ["Midlothian"],
    "grade_qis": dict(gp.DEFAULT_GRADE_QIS),
    "n_evidence": 3,  # evidence sentences per side per QI in the report
}


def qi_sort_key(code: str) -> tuple:
    try:
        return (0, *(int(x) for x in str(code).split(".")))
    except ValueError:
        return (1, str(code))


def main_qi(seg: dict) -> str:
    qi = seg.get("qi") or ["none"]
    if isinstance(qi, str):
        qi = [q.strip() for q in qi.split(",")]
    return str(qi[0]) if qi else "none"


def display_name(name: str, fictional: bool) -> str:
    return f"{name} (fictional)" if fictional else name


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def resolve_focus(focus: str, partnerships: list[str]) -> str:
    """The corpus spelling of ``focus`` (case and spacing forgiven)."""
    present = ", ".join(partnerships) or "none"
    if not focus or not str(focus).strip():
        raise InputError(None, f"no focus partnership given (partnerships present: {present})")
    wanted = " ".join(focus.lower().split())
    for name in partnerships:
        if " ".join(name.lower().split()) == wanted:
            return name
    raise InputError(None, f"focus partnership '{focus}' is not in the corpus "
                           f"(partnerships present: {present})")


# --- per partnership x QI -------------------------------------------------------------

def cell_counts(segments: list[dict]) -> dict[str, dict[str, dict[str, int]]]:
    """partnership -> main QI -> sentiment counts (QI ``none`` left out)."""
    out: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(SENTIMENTS, 0)))
    for seg in segments:
        qi = main_qi(seg)
        if qi == "none":
            continue
        sentiment = seg.get("sentiment") if seg.get("sentiment") in SENTIMENTS else "neutral"
        out[seg["partnership"]][qi][sentiment] += 1
    return out


def _counts3(c: dict[str, int]) -> np.ndarray:
    """(positive, negative, other) of a cell: mixed and neutral both count 0 in the net."""
    return np.array([c["positive"], c["negative"], c["mixed"] + c["neutral"]])


def _cell_rng(p: dict[str, Any], *keys: str) -> np.random.Generator:
    # Seeded per cell, so adding a report never changes another cell's draws.
    return np.random.default_rng([p["seed"], *(zlib.crc32(k.encode()) for k in keys)])


def qi_scores(
    counts: dict[str, dict[str, dict[str, int]]], qis: list[str], p: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], np.ndarray]]:
    """Per partnership and QI: shares, net, its posterior interval; and the posterior draws."""
    scores: dict[str, dict[str, Any]] = {}
    draws: dict[tuple[str, str], np.ndarray] = {}
    for name in sorted(counts):
        scores[name] = {}
        for qi in qis:
            c = counts[name].get(qi)
            if not c or sum(c.values()) == 0:
                continue
            n = sum(c.values())
            c3 = _counts3(c)
            cell_draws = iv.net_draws(c3, p["prior"], p["n_draws"], _cell_rng(p, name, qi))
            draws[(name, qi)] = cell_draws
            lo, hi = iv.net_interval(c3, cell_draws, p["ci"])
            scores[name][qi] = {
                "n": n,
                **{s: _r(c[s] / n) for s in SENTIMENTS},
                "net": _r((c["positive"] - c["negative"]) / n),
                "lo": _r(float(lo)),
                "hi": _r(float(hi)),
                "thin": n < p["min_segments"],
            }
    return scores, draws


def _quantiles(x: np.ndarray, ci: float) -> tuple[float, float]:
    tail = (1 - ci) / 2
    lo, hi = np.quantile(x, [tail, 1 - tail])
    return float(lo), float(hi)


def _rank_range(ranks: np.ndarray, ci: float) -> tuple[int, int]:
    """Ranks the focus takes in the central ``ci`` of draws (whole ranks)."""
    tail = (1 - ci) / 2
    lo, hi = np.quantile(ranks, [tail, 1 - tail], method="inverted_cdf")
    return int(lo), int(hi)


def _rank_words(row: dict[str, Any]) -> str:
    if row["rank_lo"] == row["rank_hi"]:
        return f"rank {row['rank_lo']} of {row['rank_of']}"
    return f"rank {row['rank_lo']}-{row['rank_hi']} of {row['rank_of']}"


def compare_focus(
    focus: str, scores: dict[str, dict[str, Any]], draws: dict[tuple[str, str], np.ndarray],
    qis: list[str], p: dict[str, Any],
) -> list[dict[str, Any]]:
    """Per QI: the focus placed among peers with enough segments, in numbers and words."""
    rows = []
    pct = round(p["ci"] * 100)
    for qi in qis:
        mine = scores.get(focus, {}).get(qi)
        peers = [name for name in sorted(scores) if name != focus
                 and qi in scores[name] and scores[name][qi]["n"] >= p["min_segments"]]
        k = len(peers)
        row: dict[str, Any] = {
            "qi": qi, "title": QI_TITLES.get(qi, qi), "focus": mine,
            "n_peers": k,
            "peer_median": _r(float(np.median([scores[n][qi]["net"] for n in peers])))
            if peers else None,
            "diff": None, "diff_lo": None, "diff_hi": None, "typical_lo": None,
            "typical_hi": None, "rank": None, "rank_lo": None, "rank_hi": None,
            "rank_of": None, "thin": True, "weak": k < p["min_peers_verdict"],
        }
        if mine is None:
            row.update(verdict="no data",
                       note=f"No sentence of {focus}'s report speaks mainly to this indicator.")
            rows.append(row)
            continue
        row["thin"] = mine["n"] < p["min_segments"]
        gated = iv.gate(mine["n"], k, p)
        if gated == "no comparison":
            have = "No peer has" if not peers else f"Only {k} peer(s) have"
            row.update(verdict=gated, weak=True, note=(
                f"{have} {p['min_segments']} or more sentences on this indicator: too few "
                "to compare against."))
            rows.append(row)
            continue
        mine_draws = draws[(focus, qi)]
        peer_draws = np.stack([draws[(name, qi)] for name in peers])
        typical = iv.typical_peer_draws(peer_draws, _cell_rng(p, focus, qi, "typical peer"))
        lo, hi = _quantiles(mine_draws - typical, p["ci"])
        t_lo, t_hi = _quantiles(typical, p["ci"])
        r_lo, r_hi = _rank_range(iv.rank_draws(mine_draws, peer_draws), p["ci"])
        nets = {name: scores[name][qi]["net"] for name in peers}
        row.update(
            diff=_r(mine["net"] - row["peer_median"]), diff_lo=_r(lo), diff_hi=_r(hi),
            typical_lo=_r(t_lo), typical_hi=_r(t_hi),
            rank=1 + sum(v > mine["net"] for v in nets.values()),
            rank_lo=r_lo, rank_hi=r_hi, rank_of=k + 1,
        )
        row["verdict"] = gated or str(iv.verdict(np.array(lo), np.array(hi)))
        row["note"] = _note(row, mine, p, pct)
        rows.append(row)
    return rows


def _note(row: dict[str, Any], mine: dict[str, Any], p: dict[str, Any], pct: int) -> str:
    """The verdict in words, with the figures behind it."""
    net, median, k = mine["net"], row["peer_median"], row["n_peers"]
    place = (f"net {net:+.2f} ({mine['n']} sentences, {pct}% interval {mine['lo']:+.2f} to "
             f"{mine['hi']:+.2f}) against a peer median of {median:+.2f} over {k} peers; "
             f"{_rank_words(row)}")
    typical = (f"a typical peer would score {row['typical_lo']:+.2f} to {row['typical_hi']:+.2f}, "
               f"and the difference from one is {row['diff_lo']:+.2f} to {row['diff_hi']:+.2f}")
    verdict = row["verdict"]
    if verdict == "thin":
        return (f"Too little evidence to compare: only {mine['n']} sentence(s), fewer than "
                f"{p['min_segments']}; {place}. Read this as indicative only.")
    if verdict == "weak":
        return (f"Weak comparison: only {k} peers have {p['min_segments']} or more sentences on "
                f"this indicator ({p['min_peers_verdict']} needed to call a difference); "
                f"{place}.")
    if verdict == "above":
        return (f"More positive than its peers: {place}; {typical}, above zero even allowing "
                "for the spread among peers and the sentences behind each score.")
    if verdict == "below":
        return (f"Less positive than its peers: {place}; {typical}, below zero even allowing "
                "for the spread among peers and the sentences behind each score.")
    return (f"Within the range of its peers: {place}; {typical}, which includes zero.")


# --- nearest peers --------------------------------------------------------------------

def qi_profiles(
    counts: dict[str, dict[str, dict[str, int]]], qis: list[str], shrink: float
) -> dict[str, np.ndarray]:
    """Net score per QI, each cell shrunk toward the corpus-wide net of that QI.

    Shrinking keeps a QI with one segment from deciding who looks alike, and
    gives a value to QIs a report never mentions (the corpus mean).
    """
    names = sorted(counts)
    corpus_mean = []
    for qi in qis:
        pos = sum(counts[n].get(qi, {}).get("positive", 0) for n in names)
        neg = sum(counts[n].get(qi, {}).get("negative", 0) for n in names)
        tot = sum(sum(counts[n].get(qi, {}).values()) for n in names)
        corpus_mean.append((pos - neg) / tot if tot else 0.0)
    out = {}
    for name in names:
        vec = []
        for qi, mean in zip(qis, corpus_mean, strict=True):
            c = counts[name].get(qi, dict.fromkeys(SENTIMENTS, 0))
            n = sum(c.values())
            vec.append((c["positive"] - c["negative"] + shrink * mean) / (n + shrink)
                       if n + shrink > 0 else mean)
        out[name] = np.array(vec)
    return out


def nearest_peers(
    focus: str, profiles: dict[str, np.ndarray], n_peers: int
) -> list[dict[str, Any]]:
    """Peers ranked by cosine similarity of profiles centred on the corpus mean.

    Centring matters: raw net scores are mostly positive everywhere, so raw
    cosine is near 1 for everyone; centred, it compares who is above or below
    the corpus on the same indicators.
    """
    if focus not in profiles or len(profiles) < 2:
        return []
    names = sorted(profiles)
    centre = np.mean([profiles[n] for n in names], axis=0)
    f = profiles[focus] - centre
    rows = []
    for name in names:
        if name == focus:
            continue
        v = profiles[name] - centre
        denom = np.linalg.norm(f) * np.linalg.norm(v)
        cosine = float(f @ v / denom) if denom > 0 else 0.0
        rows.append({"partnership": name, "cosine": _r(cosine),
                     "distance": _r(float(np.linalg.norm(profiles[focus] - profiles[name])))})
    rows.sort(key=lambda r: (-r["cosine"], r["distance"], r["partnership"]))
    return rows[:n_peers]


# --- grades ---------------------------------------------------------------------------

def official_grades(report: dict) -> dict[str, str]:
    """The report's grades that are on the six-point scale, canonically spelled."""
    out = {}
    for code, name in (report.get("grades") or {}).items():
        value = gp.grade_value(name)
        if value is not None:
            out[str(code)] = gp.grade_name(value)
    return out


def out_of_report_segments(predictions: list[dict]) -> dict[str, list[dict]]:
    """Labelled sentences read as the classifier reads an unseen report, per report.

    ``predictions`` are the evaluate stage's rows (``--predictions``): each labelled
    sentence with the sentiment and QI the models gave it while its report was held
    out. Why the grade predictor learns from these and not from the classify stage's
    output: the classifier was trained on these very reports, so its in-sample labels
    are nearly the annotators' own, far cleaner than what it makes of a report it has
    not seen (polite shortfalls read as praise). A predictor fitted to clean labels
    over-grades exactly the reports it is used on.
    """
    out: dict[str, list[dict]] = defaultdict(list)
    for row in predictions:
        if not row.get("report_id") or "predicted_sentiment" not in row:
            continue
        out[row["report_id"]].append({
            "report_id": row["report_id"], "part": row.get("part"), "kind": row.get("kind"),
            "sentiment": row["predicted_sentiment"], "qi": row.get("predicted_qi") or ["none"]})
    return dict(out)


def grade_section(
    segments: list[dict], reports: list[dict], focus: str, p: dict[str, Any],
    training: dict[str, list[dict]] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Predicted grades per report, and the predictor's leave-one-report-out evaluation.

    ``training`` (see :func:`out_of_report_segments`) replaces, for the reports it
    holds, the classified segments the predictor learns from and is evaluated on.
    """
    by_report: dict[str, list[dict]] = defaultdict(list)
    for seg in segments:
        by_report[seg.get("report_id")].append(seg)
    training = training or {}
    grade_qis = p["grade_qis"]

    def feats(rid: str, learn: bool) -> dict[str, list[float]]:
        rows = training[rid] if learn and rid in training else by_report.get(rid, [])
        return gp.report_features(rows, grade_qis, p["predictor_parts"], p["grade_shrink"])

    features = {r["report_id"]: feats(r["report_id"], learn=True) for r in reports}
    excluded = {" ".join(x.lower().split()) for x in [focus, *p["predictor_exclude"]]}
    train_rows: list[tuple[str, str, list[float], int]] = []
    for r in reports:
        if " ".join(r["partnership"].lower().split()) in excluded:
            continue
        if not by_report.get(r["report_id"]) and r["report_id"] not in training:
            continue  # no text: nothing to learn from
        for code, name in official_grades(r).items():
            if code in grade_qis:
                train_rows.append((r["report_id"], code, features[r["report_id"]][code],
                                   gp.grade_value(name)))
    train_reports = sorted({row[0] for row in train_rows})
    evaluation: dict[str, Any] = {
        "features": list(gp.FEATURES),
        "parts": list(p["predictor_parts"]),
        "train_reports": train_reports,
        "excluded_partnerships": sorted({focus, *p["predictor_exclude"]}),
        "model": f"ridge regression on the six-point scale (alpha {p['ridge_alpha']}), "
                 "Gaussian spread from leave-one-out residuals",
        "learns_from": "out-of-report classifications of the labelled reports"
        if training else "the classified segments",
        "out_of_report_reports": sorted(set(training) & {r["report_id"] for r in reports}),
    }
    predicted: dict[str, dict[str, Any]] = {r["report_id"]: {} for r in reports}
    if len(train_reports) < 3:
        evaluation.update(available=False, note=(
            f"Only {len(train_reports)} graded report(s) to learn from (3 needed): no grades "
            "predicted."))
        return predicted, evaluation

    X = np.array([row[2] for row in train_rows])
    y = np.array([row[3] for row in train_rows])
    groups = [row[0] for row in train_rows]
    loro = gp.leave_one_report_out(X, y, groups, p["ridge_alpha"], p["min_sigma"])
    for (rid, code, feats, _), proba in zip(train_rows, loro["proba"], strict=True):
        predicted[rid][code] = _prediction(proba, feats, "leave-one-report-out")
    model = gp.GradePredictor(p["ridge_alpha"], p["min_sigma"]).fit(X, y)
    for r in reports:
        rid = r["report_id"]
        if rid in train_reports or not by_report.get(rid):
            continue
        for code in grade_qis:
            proba = model.predict_proba(np.array([features[rid][code]]))[0]
            predicted[rid][code] = _prediction(proba, features[rid][code], "held out")
    metrics = loro["metrics"]
    evaluation.update(
        available=True,
        loro=metrics,
        sigma=_r(model.sigma_),
        coefficients={f: _r(c) for f, c in zip(gp.FEATURES, model.coef_, strict=True)},
        note=(f"Evaluated on only {metrics['n_reports']} reports x {len(grade_qis)} grades "
              f"({metrics['n']} grades): figures this thin can move a lot with one report; "
              "read them as a sanity check, not as accuracy."),
    )
    return predicted, evaluation


def _prediction(proba: np.ndarray, feats: list[float], how: str) -> dict[str, Any]:
    best = int(np.argmax(proba))
    return {
        "grade": gp.SCALE[best],
        "confidence": _r(float(proba[best]), 3),
        "probabilities": {g: _r(float(x), 3) for g, x in zip(gp.SCALE, proba, strict=True)},
        "features": {f: _r(v) for f, v in zip(gp.FEATURES, feats, strict=True)},
        "how": how,
    }


# --- reference grades of real partnerships --------------------------------------------

def _indicator_code(indicator: str) -> str:
    return str(indicator).split(" ", 1)[0].strip()


def reference_section(
    rows: list[dict], focus: str, focus_programme: str | None, focus_grades: dict[str, str]
) -> dict[str, Any]:
    """Published grades of real partnerships, grouped by programme, focus set against peers
    only within its own programme (other programmes grade other things)."""
    focus_key = " ".join(focus.lower().split())
    programmes: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        code = _indicator_code(row.get("indicator", ""))
        value = gp.grade_value(row.get("grade"))
        programmes[row.get("programme", "").strip()].append({
            "partnership": row.get("partnership", "").strip(),
            "published": (row.get("published") or "").strip() or None,
            "indicator": row.get("indicator", "").strip(),
            "code": code,
            "grade": gp.grade_name(value) if value else row.get("grade"),
            "value": value,
            "source_url": (row.get("source_url") or "").strip() or None,
            "is_focus": " ".join(row.get("partnership", "").lower().split()) == focus_key,
        })
    out = []
    order = sorted(programmes, key=lambda prog: (prog != focus_programme, prog))
    for prog in order:
        prog_rows = sorted(programmes[prog], key=lambda r: (not r["is_focus"], r["partnership"],
                                                            qi_sort_key(r["code"])))
        entry: dict[str, Any] = {
            "programme": prog,
            "same_as_focus": prog == focus_programme,
            "rows": prog_rows,
            "comparison": [],
        }
        if prog == focus_programme:
            mine = {r["code"]: r for r in prog_rows if r["is_focus"]}
            for code, grade in focus_grades.items():
                if code not in mine:
                    mine[code] = {"grade": grade, "value": gp.grade_value(grade)}
            codes = sorted({r["code"] for r in prog_rows} | set(mine), key=qi_sort_key)
            for code in codes:
                focus_row = mine.get(code)
                peers = [r for r in prog_rows if r["code"] == code and not r["is_focus"]
                         and r["value"]]
                if not focus_row or not focus_row.get("value"):
                    continue
                fv = focus_row["value"]
                entry["comparison"].append({
                    "code": code,
                    "title": GRADED_TITLES.get(code, QI_TITLES.get(code, code)),
                    "focus_grade": focus_row["grade"],
                    "n_peers": len(peers),
                    "higher": sum(r["value"] > fv for r in peers),
                    "same": sum(r["value"] == fv for r in peers),
                    "lower": sum(r["value"] < fv for r in peers),
                    "peers": [{"partnership": r["partnership"], "grade": r["grade"]}
                              for r in peers],
                })
        out.append(entry)
    return {
        "focus_programme": focus_programme,
        "programmes": out,
        "note": ("Grades published for real partnerships, gathered from public pages. They are "
                 "not part of the analysed corpus. Programmes grade different things: 2012-2017 "
                 "graded nine QIs of a different framework, 2021-2025 grades only 2.1 about "
                 "children at risk of harm; compare grades only within a programme."),
    }


# --- the whole benchmark --------------------------------------------------------------

def build_benchmark(
    segments: list[dict],
    reports: list[dict],
    themes: dict[str, Any],
    reference_rows: list[dict],
    focus: str,
    params: dict[str, Any] | None = None,
    training: dict[str, list[dict]] | None = None,
) -> dict[str, Any]:
    """Everything the comparison report shows, as one JSON-ready dict."""
    p = resolve("compare", DEFAULTS, params)
    names = sorted({s["partnership"] for s in segments})
    focus_name = resolve_focus(focus, names)
    fictional: dict[str, bool] = {}
    report_ids: dict[str, list[str]] = defaultdict(list)
    for r in reports:
        fictional[r["partnership"]] = fictional.get(r["partnership"], False) or bool(
            r.get("fictional"))
        report_ids[r["partnership"]].append(r["report_id"])
    for seg in segments:
        if seg.get("report_id") not in report_ids[seg["partnership"]]:
            report_ids[seg["partnership"]].append(seg.get("report_id"))

    counts = cell_counts(segments)
    qis = sorted({qi for c in counts.values() for qi in c}, key=qi_sort_key)
    scores, draws = qi_scores(counts, qis, p)
    comparison = compare_focus(focus_name, scores, draws, qis, p)
    peers = nearest_peers(focus_name, qi_profiles(counts, qis, p["profile_shrink"]),
                          p["n_peers"])
    for row in peers:
        row["fictional"] = fictional.get(row["partnership"], False)

    # The themes stage's own figures (same segments, same assignment): read, not recomputed.
    shares = themes.get("partnerships", {})
    n_themes = len(themes.get("themes", []))
    labels = {t["id"]: t["label"] for t in themes.get("themes", [])}
    mine_themes = themes.get("distinctive", {}).get(focus_name, {})
    distinctive = [{**row, "label": labels.get(row["theme"], str(row["theme"]))}
                   for row in mine_themes.get("themes", [])]
    under = [{**row, "label": labels.get(row["theme"], str(row["theme"]))}
             for row in mine_themes.get("themes_under", [])]
    n_segments = Counter(s["partnership"] for s in segments)

    predicted, evaluation = grade_section(segments, reports, focus_name, p, training)
    seg_reports = {s.get("report_id") for s in segments}
    report_rows = []
    for r in sorted(reports, key=lambda r: (r["partnership"] != focus_name, r["partnership"],
                                            r["report_id"])):
        name = r["partnership"]
        report_rows.append({
            "report_id": r["report_id"],
            "partnership": name,
            "display_name": display_name(name, fictional.get(name, False)),
            "fictional": bool(r.get("fictional")),
            "published": r.get("published"),
            "programme": r.get("programme"),
            "title": r.get("title"),
            "in_corpus": r["report_id"] in seg_reports,
            "official_grades": official_grades(r),
            "predicted_grades": predicted.get(r["report_id"], {}),
            "qi_scores": scores.get(name, {}),
            "theme_shares": shares.get(name, {}).get("themes", {}),
            "n_segments": n_segments.get(name, 0),
        })

    focus_reports = [r for r in reports if r["partnership"] == focus_name]
    focus_programme = next((r.get("programme") for r in focus_reports if r.get("programme")),
                           None)
    focus_grades = official_grades(focus_reports[0]) if focus_reports else {}
    # Only differences that pass the rule are named as strongest or weakest.
    strongest = sorted((c for c in comparison if c["verdict"] == "above"),
                       key=lambda c: (-c["diff"], qi_sort_key(c["qi"])))
    weakest = sorted((c for c in comparison if c["verdict"] == "below"),
                     key=lambda c: (c["diff"], qi_sort_key(c["qi"])))
    return {
        "focus": {
            "partnership": focus_name,
            "display_name": display_name(focus_name, fictional.get(focus_name, False)),
            "fictional": fictional.get(focus_name, False),
            "report_ids": report_ids.get(focus_name, []),
            "programme": focus_programme,
            "comparison": comparison,
            "strongest": [c["qi"] for c in strongest][:3],
            "weakest": [c["qi"] for c in weakest][:3],
            "distinctive_themes": distinctive,
            "underrepresented_themes": under,
            "distinctive_phrases": mine_themes.get("phrases", []),
        },
        "partnerships": {
            name: {"fictional": fictional.get(name, False),
                   "display_name": display_name(name, fictional.get(name, False)),
                   "report_ids": report_ids.get(name, [])}
            for name in sorted(set(names) | set(fictional))
        },
        "qis": [{"qi": qi, "title": QI_TITLES.get(qi, qi)} for qi in qis],
        "reports": report_rows,
        "peers": peers,
        "grade_predictor": evaluation,
        "graded_titles": {k: GRADED_TITLES.get(k, k) for k in p["grade_qis"]},
        "reference": reference_section(reference_rows, focus_name, focus_programme,
                                       focus_grades),
        "themes": {"n_themes": n_themes, "outlier_share": themes.get("outlier_share"),
                   "min_z": themes.get("params", {}).get("min_z")},
        "params": p,
    }


def read_reference(path: str | Path) -> list[dict]:
    """Rows of ``official_evaluations.csv``; a missing column is an InputError."""
    path = Path(path)
    needed = {"programme", "partnership", "published", "indicator", "grade", "source_url"}
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = needed - set(reader.fieldnames or [])
            if missing:
                raise InputError(path, f"missing column(s): {', '.join(sorted(missing))}")
            return list(reader)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None


def cached_calibration(p: dict[str, Any], cache_dir: str | Path | None) -> dict[str, Any]:
    """The intervals' simulated coverage and false-positive rates at parameters ``p``.

    Why cached: the simulation depends on the parameters and the code only, not on
    the corpus, and it is the largest fixed cost of a compare run (about 6 s on two
    cores); adding a report to the corpus should not pay it again.
    """
    store = ReportCache(cache_dir)
    key = key_of("calibration", code_key(("compare",)), p)
    found = store.get(key)
    if found is None:
        found = iv.calibration(p)
        store.put(key, found)
    store.prune()
    return found


def run(
    segments_path: str | Path,
    reports_path: str | Path,
    themes_path: str | Path,
    reference_path: str | Path | None,
    out_dir: str | Path,
    focus: str,
    params: dict[str, Any] | None = None,
    metrics_path: str | Path | None = None,
    training_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Read the stage inputs, write ``out_dir/benchmark.json`` (and metrics if asked).

    ``training_path``: the evaluate stage's out-of-report predictions (see
    :func:`out_of_report_segments`), for the grade predictor to learn from.
    """
    segments = read_jsonl(segments_path)
    reports = read_jsonl(reports_path)
    for lineno, r in enumerate(reports, start=1):
        missing = [k for k in ("report_id", "partnership") if not r.get(k)]
        if missing:
            raise InputError(reports_path, f"row {lineno} lacks {', '.join(missing)}")
    for lineno, s in enumerate(segments, start=1):
        if not s.get("partnership"):
            raise InputError(segments_path, f"row {lineno} lacks partnership")
    themes = read_json(themes_path)
    reference = read_reference(reference_path) if reference_path else []
    p = resolve("compare", DEFAULTS, params)
    training = out_of_report_segments(read_jsonl(training_path)) if training_path else None
    try:
        result = build_benchmark(segments, reports, themes, reference, focus, p, training)
    except InputError as err:
        raise InputError(segments_path, err.reason) from None
    # Measured at the parameters in use, so the report's method section states what holds.
    result["calibration"] = cached_calibration(p, cache_dir)
    write_json(Path(out_dir) / "benchmark.json", result)
    if metrics_path:
        loro = result["grade_predictor"].get("loro") or {}
        write_json(metrics_path, {
            "grade_exact": loro.get("exact"),
            "grade_within_one": loro.get("within_one"),
            "grade_qwk": loro.get("qwk"),
            "grade_majority_rate": loro.get("majority_rate"),
            "focus_qis_above": sum(c["verdict"] == "above" for c in
                                   result["focus"]["comparison"]),
            "focus_qis_below": sum(c["verdict"] == "below" for c in
                                   result["focus"]["comparison"]),
        })
    return result
