"""The comparison report: one self-contained HTML page and its Markdown twin.

Both are rendered from one context built here, so they always say the same
thing. The HTML carries its charts as inline SVG and its styles inline: no
script, font or stylesheet is fetched, so it opens offline and can be mailed
as one file. Every piece of report text goes through Jinja2 autoescaping
(HTML) or :func:`md_escape` (Markdown).

Beside the pages, the plot data (``qi_profile.csv``, ``theme_shares.csv``,
``grades.csv``) and PNG images (``qi_profile.png``, ``theme_shares.png``) are
written for ``dvc plots`` and for the Markdown file's image links.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pipeline.compare.benchmark import main_qi
from pipeline.core.errors import InputError
from pipeline.core.io import atomic_write, read_json, read_jsonl
from pipeline.report import charts

TEMPLATES = Path(__file__).parent / "templates"
KIND_ORDER = {"key_message": 0, "strength": 1, "priority": 1, "body": 2, "conclusion": 3,
              "rationale": 4, "context": 5}
KIND_LABEL = {"key_message": "key message", "strength": "summary strength",
              "priority": "priority area", "body": "", "conclusion": "conclusion",
              "rationale": "evaluation rationale", "context": "context"}
VERDICT_WORDS = {
    "above": "more positive than peers",
    "below": "less positive than peers",
    "similar": "within the range of peers",
    "weak": "weak comparison (too few peers to call a difference)",
    "no comparison": "too few peers to compare",
    "thin": "too little evidence to compare",
    "no data": "no evidence in the report",
}
SIMILAR_COSINE = 0.3  # below this, a "nearest" peer is not called alike in the summary
PLOT_FILES = ("qi_profile.csv", "theme_shares.csv", "grades.csv", "qi_profile.png",
              "theme_shares.png")


def md_escape(text: Any) -> str:
    """Escape Markdown (and inline HTML) syntax in report text; newlines become spaces."""
    text = " ".join(str(text).split())
    return re.sub(r"([\\`*_\[\]<>|~])", r"\\\1", text)


def _signed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def rank_words(c: dict[str, Any]) -> str | None:
    """'rank 1-3 of 7' (the ranks the focus takes in 95% of draws), or None."""
    if not c.get("rank_of") or c.get("rank_lo") is None:
        return None
    lo, hi = c["rank_lo"], c["rank_hi"]
    return f"rank {lo} of {c['rank_of']}" if lo == hi else f"rank {lo}-{hi} of {c['rank_of']}"


def _flags(c: dict[str, Any]) -> list[str]:
    """What the numbers cannot bear, in words, for the summary and the tables."""
    out = []
    if c.get("thin") and c.get("verdict") not in ("no data", "thin"):
        out.append("thin evidence")
    if c.get("weak") and c.get("verdict") not in ("no data", "no comparison", "weak"):
        out.append("weak comparison")
    return out


# --- context ----------------------------------------------------------------------------

class _Names:
    """Display names ("Glenarden (fictional)") for every partnership mentioned."""

    def __init__(self, benchmark: dict[str, Any]):
        self._names = {name: info.get("display_name", name)
                       for name, info in benchmark.get("partnerships", {}).items()}

    def __call__(self, name: str | None) -> str:
        return self._names.get(name or "", name or "unknown")


def _evidence(segs: list[dict], sentiments: tuple[str, ...], qi: str, n: int,
              names: _Names) -> list[dict[str, Any]]:
    """The ``n`` segments that best show the focus's case on one QI.

    Key messages and summary points first (the inspectors' own headline), then
    body text; within a kind, the classifier's most confident first.
    """
    chosen = [s for s in segs if s.get("sentiment") in sentiments]
    chosen.sort(key=lambda s: (
        KIND_ORDER.get(s.get("kind"), 9),
        -float((s.get("qi_scores") or {}).get(qi, 0.0)),
        s.get("report_id") or "", s.get("page") or 0, s.get("segment_id") or ""))
    return [{
        "text": s["text"],
        "report_id": s.get("report_id"),
        "page": s.get("page"),
        "kind": KIND_LABEL.get(s.get("kind"), s.get("kind") or ""),
        "sentiment": s.get("sentiment"),
        "partnership": names(s.get("partnership")),
        "labelled": bool(s.get("labelled")),
    } for s in chosen[:n]]


def _scores_by_partnership(benchmark: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in benchmark["reports"]:
        out.setdefault(r["partnership"], r.get("qi_scores") or {})
    return out


def _theme_shares(benchmark: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in benchmark["reports"]:
        out.setdefault(r["partnership"], r.get("theme_shares") or {})
    return out


def _labelled(segments: list[dict], names: _Names) -> list[dict[str, Any]]:
    """Per partnership, how many of its sentences the models were trained on (the
    classify stage's ``labelled`` mark): those are read in-sample, so they repeat the
    annotators' labels rather than predict them."""
    total: Counter = Counter(s.get("partnership") for s in segments)
    marked: Counter = Counter(s.get("partnership") for s in segments if s.get("labelled"))
    return [{"label": names(p), "n": marked[p], "of": total[p]}
            for p in sorted(marked, key=lambda p: names(p))]


def build_context(benchmark: dict[str, Any], themes: dict[str, Any],
                  segments: list[dict], unanalysed: list[dict] | None = None) -> dict[str, Any]:
    """Everything the two templates show, computed once. ``unanalysed``: the PDFs the
    earlier stages could not use (``errors.json`` rows: ``file``, ``reason``)."""
    names = _Names(benchmark)
    focus = benchmark["focus"]["partnership"]
    focus_label = names(focus)
    n_evidence = int(benchmark.get("params", {}).get("n_evidence", 3))
    scores = _scores_by_partnership(benchmark)
    peers_all = sorted(n for n in scores if n != focus and scores[n])
    comparison = {c["qi"]: c for c in benchmark["focus"]["comparison"]}

    focus_segs: dict[str, list[dict]] = defaultdict(list)
    for seg in segments:
        if seg.get("partnership") == focus:
            focus_segs[main_qi(seg)].append(seg)

    qi_sections, profile_items = [], []
    for item in benchmark["qis"]:
        qi, title = item["qi"], item["title"]
        c = comparison.get(qi, {})
        rows = [{"partnership": n, "label": names(n), "focus": n == focus, **scores[n][qi]}
                for n in scores if qi in scores[n]]
        rows.sort(key=lambda r: (-r["net"], r["label"]))
        plot_rows = [{**r, "label": f"{r['label']} (n={r['n']})"} for r in rows]
        peer_nets = [r["net"] for r in rows if not r["focus"]
                     and r["n"] >= benchmark["params"]["min_segments"]]
        mine = c.get("focus") or {}
        profile_items.append({
            "qi": qi, "label": f"{qi} {title}", "href": "#qi-" + qi.replace(".", "-"),
            "net": mine.get("net"), "lo": mine.get("lo"),
            "hi": mine.get("hi"), "thin": c.get("thin", True), "verdict": c.get("verdict"),
            "peer_median": c.get("peer_median"),
            "peer_min": min(peer_nets) if peer_nets else None,
            "peer_max": max(peer_nets) if peer_nets else None,
        })
        segs = focus_segs.get(qi, [])
        qi_sections.append({
            "qi": qi,
            "title": title,
            "anchor": "qi-" + qi.replace(".", "-"),
            "verdict": c.get("verdict", "no data"),
            "verdict_words": VERDICT_WORDS.get(c.get("verdict", "no data"), ""),
            "thin": c.get("thin", True),
            "weak": c.get("weak", True),
            "flags": _flags(c),
            "note": c.get("note", ""),
            "rank": c.get("rank"),
            "rank_of": c.get("rank_of"),
            "rank_words": rank_words(c),
            "n_peers": c.get("n_peers", 0),
            "diff": c.get("diff"),
            "diff_lo": c.get("diff_lo"),
            "diff_hi": c.get("diff_hi"),
            "focus": mine,
            "peer_median": c.get("peer_median"),
            "rows": rows,
            "svg": Markup(charts.forest_svg(
                plot_rows, c.get("peer_median"), f"{qi} {title}: net score by partnership"))
            if rows else None,
            "positive": _evidence(segs, ("positive",), qi, n_evidence, names),
            "negative": _evidence(segs, ("negative", "mixed"), qi, n_evidence, names),
            "counts": {s: sum(x.get("sentiment") == s for x in segs)
                       for s in ("positive", "negative", "mixed", "neutral")},
        })

    theme_ctx = _themes_context(benchmark, themes, names, focus, peers_all)
    grades_ctx = _grades_context(benchmark, names)
    ctx = {
        "focus": focus,
        "focus_label": focus_label,
        "focus_fictional": benchmark["focus"].get("fictional", False),
        "programme": benchmark["focus"].get("programme"),
        "n_peers": len(peers_all),
        "peers_label": ", ".join(names(n) for n in peers_all),
        "n_reports": sum(1 for r in benchmark["reports"] if r.get("in_corpus")),
        "n_segments": len(segments),
        "any_fictional": any(info.get("fictional")
                             for info in benchmark.get("partnerships", {}).values()),
        "params": benchmark["params"],
        "ci_pct": round(benchmark["params"]["ci"] * 100),
        "qi_sections": qi_sections,
        "profile_items": profile_items,
        "profile_svg": Markup(charts.profile_svg(profile_items, focus_label)),
        "themes": theme_ctx,
        "grades": grades_ctx,
        "peers": [{**p, "label": names(p["partnership"])} for p in benchmark["peers"]],
        "reference": benchmark["reference"],
        "thin_qis": [s for s in qi_sections if s["thin"] and s["verdict"] != "no data"],
        "weak_qis": [s for s in qi_sections if s["verdict"] == "weak"
                     or "weak comparison" in s["flags"]],
        "missing_qis": [s for s in qi_sections if s["verdict"] == "no data"],
        "calibration": benchmark.get("calibration"),
        "themes_min_z": benchmark.get("themes", {}).get("min_z", 1.96),
        "labelled": _labelled(segments, names),
        "unanalysed": [{"file": Path(str(e.get("file") or "")).name or "?",
                        "reason": e.get("reason") or "", "stage": e.get("stage") or ""}
                       for e in unanalysed or []],
    }
    ctx["summary"] = summary_sentences(ctx, benchmark)
    return ctx


def _themes_context(benchmark: dict[str, Any], themes: dict[str, Any], names: _Names,
                    focus: str, peers: list[str]) -> dict[str, Any]:
    shares = _theme_shares(benchmark)
    mine = shares.get(focus, {})
    items, table = [], []
    for t in themes.get("themes", []):
        key = str(t["id"])
        cell = mine.get(key, {})
        peer_shares = [shares.get(p, {}).get(key, {}).get("share", 0.0) for p in peers]
        peer_mean = float(np.mean(peer_shares)) if peer_shares else 0.0
        items.append({
            "id": t["id"],
            "label": f"T{t['id']} {t['label']}",
            "theme_label": t["label"],
            "phrases": [p["phrase"] for p in t.get("key_phrases", [])],
            "size": t["size"],
            "share": cell.get("share", 0.0),
            "parts": cell.get("by_sentiment", {}),
            "peer_mean": peer_mean,
            "sentiment": t.get("sentiment", {}),
            "representative": [{**r, "partnership": names(r.get("partnership"))}
                               for r in t.get("representative", [])],
        })
    for name in [focus, *peers]:
        row = shares.get(name, {})
        table.append({"label": names(name), "focus": name == focus,
                      "cells": [row.get(str(t["id"]), {}).get("share", 0.0)
                                for t in themes.get("themes", [])]})
    return {
        "n": len(items),
        "entries": items,
        "table": table,
        "outlier_share": themes.get("outlier_share"),
        "k_method": themes.get("k_selection", {}).get("method"),
        "svg": Markup(charts.theme_svg(items, names(focus))) if items else None,
        "distinctive": benchmark["focus"].get("distinctive_themes", []),
        "under": benchmark["focus"].get("underrepresented_themes", []),
        "phrases": benchmark["focus"].get("distinctive_phrases", []),
    }


def _grades_context(benchmark: dict[str, Any], names: _Names) -> dict[str, Any]:
    codes = list(benchmark.get("graded_titles", {}))
    rows = []
    for r in benchmark["reports"]:
        cells = []
        for code in codes:
            official = r["official_grades"].get(code)
            pred = r["predicted_grades"].get(code)
            cells.append({
                "code": code,
                "official": official,
                "predicted": pred["grade"] if pred else None,
                "confidence": pred["confidence"] if pred else None,
                "how": pred["how"] if pred else None,
                "match": None if not (official and pred) else official == pred["grade"],
            })
        rows.append({"label": names(r["partnership"]), "report_id": r["report_id"],
                     "focus": r["partnership"] == benchmark["focus"]["partnership"],
                     "published": r.get("published"), "cells": cells})
    return {"codes": codes, "titles": benchmark.get("graded_titles", {}), "rows": rows,
            "evaluation": benchmark["grade_predictor"]}


def summary_sentences(ctx: dict[str, Any], benchmark: dict[str, Any]) -> dict[str, Any]:
    """The opening summary in plain sentences: where the focus stands out, then the rest."""
    focus = ctx["focus_label"]
    by_qi = {s["qi"]: s for s in ctx["qi_sections"]}
    intro = (f"This report compares what the joint inspection report on {focus} says, indicator "
             f"by indicator, with what the reports on {ctx['n_peers']} other "
             f"partnership{'s' if ctx['n_peers'] != 1 else ''} say ({ctx['n_reports']} reports, "
             f"{ctx['n_segments']} sentences). A net score of +1 means every sentence on an "
             "indicator is positive, -1 that every one is critical.")

    def item(qi: str) -> str:
        s = by_qi[qi]
        return (f"{qi} {s['title']}: net {_signed(s['focus'].get('net'))} "
                f"({s['focus'].get('n')} sentences) against a peer median of "
                f"{_signed(s['peer_median'])}; {s['rank_words']}; the difference from a typical "
                f"peer is {_signed(s['diff_lo'])} to {_signed(s['diff_hi'])}.")

    strongest = [item(q) for q in benchmark["focus"].get("strongest", [])]
    weakest = [item(q) for q in benchmark["focus"].get("weakest", [])]
    more = []
    clear = [s for s in ctx["qi_sections"] if s["verdict"] in ("above", "below")]
    ruled = [s for s in ctx["qi_sections"] if s["verdict"] in ("above", "below", "similar")]
    p = ctx["params"]
    rule = (f"a difference is called only when it holds against both the sentences behind "
            f"each score and the spread among the peers, with at least "
            f"{p['min_segments']} sentences and {p['min_peers_verdict']} peers")
    if not clear:
        more.append(f"On none of the {len(ruled)} indicators with enough evidence to compare "
                    f"does the report on {focus} stand apart from its peers ({rule}).")
    else:
        above = sum(s["verdict"] == "above" for s in clear)
        more.append(f"On {len(clear)} of the {len(ruled)} indicators with enough evidence to "
                    f"compare the report on {focus} stands apart from its peers ({above} more "
                    f"positive, {len(clear) - above} less positive; {rule}).")
    if ctx["weak_qis"]:
        more.append(
            f"Weak comparisons (fewer than {p['min_peers_verdict']} peers with "
            f"{p['min_segments']} or more sentences, so no difference is called): "
            + "; ".join(f"{s['qi']} {s['title']}" + (f" ({s['rank_words']})"
                                                     if s["rank_words"] else "")
                        for s in ctx["weak_qis"]) + ".")
    if ctx["thin_qis"] or ctx["missing_qis"]:
        thin = "; ".join(f"{s['qi']} {s['title']} ({s['focus'].get('n')} sentence"
                         f"{'s' if s['focus'].get('n') != 1 else ''})" for s in ctx["thin_qis"])
        missing = ", ".join(f"{s['qi']} {s['title']}" for s in ctx["missing_qis"])
        more.append(
            f"Thin evidence (fewer than {p['min_segments']} sentences in the report on "
            f"{focus}): {thin or 'none'}"
            + (f"; no evidence at all on {missing}" if missing else "")
            + ". These are marked and should be read as indicative only.")
    focus_row = next((r for r in ctx["grades"]["rows"] if r["focus"]), None)
    if focus_row:
        official = [f"{ctx['grades']['titles'].get(c['code'], c['code'])}: {c['official']}"
                    for c in focus_row["cells"] if c["official"]]
        if official:
            more.append("Official grades: " + "; ".join(official) + ".")
        preds = [c for c in focus_row["cells"] if c["predicted"]]
        if preds:
            agree = sum(bool(c["match"]) for c in preds)
            more.append(
                f"Predicted from the text of the five inspection questions alone, {agree} of "
                f"{len(preds)} grades match the official ones (a rough cross-check: see Grades).")
    if ctx["peers"]:
        alike = [p for p in ctx["peers"] if p["cosine"] >= SIMILAR_COSINE]
        if alike:
            listed = ", ".join(f"{p['label']} (similarity {p['cosine']:+.2f})" for p in alike)
            more.append(f"Most alike in their indicator profile: {listed}.")
        else:
            best = ctx["peers"][0]
            more.append("No peer has a clearly similar indicator profile; the closest is "
                        f"{best['label']} (similarity {best['cosine']:+.2f}).")
    distinct = ctx["themes"]["distinctive"][:3]
    if distinct:
        more.append(f"Themes the report on {focus} dwells on more than its peers do: "
                    + "; ".join(f"\u201c{d['label']}\u201d" for d in distinct) + ".")
    if ctx["any_fictional"]:
        more.append("Partnerships marked (fictional) are sample partnerships written for this "
                    "project, not real places.")
    return {"intro": intro, "strongest": strongest, "weakest": weakest, "more": more}


# --- writing ------------------------------------------------------------------------------

def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"),
                                     default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["signed"] = _signed
    env.filters["pct"] = _pct
    return env


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


def write_plot_data(ctx: dict[str, Any], benchmark: dict[str, Any], out_dir: Path) -> None:
    """CSV plot data and PNG plots for ``dvc plots`` and the Markdown twin."""
    focus = benchmark["focus"]["partnership"]
    names = _Names(benchmark)
    profile = []
    for section in ctx["qi_sections"]:
        for r in sorted(section["rows"], key=lambda r: r["label"]):
            profile.append([names(r["partnership"]), section["qi"], section["title"], r["n"],
                            r["net"], r["lo"], r["hi"], int(r["partnership"] == focus)])
    _write_text(out_dir / "qi_profile.csv", _csv_text(
        ["partnership", "qi", "title", "n", "net", "lo", "hi", "is_focus"], profile))
    shares = _theme_shares(benchmark)
    theme_rows = []
    for item in ctx["themes"]["entries"]:
        for name in sorted(shares):
            cell = shares[name].get(str(item["id"]), {})
            parts = cell.get("by_sentiment", {})
            theme_rows.append([names(name), item["id"], item["theme_label"],
                               cell.get("share", 0.0), parts.get("positive", 0.0),
                               parts.get("negative", 0.0), parts.get("mixed", 0.0),
                               parts.get("neutral", 0.0), int(name == focus)])
    _write_text(out_dir / "theme_shares.csv", _csv_text(
        ["partnership", "theme", "label", "share", "positive", "negative", "mixed", "neutral",
         "is_focus"], theme_rows))
    grade_rows = []
    for row in ctx["grades"]["rows"]:
        for c in row["cells"]:
            grade_rows.append([row["label"], row["report_id"], c["code"], c["official"] or "",
                               c["predicted"] or "", c["confidence"] if c["confidence"] is not
                               None else "", int(row["focus"])])
    _write_text(out_dir / "grades.csv", _csv_text(
        ["partnership", "report_id", "indicator", "official", "predicted", "confidence",
         "is_focus"], grade_rows))
    charts.profile_png(ctx["profile_items"], ctx["focus_label"], out_dir / "qi_profile.png")
    if ctx["themes"]["entries"]:
        charts.theme_png(ctx["themes"]["entries"], ctx["focus_label"],
                         out_dir / "theme_shares.png")


def render(benchmark: dict[str, Any], themes: dict[str, Any], segments: list[dict],
           out_dir: Path, unanalysed: list[dict] | None = None) -> None:
    """Write comparison.html, comparison.md and the plot files into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = build_context(benchmark, themes, segments, unanalysed)
    env = _environment()
    html = env.get_template("comparison.html.j2").render(**ctx)
    md = env.get_template("comparison.md.j2").render(**ctx)
    write_plot_data(ctx, benchmark, out_dir)
    _write_text(out_dir / "comparison.md", md)
    _write_text(out_dir / "comparison.html", html)


def run(benchmark_path: str | Path, themes_path: str | Path, segments_path: str | Path,
        out_dir: str | Path, errors_path: str | Path | None = None) -> Path:
    """The ``report`` stage: render ``benchmark.json`` (with the themes and the classified
    segments that supply the evidence sentences, and the segment stage's ``errors.json``
    listing the PDFs that could not be analysed); returns the HTML path."""
    unanalysed = read_json(errors_path) if errors_path and Path(errors_path).exists() else []
    if not isinstance(unanalysed, list):
        raise InputError(errors_path, "expected a list of {file, reason} rows")
    render(read_json(benchmark_path), read_json(themes_path), read_jsonl(segments_path),
           Path(out_dir), unanalysed)
    return Path(out_dir) / "comparison.html"
