"""Tests of the PDF extraction stage: clean-up rules, layout, bad input, fidelity.

The fidelity tests read the shared corpus (../shared next to the repository) at run
time, through the session fixture ``corpus_docs`` (tests/conftest.py), and skip when
it is absent; every other test makes its PDFs with reportlab (or Chromium).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from pipeline.core.errors import InputError
from pipeline.extract.clean import glyph_counts, list_marker, normalise_chars, tidy_line
from pipeline.extract.furniture import find_furniture, furniture_key
from pipeline.extract.hyphens import (
    common_words,
    join_across,
    join_lines,
    only_real_hyphens,
    resolve,
    vocabulary,
)
from pipeline.extract.layout import Line, page_lines
from pipeline.extract.paragraphs import Style, blocks
from pipeline.extract.reader import PageText, Piece
from pipeline.extract.similarity import differences, markdown_text, similarity, tokens
from pipeline.extract.stage import (
    DEFAULTS,
    extract_path,
    extract_pdf,
    pages_text,
    text_layer_problem,
)

SHARED = Path(__file__).resolve().parents[3] / "shared"
CORPUS = SHARED / "corpus"
TARGET = 0.995

# ---------------------------------------------------------------------------
# similarity
# ---------------------------------------------------------------------------


def test_tokens_ignore_markdown_and_punctuation():
    assert tokens("## 1. How good is **leadership**?\n- Staff’s views") == [
        "1", "how", "good", "is", "leadership", "staff's", "views"]


def test_similarity_counts_order_and_missing_words():
    assert similarity("a b c d", "a b c d") == 1.0
    assert similarity("", "") == 1.0
    assert similarity("a b c d", "a b c") == pytest.approx(6 / 7)
    assert similarity("c d a b", "a b c d") == pytest.approx(0.5)
    assert differences("a x c", "a b c") == ["replace: 'x' -> 'b'"]


def test_markdown_text_drops_metadata_comment():
    assert tokens(markdown_text("<!-- {\"grades\": 5} -->\n# Title")) == ["title"]


# ---------------------------------------------------------------------------
# clean: characters, bullets, markers, hyphenation
# ---------------------------------------------------------------------------


def test_normalise_chars_policy():
    assert normalise_chars("ﬁnal ﬂow oﬃce") == "final flow office"
    assert normalise_chars("‘child’s’ “voice”") == "'child's' \"voice\""
    assert normalise_chars("Summary – strengths — and 2018‐2020") == (
        "Summary – strengths — and 2018-2020")
    assert normalise_chars("a\u00a0b\u2009c") == "a b c"


def test_tidy_line_bullets_spaces_and_soft_hyphens():
    assert tidy_line("(cid:127) Our  remit") == "• Our remit"
    assert tidy_line("\uf0b7\tStaff were kind") == "• Staff were kind"
    assert tidy_line("● item") == "• item"
    assert tidy_line("(cid:127) (cid:127) Our remit .... 4") == "• • Our remit .... 4"
    assert tidy_line("co\u00adordinated") == "coordinated"
    assert tidy_line("plan\u00ad") == "plan\u00ad"  # kept for join_lines
    assert tidy_line("x (cid:3) y") == "x y"
    assert tidy_line("(cid:127)") == "•"


@pytest.mark.parametrize(("line", "marker"), [
    ("• Staff", "bullet"), ("1. Staff", "number"), ("12) Staff", "number"),
    ("(iv) Staff", "number"), ("a) Staff", "number"), ("- Staff", "dash"),
    ("1.1 Impact on children", None), ("2018 was a year", None), ("Staff", None),
    ("-based", None),
])
def test_list_marker(line, marker):
    assert list_marker(line) == marker


def test_join_lines_repairs_hyphenation_from_document_evidence():
    broken = [
        ["clear plan-", "ning process"], ["clear plan -", "ning process"],
        ["a well-", "established group"], ["from 2018-", "2020 onwards"],
        ["multi-", "agency staff"], ["the services -", "which were"],
        ["recog-", "nised early"], ["soft\u00ad", "ware"], ["Anglo-", "Scottish links"],
        ["the HM-", "ICS team"], ["thirty-", "six children"], ["child-", "centred plans"],
    ]
    others = ["a well-established group", "planning matters", "the services which",
              "agency", "HMICS", "centred", "every child"]
    vocab = vocabulary([line for pair in broken for line in pair] + others)
    assert [join_lines(pair, vocab) for pair in broken] == [
        "clear planning process", "clear planning process", "a well-established group",
        "from 2018-2020 onwards", "multi-agency staff", "the services - which were",
        "recognised early", "software", "Anglo-Scottish links", "the HMICS team",
        "thirty-six children", "child-centred plans",
    ]
    assert join_lines(["one line", "", "two lines"]) == "one line two lines"


def test_vocabulary_leaves_out_the_fragments_of_a_break():
    vocab = vocabulary(["the plan-", "ning group", "a plan"])
    assert vocab["plan"] == 1 and vocab["ning"] == 0 and vocab["group"] == 1


def test_join_lines_prefers_the_commoner_form():
    vocab = vocabulary(["decision-making"] * 3 + ["decisionmaking"])
    assert join_lines(["decision-", "making"], vocab) == "decision-making"
    vocab = vocabulary(["coordinated"] * 3 + ["co-ordinated"])
    assert join_lines(["co-", "ordinated"], vocab) == "coordinated"


def test_breaks_without_document_evidence():
    vocab = vocabulary(["they went out on either side", "a longer term", "the rules"])
    words = frozenset({"outside", "out", "side", "longer", "term", "heard", "un"})
    # A common word when joined; two words and no common joined form: a compound;
    # a two-letter fragment is a syllable; a fragment that is no word: joined.
    assert resolve("out", "side", False, vocab, words=words) == "outside"
    assert resolve("longer", "term", False, vocab, words=words) == "longer-term"
    assert resolve("un", "heard", False, vocab, words=words) == "unheard"
    assert resolve("recog", "nised", False, vocab, words=words) == "recognised"
    assert resolve("longer", "term", True, vocab, words=words) == "longer - term"
    assert resolve("recog", "nised", False, vocab, real_only=True, words=words) == "recog-nised"
    assert "outside" in common_words() and "ning" not in common_words()


def test_only_real_hyphens_reads_the_documents_own_breaks():
    auto = ["plan-", "ning", "planning"] * 2
    real = ["well-", "established", "well-established"] * 2
    assert not only_real_hyphens(auto, vocabulary(auto))
    assert only_real_hyphens(real, vocabulary(real))
    assert not only_real_hyphens([], vocabulary([]))
    lines = ["a six-", "point scale"]
    assert join_lines(lines, vocabulary(lines), real_only=True) == "a six-point scale"


def test_join_across_moves_a_broken_word_to_its_page():
    vocab = vocabulary(["the partnership", "CAMHS"])
    assert join_across("Leaders of the partner-", "ship met.", vocab) == (
        "Leaders of the partnership", "met.")
    assert join_across("Waits for CAM-", "HS were long.", vocab) == (
        "Waits for CAMHS", "were long.")
    assert join_across("In 2018-", "2020 we", vocab) == ("In 2018-2020", "we")
    assert join_across("Ends with a sentence.", "next page", vocab) == (
        "Ends with a sentence.", "next page")
    assert join_across("A dash -", "Conclusion", vocab) == ("A dash -", "Conclusion")


# ---------------------------------------------------------------------------
# furniture
# ---------------------------------------------------------------------------


def _page(number, pieces, height=842.0):
    return PageText(number, 595.0, height, [Piece(t, x, y, x + 300, y + 10, 10.0)
                                            for t, x, y in pieces])


BODY = ["Staff knew the families well.", "Leaders were visible.", "Plans were clear.",
        "Carers felt supported.", "Records were brief."]


def test_furniture_removes_running_headers_footers_and_page_numbers():
    pages = [
        _page(n, [
            ("Joint inspection of services in Lochbrae", 56, 806),
            (BODY[n - 1], 62, 767),
            (f"A second body line {n}", 62, 400),
            (f"Report title | {n}", 56, 32),
            (str(n), 530, 20),
        ])
        for n in range(1, 6)
    ]
    drops = find_furniture(pages)
    assert all(drop == {0, 3, 4} for drop in drops)


def test_furniture_keeps_body_lines_and_lone_numbers_elsewhere():
    pages = [_page(n, [(BODY[n - 1], 62, 767),
                       ("Rationale for the evaluation", 62, 767 if n == 1 else 500),
                       ("3", 62, 400)])
             for n in range(1, 6)]
    # A single page: a lone page number at the bottom is still furniture.
    single = [_page(1, [("Some text", 62, 500), ("Page 1 of 1", 280, 30)])]
    assert find_furniture(pages) == [set()] * 5
    assert find_furniture(single) == [{1}]
    assert furniture_key("Page 12 of 40") == furniture_key("page 3 of 40") == "page # of #"


# ---------------------------------------------------------------------------
# layout and paragraphs on hand-made pieces
# ---------------------------------------------------------------------------


def _col(texts, x0, x1, top, pitch=12.5, size=10.0):
    return [Piece(t, x0, top - i * pitch, x1, top - i * pitch + size, size)
            for i, t in enumerate(texts)]


def test_two_columns_read_left_then_right_with_spanning_title():
    title = [Piece("A title that spans both of the columns", 62, 780, 530, 795, 15.0, True)]
    left = _col([f"left {i} words words words words" for i in range(6)], 62, 280, 750)
    right = _col([f"right {i} words words words words" for i in range(6)], 315, 532, 750)
    # A justified line that pdfminer split at a wide space is one line again.
    split = [Piece("right 6 words", 315, 675, 400, 685, 10.0),
             Piece("words words", 410, 675, 532, 685, 10.0)]
    lines = page_lines(title + right + split + left)
    texts = [line.text for line in lines]
    assert texts[0].startswith("A title")
    assert texts[1:7] == [f"left {i} words words words words" for i in range(6)]
    assert texts[7:] == [f"right {i} words words words words" for i in range(6)] + [
        "right 6 words words words"]
    assert len({line.column for line in lines[1:7]}) == 1
    assert lines[1].column != lines[7].column


def test_table_rows_stay_together_on_one_column_page():
    prose = _col(["a full line of prose that runs across the page " * 2] * 8, 62, 530, 760)
    table = []
    for i, (left, right) in enumerate([("Leadership", "Good"), ("1.1 Improvements", "Weak")]):
        table += [Piece(left, 62, 600 - 14 * i, 150, 610 - 14 * i, 10.0),
                  Piece(right, 420, 600 - 14 * i, 450, 610 - 14 * i, 10.0)]
    texts = [line.text for line in page_lines(prose + table)]
    assert texts[-2:] == ["Leadership Good", "1.1 Improvements Weak"]


def _line(text, y, x0=62.0, x1=530.0, size=10.0, bold=False, column=0):
    return Line(text, x0, y, x1, y + size, size, bold, column, 62.0, 530.0)


def test_blocks_from_gaps_styles_and_markers():
    style = Style(10.0, False, {10.0: 12.0})
    lines = [
        _line("Our remit", 700, x1=120, size=12.0, bold=True),
        _line("Scottish Ministers have asked the Care Inspectorate to lead joint", 680),
        _line("inspections of services for young people aged up to", 668),
        _line("18. Staff in every area took part in the work and it went", 656),
        _line("well for all.", 644, x1=150),
        _line("1. Staff were kind and the work was done on time and", 620),
        _line("with care.", 608, x0=78, x1=140),
        _line("2. Leaders were visible.", 596, x1=250),
        _line("• a bullet", 584, x1=150),
        _line("A new paragraph after a gap.", 560, x1=300),
        _line("Text straight after a finished short line.", 548, x1=300),
    ]
    found = blocks(lines, style)
    assert [len(b.lines) for b in found] == [1, 4, 2, 1, 1, 1, 1]
    assert [b.kind for b in found] == ["heading", "text", "item", "item", "item", "text", "text"]


def test_blocks_continue_across_a_column_break_mid_sentence():
    style = Style(10.0, False, {10.0: 12.0})
    lines = [
        _line("the first column ends in the middle of a", 100, column=1),
        _line("sentence that goes on in the next column.", 760, column=2, x1=300),
        _line("Full line ending a sentence at the column foot ends.", 100, column=2),
        _line("New paragraph at the top of the next column.", 760, column=3),
    ]
    assert [len(b.lines) for b in blocks(lines, style)] == [2, 2]


# ---------------------------------------------------------------------------
# PDFs made with reportlab
# ---------------------------------------------------------------------------

WORDS = [
    "staff", "children", "young", "people", "families", "partners", "services", "leaders",
    "records", "plans", "support", "health", "education", "police", "social", "work",
    "protection", "wellbeing", "carers", "outcomes", "improvement", "assessment", "review",
    "quality", "practice", "evidence", "inspection", "community", "planning", "early", "help",
    "advocacy", "schools", "nurses", "teams", "approach", "progress", "risk", "needs", "safety",
    "decisions", "meetings",
]


def _prose(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(9, 22))]
        words[0] = words[0].capitalize()
        out.append(" ".join(words) + ".")
    return " ".join(out)


def _document(seed: int = 7) -> list[tuple[str, str]]:
    """(kind, text) blocks of a small generated report: headings, prose, lists."""
    rng = random.Random(seed)
    doc: list[tuple[str, str]] = [("h1", "Summary – strengths and priority areas")]
    for section in range(1, 4):
        doc.append(("h2", f"Section {section} of the made-up report"))
        for _ in range(3):
            doc.append(("p", _prose(rng, rng.randint(3, 6))))
        for item in range(1, 3):
            doc.append(("li", f"{item}. {_prose(rng, 1)}"))
        doc.append(("bullet", _prose(rng, 1)))
    return doc


def _make_pdf(path: Path, doc: list[tuple[str, str]], columns: int, gutter: float = 28,
              indent: bool = False) -> None:
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

    width, height = A4
    body = ParagraphStyle("body", fontName="Times-Roman", fontSize=10, leading=12.5,
                          alignment=TA_JUSTIFY, spaceAfter=0 if indent else 7,
                          firstLineIndent=15 if indent else 0)
    item = ParagraphStyle("item", parent=body, leftIndent=14, firstLineIndent=-14, spaceAfter=4)
    bullet = ParagraphStyle("bullet", parent=body, leftIndent=14, bulletIndent=2,
                            firstLineIndent=0, spaceAfter=4)
    h1 = ParagraphStyle("h1", fontName="Times-Bold", fontSize=15, leading=19, spaceAfter=9)
    h2 = ParagraphStyle("h2", fontName="Times-Bold", fontSize=11.5, leading=14, spaceBefore=6,
                        spaceAfter=6)

    def furniture(canvas, document):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(56, height - 36, "Joint inspection of services in Lochbrae")
        canvas.drawRightString(width - 56, 32, f"Page {document.page}")
        canvas.restoreState()

    margin = 62
    usable = width - 2 * margin
    col = (usable - gutter * (columns - 1)) / columns
    frames = [Frame(margin + i * (col + gutter), 60, col, height - 130, id=f"c{i}")
              for i in range(columns)]
    template = BaseDocTemplate(str(path), pagesize=A4)
    template.addPageTemplates([PageTemplate(frames=frames, onPage=furniture)])
    flow = []
    for kind, text in doc:
        if kind == "bullet":
            flow.append(Paragraph(text, bullet, bulletText="•"))
        else:
            flow.append(Paragraph(text, {"h1": h1, "h2": h2, "li": item}.get(kind, body)))
    template.build(flow)


def _joined(result: dict) -> str:
    return "\n\n".join(page["text"] for page in result["pages"])


@pytest.mark.parametrize(("columns", "gutter", "indent"), [
    (1, 28, False), (2, 28, False), (2, 12, False), (3, 14, False), (1, 28, True),
])
def test_generated_report_round_trip(tmp_path, columns, gutter, indent):
    """Headers, page numbers, columns (narrow gutters too), lists and indented paragraphs."""
    doc = _document()
    pdf = tmp_path / f"lochbrae-{columns}.pdf"
    _make_pdf(pdf, doc, columns, gutter, indent)
    result = extract_pdf(pdf)
    assert result["report_id"] == f"lochbrae-{columns}"
    assert result["source"] == str(pdf)
    assert len(result["pages"]) >= 2
    assert [p["number"] for p in result["pages"]] == list(range(1, len(result["pages"]) + 1))
    text = _joined(result)
    source = "\n\n".join(text for _, text in doc)
    score = similarity(text, source)
    assert score >= TARGET, differences(text, source)
    assert "Lochbrae" not in text and "Page" not in text
    found = {tuple(tokens(b)) for p in result["pages"] for b in p["text"].split("\n\n")}
    whole = [b for _, b in doc if tuple(tokens(b)) in found]
    # Blocks broken by a page or column end are the only ones allowed to differ.
    assert len(whole) >= len(doc) - 2 * len(result["pages"])
    assert any(b.startswith("• ") for p in result["pages"] for b in p["text"].split("\n\n"))
    assert any(b.startswith("2. ") for p in result["pages"] for b in p["text"].split("\n\n"))


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no chromium to render HTML to PDF")
@pytest.mark.parametrize("css", [
    "body{font:10pt serif;column-count:2;column-gap:1em;text-align:justify}",
    "body{font:9pt sans-serif;column-count:3;column-gap:1.5em;text-align:justify}",
])
def test_browser_rendered_columns(tmp_path, css):
    """Another PDF producer: per-glyph positions, drawn bullets, its own header and footer."""
    doc = _document(seed=11)
    tags = {"h1": "h1", "h2": "h2", "p": "p"}
    body = "".join(
        f"<ul><li>{text}</li></ul>" if kind == "bullet"
        else f"<ol start='{text[0]}'><li>{text[3:]}</li></ol>" if kind == "li"
        else f"<{tags[kind]}>{text}</{tags[kind]}>"
        for kind, text in doc)
    page = tmp_path / "doc.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Lochbrae</title>"
                    f"<style>@page{{size:A4;margin:2cm}}{css}</style></head><body>{body}</body>"
                    "</html>", encoding="utf-8")
    pdf = tmp_path / "doc.pdf"
    subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--print-to-pdf={pdf}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    text = _joined(extract_pdf(pdf))
    source = "\n\n".join(text for _, text in doc)
    assert similarity(text, source) >= TARGET, differences(text, source)
    assert "Lochbrae" not in text and "file" not in tokens(text)
    assert text.count("• ") == sum(kind == "bullet" for kind, _ in doc)


def _canvas_pdf(path: Path, pages: list[list[str]], **kwargs) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, **kwargs)
    for lines in pages:
        c.setFont("Helvetica", 11)
        for i, line in enumerate(lines):
            c.drawString(72, 700 - 14 * i, line)
        c.showPage()
    c.save()


def test_hyphenation_quotes_and_empty_pages(tmp_path):
    pdf = tmp_path / "hyphens.pdf"
    _canvas_pdf(pdf, [
        ["The partnership had a clear plan-", "ning process with well-",
         "established links and a well-established board.",
         "Between 2018-", "2020 the children’s “voice” was heard."],
        [],
        ["A second page with the word planning in it."],
    ])
    result = extract_pdf(pdf)
    assert [p["number"] for p in result["pages"]] == [1, 2, 3]
    assert result["pages"][0]["text"] == (
        "The partnership had a clear planning process with well-established links and a "
        "well-established board. Between 2018-2020 the children's \"voice\" was heard.")
    assert result["pages"][1]["text"] == ""


def test_drawn_bullets_and_furniture_rows(tmp_path):
    """Bullets drawn as dots become "• "; a word alone at many page feet is no footer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = tmp_path / "drawn.pdf"
    c = canvas.Canvas(str(pdf), pagesize=A4)
    for page in range(4):
        c.setFont("Helvetica", 11)
        c.drawString(72, 700, f"Findings on page {'ABCD'[page]} of the report were these:")
        for i, item in enumerate(["staff were kind", "plans were late"]):
            c.circle(80, 684 - 16 * i + 3.5, 1.6, stroke=0, fill=1)
            c.drawString(88, 684 - 16 * i, f"{item} ({'ABCD'[page]})")
        # The last row of the page: a justified line split at a wide space.
        c.drawString(72, 60, f"{'ABCD'[page]} line at the foot of the page, with")
        c.drawString(300 + 20 * page, 60, "of")
        c.showPage()
    c.save()
    pages = extract_pdf(pdf)["pages"]
    assert pages[0]["text"].split("\n\n")[1:3] == ["• staff were kind (A)", "• plans were late (A)"]
    assert all(page["text"].endswith("with of") for page in pages)


def test_sha256_and_params(tmp_path):
    pdf = tmp_path / "one.pdf"
    _canvas_pdf(pdf, [["Just one line of text on this page."]])
    result = extract_pdf(pdf, {"para_gap": 0.3})
    assert len(result["sha256"]) == 64
    with pytest.raises(InputError, match="unknown parameter extract.no_such_key"):
        extract_pdf(pdf, {"no_such_key": 1})
    assert set(DEFAULTS) >= {"char_margin", "furniture_band", "para_gap"}


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


def _image_pdf(path: Path) -> None:
    from PIL import Image
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = ImageReader(Image.new("RGB", (120, 80), (180, 180, 180)))
    c = canvas.Canvas(str(path), pagesize=A4)
    for _ in range(2):
        c.drawImage(image, 50, 300, 500, 330)
        c.showPage()
    c.save()


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    good = tmp_path / "good.pdf"
    _canvas_pdf(good, [["Some words on the first page."], ["More words on the second."]])
    data = good.read_bytes()
    files = {
        "encrypted": tmp_path / "encrypted.pdf",
        "scanned": tmp_path / "scanned.pdf",
        "truncated": tmp_path / "truncated.pdf",
        "random": tmp_path / "random.pdf",
        "garbled": tmp_path / "garbled.pdf",
        "empty": tmp_path / "empty.pdf",
        "blank": tmp_path / "blank.pdf",
        "text": tmp_path / "notes.pdf",
    }
    _canvas_pdf(files["encrypted"], [["Secret words."]], encrypt="secret")
    _image_pdf(files["scanned"])
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["random"].write_bytes(random.Random(1).randbytes(4000))
    files["garbled"].write_bytes(b"%PDF-1.4\n" + random.Random(2).randbytes(4000))
    files["empty"].write_bytes(b"")
    _canvas_pdf(files["blank"], [[], []])
    files["text"].write_text("meeting notes, not a PDF\n", encoding="utf-8")
    return files


@pytest.mark.parametrize(("case", "reason"), [
    ("encrypted", "encrypted PDF: a password is needed"),
    ("scanned", "no text layer: the PDF looks scanned (image-only); OCR it first"),
    ("truncated", "not a readable PDF: "),
    ("random", "not a readable PDF: no %PDF header (is it a PDF?)"),
    ("garbled", "not a readable PDF: "),
    ("empty", "empty file (0 bytes)"),
    ("blank", "empty PDF: no text on any page"),
    ("text", "not a readable PDF: no %PDF header"),
])
def test_bad_input_raises_input_error(tmp_path, case, reason):
    path = _bad_inputs(tmp_path)[case]
    with pytest.raises(InputError) as info:
        extract_pdf(path)
    assert info.value.path == str(path)
    assert info.value.reason.startswith(reason)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        extract_pdf(tmp_path / "nowhere.pdf")


def test_owner_password_only_is_readable(tmp_path):
    from reportlab.lib.pdfencrypt import StandardEncryption

    pdf = tmp_path / "owner.pdf"
    encryption = StandardEncryption("", ownerPassword="owner", canCopy=0)
    _canvas_pdf(pdf, [["Readable words behind an owner password."]], encrypt=encryption)
    assert extract_pdf(pdf)["pages"][0]["text"] == "Readable words behind an owner password."


def test_extract_path_writes_json_and_collects_failures(tmp_path):
    files = _bad_inputs(tmp_path / "in")
    good = tmp_path / "in" / "good.pdf"
    twin = tmp_path / "in" / "other"
    twin.mkdir()
    (twin / "good.pdf").write_bytes(good.read_bytes())
    out = tmp_path / "out"
    errors = extract_path([good, files["encrypted"], twin], out, keep_going=True, params=None)
    assert [e.path for e in errors] == [str(files["encrypted"]), str(twin / "good.pdf")]
    assert "already used" in errors[1].reason
    written = json.loads((out / "good.json").read_text(encoding="utf-8"))
    assert written["report_id"] == "good" and len(written["pages"]) == 2
    assert json.loads((out / "errors.json").read_text(encoding="utf-8")) == [
        {"file": e.path, "reason": e.reason, "stage": "extract"} for e in errors]
    assert sorted(os.listdir(out)) == ["errors.json", "good.json"]  # no temporary files
    with pytest.raises(InputError, match="encrypted"):
        extract_path([files["encrypted"]], out, keep_going=False, params=None)
    with pytest.raises(InputError, match="no PDF files"):
        extract_path([out], tmp_path / "elsewhere", keep_going=True, params=None)


def test_extract_path_reads_folders_in_order(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    for name in ("b.pdf", "a.PDF"):
        _canvas_pdf(folder / name, [[f"Report {name} has words."]])
    (folder / "notes.txt").write_text("not a report", encoding="utf-8")
    assert extract_path([folder], tmp_path / "out", keep_going=False, params=DEFAULTS) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.json", "b.json", "errors.json"]


def test_text_layer_problems_from_page_contents():
    text = [Piece("Plenty of ordinary words on this page.", 62, 700, 300, 710, 10.0)]
    undecoded = [Piece("(cid:12)(cid:13)(cid:14) (cid:15)(cid:16)", 62, 700, 300, 710, 10.0)]
    assert text_layer_problem([PageText(1, 595, 842, text)]) is None
    assert text_layer_problem([]) == "empty PDF: it has no pages"
    assert text_layer_problem([PageText(1, 595, 842, undecoded)]).startswith(
        "no usable text layer")
    scan = [PageText(n, 595, 842, [], images=1) for n in range(1, 4)]
    assert text_layer_problem(scan).startswith("no text layer")
    # One photo page in a report with text is no scan.
    assert text_layer_problem([PageText(1, 595, 842, text), scan[0],
                               PageText(3, 595, 842, text)]) is None
    assert glyph_counts("ab (cid:3)") == (3, 1)


def test_pages_text_is_pure_and_keeps_empty_pages():
    pages = [PageText(1, 595, 842, [Piece("Hello world.", 62, 700, 200, 710, 10.0)]),
             PageText(2, 595, 842, [])]
    assert pages_text(pages) == ["Hello world.", ""]


# ---------------------------------------------------------------------------
# fidelity on the shared corpus (skipped when ../shared is absent)
# ---------------------------------------------------------------------------


def _reference(stem: str) -> tuple[str, str]:
    """(reference text, markdown source) for a corpus PDF, read at run time."""
    if stem.startswith("midlothian-2020"):
        seed = next((SHARED / "seeds").glob("*.txt")).read_text(encoding="utf-8")
        source = (CORPUS / "sources" / "midlothian-2020.md").read_text(encoding="utf-8")
        return seed, markdown_text(source)
    source = markdown_text((CORPUS / "sources" / f"{stem}.md").read_text(encoding="utf-8"))
    return source, source


CORPUS_PDFS = sorted(p.stem for p in (CORPUS / "pdf").glob("*.pdf")) if CORPUS.exists() else []


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS_PDFS, reason="shared corpus not present")
@pytest.mark.parametrize("stem", CORPUS_PDFS)
def test_corpus_similarity(corpus_docs, stem):
    reference, source = _reference(stem)
    text = _joined(corpus_docs[stem])
    score = similarity(text, reference)
    assert score >= TARGET, differences(text, reference)
    assert similarity(text, source) >= TARGET


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS_PDFS, reason="shared corpus not present")
@pytest.mark.parametrize("stem", CORPUS_PDFS)
def test_corpus_blocks_match_source_paragraphs(corpus_docs, stem):
    """Nearly every source paragraph, heading and list item comes out as one block.

    A block broken by a page end counts when its two halves (last block of a page,
    first of the next) make it up.
    """
    _, source = _reference(stem)
    pages = [[b for b in page["text"].split("\n\n") if b]
             for page in corpus_docs[stem]["pages"]]
    found = {tuple(tokens(b)) for page in pages for b in page}
    found |= {tuple(tokens(a[-1] + " " + b[0]))
              for a, b in zip(pages, pages[1:], strict=False) if a and b}
    wanted = [tuple(tokens(line)) for line in source.splitlines() if tokens(line)]
    hits = Counter(block in found for block in wanted)
    assert hits[True] / len(wanted) >= 0.97
