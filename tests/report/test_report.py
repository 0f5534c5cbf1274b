"""Comparison report: files, sections, escaping, fictional marking, Markdown twin, plot data."""

from __future__ import annotations

import csv
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from pipeline.compare import benchmark
from pipeline.report import render as report
from pipeline.themes import stage as themes

FOCUS = "Realburgh"  # not fictional: its name must never carry "(fictional)"
PEERS = ["Brae & Glen", "Corriedale", "Drumlee", "Eskbank"]
NASTY = '<script>alert("x")</script> & *stars* | pipe [link](http://x) ~~strike~~'
SECTION_IDS = ["summary", "profile", "indicators", "themes", "grades", "peers", "reference",
               "method"]
MD_HEADINGS = ["## Summary", "## Indicator profile", "## Indicator by indicator", "## Themes",
               "## Grades: official and predicted", "## Nearest peers",
               "## Real partnerships' published grades", "## Method and caveats"]

# partnership -> QI -> (positive, negative, mixed); the focus is clearly best on 5.1 and
# clearly worst on 6.4, and has only two sentences on 9.2.
CELLS = {
    FOCUS: {"5.1": (17, 1, 2), "6.4": (2, 16, 2), "2.1": (8, 4, 0), "9.2": (2, 0, 0),
            "2.2": (6, 4, 0), "1.1": (5, 5, 0)},
    "Brae & Glen": {"5.1": (6, 12, 2), "6.4": (14, 4, 2), "2.1": (8, 4, 0), "9.2": (7, 3, 0),
                    "2.2": (8, 2, 0), "1.1": (8, 2, 0)},
    "Corriedale": {"5.1": (7, 11, 2), "6.4": (13, 5, 2), "2.1": (7, 5, 0), "9.2": (5, 5, 0),
                   "2.2": (5, 5, 0), "1.1": (4, 6, 0)},
    "Drumlee": {"5.1": (5, 13, 2), "6.4": (15, 3, 2), "2.1": (6, 6, 0), "9.2": (3, 7, 0),
                "2.2": (3, 7, 0), "1.1": (2, 8, 0)},
    "Eskbank": {"5.1": (8, 10, 2), "6.4": (12, 6, 2), "2.1": (9, 3, 0), "9.2": (9, 1, 0),
                "2.2": (9, 1, 0), "1.1": (9, 1, 0)},
}
GRADES = {
    FOCUS: {"9": "Good", "2.1": "Good", "2.2": "Good", "1.1": "Good"},
    "Brae & Glen": {"9": "Very good", "2.1": "Very good", "2.2": "Very good", "1.1": "Good"},
    "Corriedale": {"9": "Good", "2.1": "Good", "2.2": "Adequate", "1.1": "Adequate"},
    "Drumlee": {"9": "Weak", "2.1": "Adequate", "2.2": "Weak", "1.1": "Weak"},
    "Eskbank": {"9": "Excellent", "2.1": "Very good", "2.2": "Very good", "1.1": "Very good"},
}
TOPIC = {"5.1": 0, "6.4": 1, "2.1": 2, "9.2": 3, "2.2": 2, "1.1": 3}
WORDS = {0: "referral discussions with police", 1: "quality assurance audits",
         2: "children felt safe at school", 3: "leaders set a clear direction"}
REFERENCE = [
    {"programme": "2018-2020 care and protection", "partnership": "Realtown",
     "published": "2019-01", "indicator": "2.1", "grade": "Very good",
     "source_url": "https://example.org/a"},
    {"programme": "2021-2025 at risk of harm", "partnership": "Newtown", "published": "",
     "indicator": "2.1", "grade": "Good", "source_url": "https://example.org/b"},
]


def build_corpus():
    """(segments, embeddings, reports) of a small synthetic corpus."""
    rng = np.random.default_rng(0)
    segments, vectors = [], []
    for r, (name, cells) in enumerate(CELLS.items()):
        i = 0
        for qi, (pos, neg, mixed) in cells.items():
            for j, sentiment in enumerate(["positive"] * pos + ["negative"] * neg
                                          + ["mixed"] * mixed):
                text = f"In case {i} {WORDS[TOPIC[qi]]} and this was {sentiment}."
                if name == FOCUS and qi == "5.1" and j == 0:
                    text = "Key message: referral discussions were prompt and thorough."
                if name == FOCUS and qi == "6.4" and j == 2:
                    text = NASTY
                segments.append({
                    "segment_id": f"r{r}-{i:03d}", "report_id": f"r{r}", "partnership": name,
                    "part": f"q{1 + i % 5}", "kind": "key_message" if j < 2 else "body",
                    "subsection": "", "page": 4 + i // 8, "text": text, "qi": [qi],
                    "qi_scores": {qi: 0.9 - 0.01 * j}, "sentiment": sentiment,
                })
                v = np.zeros(8)
                v[TOPIC[qi]] = 3.0
                vectors.append(v + rng.normal(0, 0.3, 8))
                i += 1
    reports = [{"report_id": f"r{r}", "partnership": name, "title": f"Report {r}",
                "published": "2019-06", "programme": "2018-2020 care and protection",
                "grades": GRADES[name], "fictional": name != FOCUS}
               for r, name in enumerate(CELLS)]
    return segments, np.asarray(vectors, np.float32), reports


def build_inputs():
    """(benchmark, themes, segments) for the synthetic corpus, through the real stages."""
    segments, vectors, reports = build_corpus()
    th = themes.build_themes(segments, vectors, {"n_themes": 4, "min_df": 2})
    th.pop("assignment")
    # Four peers: min_peers_verdict lowered to 4 so the fixture has verdicts to show.
    bench = benchmark.build_benchmark(segments, reports, th, REFERENCE, FOCUS,
                                      {"n_draws": 300, "min_peers_verdict": 4})
    return bench, th, segments


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    bench, th, segments = build_inputs()
    report.render(bench, th, segments, out)
    return out, bench


def _text(html: str) -> str:
    """Visible text: tags dropped, entities decoded, whitespace collapsed."""
    html = re.sub(r"<(style|title|desc)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_writes_pages_and_plot_files(rendered):
    out, _ = rendered
    for name in ("comparison.html", "comparison.md", *report.PLOT_FILES):
        assert (out / name).stat().st_size > 0, name
    for name in ("qi_profile.png", "theme_shares.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))


def test_html_is_self_contained_with_sections_in_order(rendered):
    out, bench = rendered
    html = (out / "comparison.html").read_text()
    for banned in ("<script", "<link", " src=", "@import", "url("):
        assert banned not in html, banned
    positions = [html.index(f'id="{sid}"') for sid in SECTION_IDS]
    assert positions == sorted(positions)  # summary first, method last
    assert html.count("<svg") >= len(bench["qis"]) + 2
    for qi in bench["qis"]:
        assert f'id="qi-{qi["qi"].replace(".", "-")}"' in html


def test_report_text_is_escaped(rendered):
    out, _ = rendered
    html = (out / "comparison.html").read_text()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "Brae & Glen" not in html and "Brae &amp; Glen" in html
    md = (out / "comparison.md").read_text()
    assert "<script>" not in md and r"\<script\>" in md
    assert r"\*stars\*" in md and r"\| pipe" in md and r"\[link\]" in md


def test_fictional_partnerships_are_marked_everywhere(rendered):
    out, _ = rendered
    text = _text((out / "comparison.html").read_text())
    for name in ("Corriedale", "Drumlee", "Eskbank", "Brae & Glen"):
        assert text.count(name) > 0
        assert text.count(name) == text.count(f"{name} (fictional)"), name
    assert f"{FOCUS} (fictional)" not in text
    md = (out / "comparison.md").read_text()
    assert md.count("Drumlee") == md.count("Drumlee (fictional)")


def test_summary_names_strongest_and_weakest_in_sentences(rendered):
    out, bench = rendered
    html = (out / "comparison.html").read_text()
    summary = _text(html[html.index('id="summary"'): html.index('id="profile"')])
    assert bench["focus"]["strongest"][0] == "5.1"
    assert bench["focus"]["weakest"][0] == "6.4"
    best = summary.index("most positive")
    worst = summary.index("least positive")
    assert best < summary.index("5.1 Recognising and responding to concerns") < worst
    assert summary.index("6.4 Performance management") > worst
    assert "rank 1 of 5" in summary and "difference from a typical peer" in summary
    assert "Thin evidence" in summary and "9.2 Leadership of strategy and direction" in summary


def test_weak_comparisons_are_marked_in_summary_and_tables(tmp_path):
    """With the default five peers needed, four peers make every comparison weak."""
    bench, th, segments = build_inputs()
    segments_, _, reports = build_corpus()
    weak = benchmark.build_benchmark(segments_, reports, th, REFERENCE, FOCUS, {"n_draws": 300})
    report.render(weak, th, segments, tmp_path)
    html = (tmp_path / "comparison.html").read_text()
    summary = _text(html[html.index('id="summary"'): html.index('id="profile"')])
    assert "most positive" not in summary and "least positive" not in summary
    assert "Weak comparisons" in summary and "5.1 Recognising and responding" in summary
    assert "rank 1 of 5" in summary
    md = (tmp_path / "comparison.md").read_text()
    profile = md[md.index("## Indicator profile"): md.index("## Indicator by indicator")]
    assert profile.count("weak comparison (too few peers to call a difference)") == 5
    assert "Checked by simulation" not in md  # no calibration run: no claim made


def test_qi_section_shows_evidence_with_report_and_page(rendered):
    out, _ = rendered
    html = (out / "comparison.html").read_text()
    start = html.index('id="qi-5-1"')
    section = _text(html[start: html.index("</article>", start)])
    assert "Key message: referral discussions were prompt and thorough." in section
    assert "r0, page 4" in section
    assert "more positive than peers" in section
    thin = html.index('id="qi-9-2"')
    assert "Too little evidence to compare" in _text(html[thin: html.index("</article>", thin)])


def test_grades_reference_and_caveats(rendered):
    out, _ = rendered
    html = (out / "comparison.html").read_text()

    def section(sid: str, next_sid: str) -> str:
        return _text(html[html.index(f'id="{sid}"'): html.index(f'id="{next_sid}"')])

    grades = section("grades", "peers")
    assert "predicted" in grades and "confidence" in grades and "Leave-one-report-out" in grades
    assert "most common grade" in grades
    ref = section("reference", "method")
    assert "Programme: 2018-2020 care and protection (same programme" in ref
    assert "2021-2025 at risk of harm (different programme" in ref
    assert "Realtown" in ref and "Very good" in ref
    method = _text(html[html.index('id="method"'):])
    assert "fictional" in method and "posterior" in method and "typical peer" in method


def test_markdown_twin_has_the_same_sections(rendered):
    out, bench = rendered
    md = (out / "comparison.md").read_text()
    positions = [md.index(h + "\n") for h in MD_HEADINGS]
    assert positions == sorted(positions)
    assert "![Indicator profile](qi_profile.png)" in md
    assert "![Theme shares](theme_shares.png)" in md
    for qi in bench["qis"]:
        assert f"### {qi['qi']} " in md


def test_plot_data_csvs(rendered):
    out, bench = rendered
    with (out / "qi_profile.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"partnership", "qi", "title", "n", "net", "lo", "hi", "is_focus"}
    cells = sum(len(r["qi_scores"]) for r in bench["reports"])
    assert len(rows) == cells
    focus_51 = next(r for r in rows if r["is_focus"] == "1" and r["qi"] == "5.1")
    assert float(focus_51["net"]) == pytest.approx(16 / 20)
    with (out / "theme_shares.csv").open() as fh:
        shares = list(csv.DictReader(fh))
    per_partnership = {}
    for r in shares:
        per_partnership[r["partnership"]] = per_partnership.get(r["partnership"], 0) + float(
            r["share"])
    assert all(total <= 1.0 + 1e-6 for total in per_partnership.values())
    with (out / "grades.csv").open() as fh:
        grades = list(csv.DictReader(fh))
    assert len(grades) == 5 * 4


def test_rendering_is_deterministic(rendered, tmp_path):
    out, _ = rendered
    bench, th, segments = build_inputs()
    report.render(bench, th, segments, tmp_path)
    for name in ("comparison.html", "comparison.md", "qi_profile.csv", "theme_shares.csv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_run_reads_stage_outputs(tmp_path):
    import json

    bench, th, segments = build_inputs()
    (tmp_path / "benchmark.json").write_text(json.dumps(bench))
    (tmp_path / "themes.json").write_text(json.dumps(th))
    (tmp_path / "segments.jsonl").write_text("".join(json.dumps(s) + "\n" for s in segments))
    report.run(tmp_path / "benchmark.json", tmp_path / "themes.json",
               tmp_path / "segments.jsonl", tmp_path / "out")
    assert (tmp_path / "out" / "comparison.html").exists()


def _stage_inputs(tmp_path, segments, vectors, reports):
    """segments.jsonl, reports.jsonl and the themes stage's output for the stage tests."""
    import json

    from pipeline.core.io import text_hash

    seg_path = tmp_path / "segments.jsonl"
    seg_path.write_text("".join(json.dumps(s) + "\n" for s in segments))
    rep_path = tmp_path / "reports.jsonl"
    rep_path.write_text("".join(json.dumps(r) + "\n" for r in reports))
    emb_path = tmp_path / "emb.npz"
    np.savez(emb_path, keys=np.array([text_hash(s["text"]) for s in segments], dtype="U40"),
             vectors=vectors)
    themes.run(seg_path, emb_path, tmp_path / "themes", {"n_themes": 4, "min_df": 2})
    return seg_path, rep_path


def test_compare_then_report_stage_write_benchmark_report_and_plots(tmp_path):
    import json

    from pipeline.compare import stage as compare
    from pipeline.core.errors import InputError

    seg_path, rep_path = _stage_inputs(tmp_path, *build_corpus())
    out = tmp_path / "reports"
    bench = compare.run(seg_path, rep_path, tmp_path / "themes", out,
                        {"n_draws": 200, "calibration_trials": 20}, "realburgh")
    assert bench == out / "benchmark.json" and not (out / "comparison.html").exists()
    written = report.run(bench, tmp_path / "themes" / "themes.json", seg_path, out)
    assert written == out / "comparison.html" and written.exists()
    for name in ("benchmark.json", "comparison.md", *report.PLOT_FILES):
        assert (out / name).exists(), name
    assert json.loads((out / "benchmark.json").read_text())["reference"]["programmes"] == []
    md = (out / "comparison.md").read_text()
    assert "Checked by simulation" in md and "for 3 sentences" in md
    with pytest.raises(InputError, match="no focus partnership given"):
        compare.run(seg_path, rep_path, tmp_path / "themes", out, {}, focus=None)


def test_md_escape():
    assert report.md_escape("a|b *c* <d>\n_e_") == r"a\|b \*c\* \<d\> \_e\_"


def test_templates_exist_beside_the_module():
    assert (Path(report.__file__).parent / "templates" / "comparison.html.j2").exists()
    assert (Path(report.__file__).parent / "templates" / "comparison.md.j2").exists()


def test_report_marks_labelled_sentences_and_lists_pdfs_not_analysed(tmp_path):
    import json

    from pipeline.core.errors import InputError

    segments, vectors, reports = build_corpus()
    focus = next(s["partnership"] for s in segments)
    for s in segments:  # the focus's own sentences were labelled and trained on
        s["labelled"] = s["partnership"] == focus
    seg_path, rep_path = _stage_inputs(tmp_path, segments, vectors, reports)
    out = tmp_path / "reports"
    bench = benchmark.run(seg_path, rep_path, tmp_path / "themes" / "themes.json", None, out,
                          focus, {"n_draws": 200, "calibration_trials": 20})
    errors = tmp_path / "errors.json"
    errors.write_text(json.dumps([{"file": "/in/scan.pdf", "reason": "scanned: no text layer",
                                   "stage": "extract"}]))
    report.run(out / "benchmark.json", tmp_path / "themes" / "themes.json", seg_path, out,
               errors)
    assert bench["focus"]["partnership"] == focus
    md = (out / "comparison.md").read_text()
    n_focus = sum(s["partnership"] == focus for s in segments)
    assert "**Labelled sentences**" in md and f"{n_focus} of {n_focus}" in md
    assert ", labelled)" in md  # a quoted focus sentence carries the mark
    assert "### PDFs not analysed" in md and "**scan.pdf**: scanned: no text layer" in md
    html = (out / "comparison.html").read_text()
    assert "PDFs not analysed" in html and "&middot; labelled" in html
    errors.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(InputError, match="expected a list"):
        report.run(out / "benchmark.json", tmp_path / "themes" / "themes.json", seg_path, out,
                   errors)
