"""Unit tests of the segmenter on small, hand-written reports."""

from __future__ import annotations

import json

import pytest

from pipeline.core.errors import InputError
from pipeline.core.schema import load_generations
from pipeline.core.sentences import split_sentences
from pipeline.segment.blocks import blocks_from_pages
from pipeline.segment.grades import read_grades
from pipeline.segment.stage import run, segment_report

TITLE = (
    "Report of a joint inspection of services for children and young people in need of care "
    "and protection in Lochbrae"
)
QUESTIONS = [
    "How good is the partnership at recognising and responding when children and young people "
    "need protection?",
    "How good is the partnership at helping children and young people who have experienced abuse "
    "and neglect stay safe, healthy and recover from their experiences?",
    "How good is the partnership at maximising the wellbeing of children and young people who are "
    "looked after?",
    "How good is the partnership at enabling care experienced young people to succeed in their "
    "transition to adulthood?",
    "How good is collaborative leadership?",
]


def appendix(layout: str = "above") -> list[str]:
    rows = [
        ("9. Leadership and direction", "Good"),
        ("2.1 Impact on children and young people", "Very good"),
        ("2.2 Impact on families", "Adequate"),
        (
            "1.1 Improvements in the safety, wellbeing and life chances of vulnerable children "
            "and young people",
            "Weak",
        ),
    ]
    out = ["Appendix 1: Summary of evaluations"]
    for line, grade in rows:
        out.append("How good is our leadership?")
        if layout == "above":
            out += [grade, line]
        elif layout == "inline":
            out += [f"{line} {grade}"]
        else:
            out += [line, grade]
        out += [
            "Rationale for the evaluation",
            f"Leaders in Lochbrae were judged {grade.lower()} "
            "on this indicator. Staff said so too.",
        ]
    return out


def make_report(layout: str = "above") -> list[str]:
    blocks = [
        TITLE,
        "March 2021",
        "Contents",
        "• Introduction",
        "• Conclusion .... 9",
        "Introduction",
        "Our five inspection questions",
    ]
    blocks += [f"{n}. {q}" for n, q in enumerate(QUESTIONS, start=1)]
    blocks += [
        "Our remit",
        "We inspect services in every area of Scotland.",
        "Summary – strengths and priority areas for improvement",
        "Strengths",
        "1. Staff were confident. They knew what to do.",
        "2. Leaders were visible.",
        "Priority areas for improvement",
        "1. Chronologies were weak.",
        "Lochbrae in context",
        "Lochbrae has a population of 90,000 people.",
    ]
    for n, q in enumerate(QUESTIONS, start=1):
        blocks += [
            f"{n}. {q}",
            "Key messages",
            f"1. Key message {n} was positive.",
            f"2. Second key message of question {n}. It had two sentences.",
            "Recognising concerns",
            f"Body text of question {n} said staff did well. Most parents agreed.",
        ]
    blocks += [
        "Conclusion",
        "We are confident that partners can improve.",
        "What happens next",
        "Partners will send an action plan.",
    ]
    return blocks + appendix(layout)


def doc(blocks: list[str], per_page: int = 12) -> dict:
    pages = [blocks[i : i + per_page] for i in range(0, len(blocks), per_page)]
    return {
        "report_id": "r1",
        "source": "r1.pdf",
        "pages": [{"number": i + 1, "text": "\n\n".join(p)} for i, p in enumerate(pages)],
    }


def test_parts_kinds_and_items_are_recovered() -> None:
    report, segs = segment_report(doc(make_report()))
    assert report["partnership"] == "Lochbrae"
    assert report["published"] == "2021-03"
    assert report["programme"] == "2018-2020 care and protection"
    kinds = {(s["part"], s["kind"]) for s in segs}
    assert ("summary_strength", "strength") in kinds
    assert ("summary_priority", "priority") in kinds
    for n in range(1, 6):
        assert (f"q{n}", "key_message") in kinds and (f"q{n}", "body") in kinds
    assert ("conclusion", "conclusion") in kinds and ("appendix1", "rationale") in kinds
    strengths = [s["text"] for s in segs if s["kind"] == "strength"]
    # A numbered item with two sentences gives two segments of the same kind, number dropped.
    assert strengths == ["Staff were confident.", "They knew what to do.", "Leaders were visible."]
    q3_keys = [s["text"] for s in segs if s["part"] == "q3" and s["kind"] == "key_message"]
    assert q3_keys == [
        "Key message 3 was positive.",
        "Second key message of question 3.",
        "It had two sentences.",
    ]
    body = [s for s in segs if s["part"] == "q2" and s["kind"] == "body"]
    assert body[0]["subsection"] == "Recognising concerns"


def test_contents_and_intro_question_list_are_not_sections() -> None:
    _, segs = segment_report(doc(make_report()))
    intro = [s for s in segs if s["part"] == "context"]
    assert any("every area of Scotland" in s["text"] for s in intro)
    # The introduction's numbered list of the five questions must not open question 5.
    assert not any(s["part"].startswith("q") and "every area" in s["text"] for s in segs)
    assert all("Conclusion .... 9" not in s["text"] for s in segs)


@pytest.mark.parametrize("layout", ["above", "inline", "below"])
def test_grades_read_in_each_layout(layout: str) -> None:
    report, segs = segment_report(doc(make_report(layout)))
    assert report["grades"] == {"9": "Good", "2.1": "Very good", "2.2": "Adequate", "1.1": "Weak"}
    rationale = [s for s in segs if s["kind"] == "rationale"]
    assert {s["indicator"] for s in rationale} == {"9", "2.1", "2.2", "1.1"}


def test_sentence_cut_by_page_break_is_joined() -> None:
    d = {
        "report_id": "r1",
        "source": "r1.pdf",
        "pages": [
            {"number": 1, "text": "Staff acted quickly when children needed protection and"},
            {"number": 2, "text": "shared information well.\n\nA second paragraph followed."},
        ],
    }
    blocks = blocks_from_pages(d["pages"])
    assert [b.text for b in blocks] == [
        "Staff acted quickly when children needed protection and shared information well.",
        "A second paragraph followed.",
    ]
    assert [b.page for b in blocks] == [1, 2]


def test_missing_appendix_is_a_clear_error() -> None:
    blocks = make_report()
    blocks = blocks[: blocks.index("Appendix 1: Summary of evaluations")]
    with pytest.raises(InputError, match="r1.pdf: no 'Appendix 1"):
        segment_report(doc(blocks))


def test_missing_grade_is_named() -> None:
    blocks = [b for b in make_report() if b != "Adequate"]
    with pytest.raises(InputError, match="no grade for 2.2"):
        segment_report(doc(blocks))


def test_non_report_is_rejected() -> None:
    with pytest.raises(InputError, match="not a joint inspection report"):
        segment_report(doc(["Quarterly newsletter", "Our football team won the cup."]))


def test_read_grades_prefers_very_good_over_good() -> None:
    blocks = blocks_from_pages([{"number": 1, "text": "Very good\n\n2.1 Impact on children"}])
    assert read_grades(blocks, load_generations()[0]) == {"2.1": "Very good"}


def test_sentences_keep_organisation_names_and_abbreviations() -> None:
    text = (
        "Young people met Who Cares? Scotland every month. Tools, e.g. chronologies, helped. "
        "In 2019, 94% of care leavers were in touch."
    )
    assert split_sentences(text) == [
        "Young people met Who Cares? Scotland every month.",
        "Tools, e.g. chronologies, helped.",
        "In 2019, 94% of care leavers were in touch.",
    ]


def test_run_keep_going_records_bad_files(tmp_path) -> None:
    src = tmp_path / "ext"
    src.mkdir()
    (src / "good.json").write_text(json.dumps({**doc(make_report()), "report_id": "good"}))
    (src / "bad.json").write_text("{not json")
    (src / "other.json").write_text(
        json.dumps({**doc(["A newsletter", "Nothing here."]), "source": "other.pdf"})
    )
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        run(
            [src],
            tmp_path / "out",
            {"front_matter_blocks": 40, "grade_window": 2, "keep_context": True},
        )
    assert not (tmp_path / "out" / "segments.jsonl").exists()
    errors = run(
        [src],
        tmp_path / "out",
        {"front_matter_blocks": 40, "grade_window": 2, "keep_context": True},
        keep_going=True,
    )
    assert sorted(e.path.rsplit("/", 1)[-1] for e in errors) == ["bad.json", "other.pdf"]
    reports = (tmp_path / "out" / "reports.jsonl").read_text().splitlines()
    assert [json.loads(r)["report_id"] for r in reports] == ["good"]
    listed = json.loads((tmp_path / "out" / "errors.json").read_text())
    assert len(listed) == 2 and all(e["reason"] for e in listed)


def test_another_generation_is_added_as_data() -> None:
    """A programme with other headings and one graded QI needs a spec, not new code."""
    import yaml

    from pipeline.core.schema import parse_generation

    spec = yaml.safe_load(
        r"""
id: at-risk-of-harm-test
programme: 2021-2025 at risk of harm
title: 'services for children and young people at risk of harm in (?P<partnership>.+)$'
sections:
  - {pattern: '^introduction$', part: context}
  - {pattern: '^key strengths$', part: summary_strength}
  - {pattern: '^areas for improvement$', part: summary_priority}
  - {pattern: '^statement (?P<n>[1-4])\b.*$', part: 'q{n}'}
  - {pattern: '^evaluation of quality indicator 2\.1$', part: appendix1}
subsections: []
body_kind: {context: context, summary_strength: strength, summary_priority: priority,
            q1: body, q2: body, q3: body, q4: body, appendix1: rationale}
grades:
  scale: [Excellent, Very good, Good, Adequate, Weak, Unsatisfactory]
  indicators: {'2.1': '^2\.1\s+impact on children'}
"""
    )
    generation = parse_generation(spec)
    blocks = [
        "Joint inspection of services for children and young people at risk of harm in Lochbrae",
        "May 2023", "Introduction", "We inspected services.", "Key strengths",
        "1. Staff knew children well.", "Areas for improvement", "1. Plans were late.",
        "Statement 1 Children at risk of harm are safer", "Most children were safer.",
        "Evaluation of quality indicator 2.1", "2.1 Impact on children and young people",
        "Very good", "Children felt safe and listened to.",
    ]
    report, segs = segment_report(doc(blocks), generations=(generation,))
    assert report["programme"] == "2021-2025 at risk of harm"
    assert report["grades"] == {"2.1": "Very good"}
    assert report["partnership"] == "Lochbrae"
    assert [(s["part"], s["kind"]) for s in segs] == [
        ("context", "context"), ("summary_strength", "strength"),
        ("summary_priority", "priority"), ("q1", "body"), ("appendix1", "rationale"),
    ]


def test_manifest_is_read_from_a_file_or_its_folder(tmp_path) -> None:
    from pipeline.segment.stage import read_manifest

    (tmp_path / "manifest.csv").write_text("file,report_id,fictional\nf01.pdf,f01,true\n")
    assert read_manifest(tmp_path)["f01"]["fictional"] == "true"
    assert read_manifest(tmp_path / "manifest.csv") == read_manifest(tmp_path)
    assert read_manifest(tmp_path / "absent.csv") == {}
    (tmp_path / "bad.csv").write_text("file,fictional\nf01.pdf,true\n")
    with pytest.raises(InputError, match="bad.csv: manifest has no report_id column"):
        read_manifest(tmp_path / "bad.csv")
