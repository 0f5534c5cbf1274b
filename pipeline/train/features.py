"""Context and cue features for report segments.

Why context: the training text is fictional and the target text is real, and the
two differ in wording far more than in structure. Where a sentence sits (which
inspection question, whether it is a strength or a priority area, the heading
above it, the sentences around it) carries over between the two, so the models
lean on it. The cue words are the report writers' own conventions: the fixed
quantity terms, and concession patterns ("While X, Y") that mark mixed findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

EVALUATIVE_PARTS = (
    "summary_strength", "summary_priority", "q1", "q2", "q3", "q4", "q5",
    "conclusion", "appendix1",
)
PARTS = (*EVALUATIVE_PARTS, "other")
KINDS = ("strength", "priority", "key_message", "body", "conclusion", "rationale")
# Headings that name a list, not a topic: they say nothing about the QI.
GENERIC_HEADINGS = {
    "key messages", "strengths", "priority areas for improvement", "rationale for the evaluation",
    "conclusion", "summary", "",
}
# Appendix 1 groups its rationales under the question each graded QI answers.
GRADE_HINTS = ("9", "2.1", "2.2", "1.1")

Embed = Callable[[list[str]], np.ndarray]


_NON_EVALUATIVE = re.compile(
    r"^(intro|contents|title|front|key[ _]?facts|what[ _]?happens|next|glossary|"
    r"appendix[ _]?[23])|context", re.IGNORECASE,
)


def part_group(part: str | None) -> str:
    """Known evaluative parts keep their name; known non-evaluative ones (introduction,
    context, what happens next) are ``other``; a missing or unfamiliar label is ``""``
    so that it adds no evidence either way."""
    low = (part or "").strip().lower().replace("-", "_")
    if not low:
        return ""
    if low in EVALUATIVE_PARTS:
        return low
    match = re.fullmatch(r"(?:q|question[ _]?)([1-5])", low)
    if match:
        return f"q{match.group(1)}"
    for prefix, name in (
        ("summary_strength", "summary_strength"), ("summary_priorit", "summary_priority"),
        ("appendix1", "appendix1"), ("appendix_1", "appendix1"), ("conclusion", "conclusion"),
    ):
        if low.startswith(prefix):
            return name
    return "other" if _NON_EVALUATIVE.search(low) else ""


def kind_group(kind: str | None) -> str:
    low = (kind or "").strip().lower().replace("-", "_")
    return low if low in KINDS else ""


def topic_heading(subsection: str | None) -> str:
    """The subsection heading when it names a topic, else ``""``."""
    text = (subsection or "").strip()
    return "" if text.lower().rstrip(":") in GENERIC_HEADINGS else text


def grade_hints(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Which graded QI an Appendix 1 rationale belongs to, from the running headings.

    The appendix repeats the heading "How well do we meet the needs of stakeholders?"
    for 2.1 and for 2.2, so the heading alone cannot tell them apart; the order can
    (2.1 comes first), and an explicit "2.2 Impact on families" line, where the
    segmenter keeps it, settles it.
    """
    hints: list[str] = []
    state: dict[str, Any] = {}
    for row in rows:
        report = row.get("report_id")
        if state.get("report") != report:
            state = {"report": report, "hint": "", "heading": None, "stakeholder_blocks": 0}
        if part_group(row.get("part")) != "appendix1":
            hints.append("")
            continue
        heading = (row.get("subsection") or "").strip().lower()
        text = (row.get("text") or "").strip().lower()
        explicit = re.match(r"(1\.1|2\.1|2\.2)\s+(impact|improvements)", text) or re.match(
            r"(1\.1|2\.1|2\.2)\s+(impact|improvements)", heading
        )
        if explicit:
            state["hint"] = explicit.group(1)
        elif heading != state["heading"] and heading:
            if "leadership" in heading:
                state["hint"] = "9"
            elif "outcomes" in heading:
                state["hint"] = "1.1"
            elif "stakeholders" in heading:
                state["stakeholder_blocks"] += 1
                state["hint"] = "2.1" if state["stakeholder_blocks"] == 1 else "2.2"
        if heading:
            state["heading"] = heading
        hints.append(state["hint"])
    return hints


# --- cue words -------------------------------------------------------------------

def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


CUES: dict[str, re.Pattern[str]] = {
    "concession_start": _rx(r"^\W*(while|whilst|although|though|despite|even though|in spite|"
                            r"notwithstanding|alongside)\b"),
    "contrast": _rx(r"\b(but|however|although|though|whilst|yet|despite|nevertheless|"
                    r"albeit|while)\b"),
    "but_clause": _rx(r",\s*(but|however|although|though|yet)\b|;\s*however"),
    "negation": _rx(r"\b(not|no|never|nor|without|none|n't|cannot|lack|lacked|lacking)\b"),
    "not_yet": _rx(r"\b(not yet|yet to|too early|too soon|still|had not|was not|were not|"
                   r"did not)\b"),
    "need": _rx(r"\b(needs? to|needed to|should|must|required|requires|further work|"
                r"more work|priority|improvement was needed)\b"),
    "problem": _rx(r"\b(too (long|many|few|often|late)|delay\w*|wait\w*|gaps?|inconsisten\w*|"
                   r"poor\w*|weak\w*|limited|fell short|fall short|variab\w*|concern\w*|"
                   r"difficult\w*|harder|shortage\w*|vacanc\w*|unclear|unmet|drift|"
                   r"struggl\w*|lower|fewer|less likely|pressure\w*|insufficient|"
                   r"not always|slow\w*|barrier\w*|uneven|patchy|declin\w*)"),
    "good": _rx(r"\b(good|very good|excellent|strong\w*|effective\w*|well|improv\w*|positive\w*|"
                r"valued|benefit\w*|high[- ]quality|robust|clear\w*|timely|confident\w*|"
                r"consistent\w*|embedded|thriv\w*|success\w*|helpful\w*|supportive|"
                r"commendabl\w*|promising|impressive|skilled|meaningful\w*)\b"),
    "good_practice": _rx(r"\b(area of good practice|good or better|good or very good|"
                         r"sector-leading|exemplary)\b"),
    "q_high": _rx(r"\b(almost all|nearly all|the vast majority|most|the majority|majority of|"
                  r"many|all)\b"),
    "q_low": _rx(r"\b(few|a few|less than half|fewer than half|a small number|some|minority|"
                 r"only|just under half|one in \w+)\b"),
    # A shortfall met by work already under way is the reports' usual "mixed" finding:
    # "..., and a revised standard was being rolled out".
    "underway": _rx(r"\b(being (rolled out|developed|introduced|reviewed|tested)|"
                    r"(was|were|had been) (testing|piloting|developing|working)|"
                    r"(had|have) (begun|started|commissioned|agreed|recognised|acknowledged)|"
                    r"at an early stage|early steps|due to (open|start|begin)|recently|"
                    r"working (together )?on|plans? to|hoped)\b"),
    "percent": _rx(r"\d+(\.\d+)?\s?%|\bper ?cent\b"),
    # The inspectorate's polite shortfall: what still has to happen, said as a next step.
    "polite_shortfall": _rx(r"\b(further attention|needs? to be given|next steps?|remaining task|"
                            r"early stage|continued improvement|more variable|just under half|"
                            r"to be prioritised|would help|would benefit|wanted (a )?(clearer|more|"
                            r"better)|(was|were) needed|not yet|scope (to|for)|room for|less well|"
                            r"(had|has|have) yet to|still to|requir\w* further|more (work|"
                            r"consistent|specific|robust|systematic)|clearer|fully)\b"),
    # A plain description of a service, group or figure: what it is, not how good it is.
    "describe": _rx(r"\b(provided|provides|offered|offers|(was|were) set up|(was|were) "
                    r"established|made up of|consist\w* of|compris\w*|run (jointly )?by|"
                    r"chaired by|met (monthly|weekly|quarterly|every)|(was|were) responsible|"
                    r"aged (from )?\d+|(was|were) introduced|introduced in|launched|funded|"
                    r"based (in|at)|staffed|delivered by|(is|was|are|were) (a|an|the) )\b"),
    "number": _rx(r"\b\d[\d,.]*\b"),
    "question": _rx(r"\?\s*$"),
    # "In reaching this view, we took account of:" introduces a list; it judges nothing.
    "lead_in": _rx(r":\s*$"),
    "we_did": _rx(r"^\W*(we|our)\b"),
}
CUE_NAMES = (*CUES, "q_high_problem", "q_low_problem", "q_low_good", "problem_underway",
             "log_words", "no_judgement", "pct_low", "pct_high")
_JUDGING = ("good", "problem", "negation", "not_yet", "need", "q_high", "q_low", "underway",
            "good_practice", "polite_shortfall", "contrast")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?%")


def cue_features(texts: Sequence[str]) -> np.ndarray:
    """Dense cue vector per text: counts capped at 3, scaled to 0..1."""
    out = np.zeros((len(texts), len(CUE_NAMES)), dtype=np.float32)
    for i, text in enumerate(texts):
        counts = {name: min(len(rx.findall(text)), 3) / 3 for name, rx in CUES.items()}
        bad = 1.0 if counts["problem"] or counts["negation"] or counts["not_yet"] else 0.0
        counts["q_high_problem"] = float(counts["q_high"] > 0) * bad
        counts["q_low_problem"] = float(counts["q_low"] > 0) * bad
        counts["q_low_good"] = float(counts["q_low"] > 0) * (1.0 - bad)
        counts["problem_underway"] = float(counts["underway"] > 0) * bad
        counts["log_words"] = min(np.log1p(len(text.split())) / 4.0, 1.5)
        counts["no_judgement"] = float(not any(counts[n] for n in _JUDGING))
        pcts = [float(m) for m in _PERCENT.findall(text)]
        counts["pct_low"] = float(any(p < 50 for p in pcts))
        counts["pct_high"] = float(any(p >= 75 for p in pcts))
        out[i] = [counts[name] for name in CUE_NAMES]
    return out


def one_hot(values: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """Indicator columns; a value outside the vocabulary (unknown context) is all zeros."""
    index = {v: i for i, v in enumerate(vocabulary)}
    out = np.zeros((len(values), len(vocabulary)), dtype=np.float32)
    for i, value in enumerate(values):
        if value in index:
            out[i, index[value]] = 1.0
    return out


# --- clauses -----------------------------------------------------------------------

_LEADING_CONCESSION = re.compile(
    r"^\W*(?:while|whilst|although|though|despite|even though|in spite of|notwithstanding)\b"
    r"(.+?),\s+(.+)$", re.IGNORECASE)
_CONTRAST_JOIN = re.compile(
    r"(?:,|;)\s*(?:but|however|although|though|yet|whilst|while|despite|even though)\b,?\s*"
    r"|\s+but\s+|;\s*", re.IGNORECASE)


def clauses(text: str) -> tuple[str, str]:
    """(first, last) clause of a sentence that sets one finding against another.

    Why: a mixed finding is a positive clause and a negative one joined by a
    concession ("While X, Y") or a contrast (", but"), and a whole-sentence vector
    averages the two away. Scoring each side separately lets the second stage
    see the conflict. A sentence without such a join is its own first and last
    clause; pieces under three words (", but rarely,") are not clauses.
    """
    text = text.strip()
    match = _LEADING_CONCESSION.match(text)
    if match:
        return match.group(1).strip(), match.group(2).strip()
    pieces = [p.strip() for p in _CONTRAST_JOIN.split(text) if p and len(p.split()) >= 3]
    if len(pieces) >= 2:
        return pieces[0], pieces[-1]
    return text, text


def clause_spans(text: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Character offsets of ``clauses(text)`` in the stripped text; None when the
    sentence sets nothing against anything (it is its own clause)."""
    text = text.strip()
    first, last = clauses(text)
    if first == text and last == text:
        return None
    start, end = text.find(first), text.rfind(last)
    return (start, start + len(first)), (end, end + len(last))


# --- neighbours --------------------------------------------------------------------

def neighbour_index(rows: Sequence[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """Index of the previous and next row of the same report and part (-1 if none)."""
    prev, nxt = [-1] * len(rows), [-1] * len(rows)
    for i in range(1, len(rows)):
        a, b = rows[i - 1], rows[i]
        if a.get("report_id") == b.get("report_id") and part_group(a.get("part")) == part_group(
            b.get("part")
        ):
            prev[i], nxt[i - 1] = i - 1, i
    return prev, nxt


def block_index(rows: Sequence[dict[str, Any]]) -> list[int]:
    """A block id per row: consecutive rows sharing report, part and subsection."""
    ids, current, last = [], -1, None
    for row in rows:
        key = (row.get("report_id"), part_group(row.get("part")), row.get("subsection"))
        if key != last:
            current += 1
            last = key
        ids.append(current)
    return ids


def context_vectors(rows: Sequence[dict[str, Any]], text_vecs: np.ndarray) -> dict[str, np.ndarray]:
    """Neighbour mean and block mean of the rows' text vectors."""
    prev, nxt = neighbour_index(rows)
    dim = text_vecs.shape[1]
    nbr = np.zeros((len(rows), dim), dtype=np.float32)
    for i in range(len(rows)):
        idx = [j for j in (prev[i], nxt[i]) if j >= 0]
        if idx:
            nbr[i] = text_vecs[idx].mean(axis=0)
    blocks = np.asarray(block_index(rows))
    block = np.zeros_like(nbr)
    for b in np.unique(blocks):
        members = np.flatnonzero(blocks == b)
        block[members] = text_vecs[members].mean(axis=0)
    prev_vec = np.zeros_like(nbr)
    next_vec = np.zeros_like(nbr)
    for i in range(len(rows)):
        if prev[i] >= 0:
            prev_vec[i] = text_vecs[prev[i]]
        if nxt[i] >= 0:
            next_vec[i] = text_vecs[nxt[i]]
    return {"neighbours": _unit(nbr), "block": _unit(block), "previous": prev_vec,
            "next": next_vec}


def _unit(mat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return np.where(norms > 0, mat / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def order_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalised copies of rows: context fields always present (possibly empty)."""
    out = []
    for row in rows:
        out.append({
            "report_id": row.get("report_id") or "",
            "part": row.get("part") or "",
            "kind": row.get("kind") or "",
            "subsection": row.get("subsection") or "",
            "text": str(row.get("text") or ""),
        })
    return out


def dense_blocks(
    rows: Sequence[dict[str, Any]], text_vecs: np.ndarray, heading_vecs: np.ndarray
) -> dict[str, np.ndarray]:
    """Every dense feature block, one row per segment, rows in file order."""
    rows = order_rows(rows)
    ctx = context_vectors(rows, text_vecs)
    return {
        "text": text_vecs,
        "heading": heading_vecs,
        "neighbours": ctx["neighbours"],
        "block": ctx["block"],
        "previous": ctx["previous"],
        "next": ctx["next"],
        "part": one_hot([part_group(r["part"]) for r in rows], PARTS),
        "kind": one_hot([kind_group(r["kind"]) for r in rows], KINDS),
        "grade_hint": one_hot(grade_hints(rows), GRADE_HINTS),
        "cues": cue_features([r["text"] for r in rows]),
    }
