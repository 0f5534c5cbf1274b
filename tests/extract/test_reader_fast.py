"""The reader's own layout pass gives exactly what pdfminer's aggregator gives.

``read_pdf`` replaces pdfminer's ``PDFPageAggregator`` and ``LTLayoutContainer.analyze``
with lean code for speed; the reference here is the aggregator itself, walked the way
the reader walked it before. A pdfminer upgrade that changes its layout rules fails
these tests instead of changing the extraction silently.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from pipeline.extract.reader import PageText, Piece, _is_bold, read_pdf

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"


def _reference_piece(line):
    from pdfminer.layout import LTChar

    chars = [c for c in line if isinstance(c, LTChar) and c.get_text().strip()]
    if not chars or sum(1 for c in chars if c.upright) * 2 < len(chars):
        return None
    text = line.get_text().rstrip("\n")
    if not text.strip():
        return None
    size = statistics.median([round(c.size, 1) for c in chars])
    bold = sum(1 for c in chars if _is_bold(c.fontname)) * 2 > len(chars)
    return Piece(text, line.x0, line.y0, line.x1, line.y1, float(size), bold)


def _reference_collect(container, page: PageText) -> None:
    from pdfminer.layout import LTCurve, LTImage, LTLine, LTTextLineHorizontal

    for item in container:
        if isinstance(item, LTTextLineHorizontal):
            piece = _reference_piece(item)
            if piece is not None:
                page.pieces.append(piece)
        elif isinstance(item, LTImage):
            page.images += 1
        elif isinstance(item, LTCurve) and not isinstance(item, LTLine):
            width, height = item.width, item.height
            if (item.fill and 1.0 <= width <= 8.0 and 1.0 <= height <= 8.0
                    and 0.5 <= width / height <= 2.0):
                page.marks.append((item.x0, item.y0, item.x1, item.y1))
        elif hasattr(item, "__iter__"):
            _reference_collect(item, page)


def reference(path: Path, char_margin: float, word_margin: float,
              line_overlap: float) -> list[PageText]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams

    laparams = LAParams(char_margin=char_margin, word_margin=word_margin,
                        line_overlap=line_overlap, boxes_flow=None, all_texts=True,
                        detect_vertical=False)
    pages = []
    for number, layout in enumerate(extract_pages(path, laparams=laparams), start=1):
        page = PageText(number, float(layout.width), float(layout.height))
        _reference_collect(layout, page)
        pages.append(page)
    return pages


def edge_case_pdf(path: Path) -> Path:
    """Rotated, mirrored, condensed and spaced text, text in nested form XObjects,
    drawn bullets, an image, tiny and zero-size text, a table of aligned cells."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    pdf.beginForm("inner")
    pdf.setFont("Helvetica", 8)
    pdf.drawString(10, 10, "Inner form line")
    pdf.circle(5, 12, 2, fill=1, stroke=0)
    pdf.endForm()
    pdf.beginForm("outer")
    pdf.setFont("Times-Roman", 12)
    pdf.drawString(0, 0, "Outer form text")
    pdf.doForm("inner")
    pdf.endForm()
    pdf.setFont("Helvetica", 10)
    for row in range(12):
        pdf.circle(52, 760 - row * 14 + 3, 2.2, fill=1, stroke=0)
        pdf.rect(300, 760 - row * 14, 4, 4, fill=1, stroke=0)
        for col in range(3):
            pdf.drawString(60 + col * 80, 760 - row * 14, f"cell {row}.{col}")
    text = pdf.beginText(60, 560)
    text.setFont("Times-Bold", 14)
    text.setCharSpace(1.5)
    text.setWordSpace(4)
    text.textLine("Spaced bold heading")
    text.setHorizScale(70)
    text.textLine("Condensed line of text")
    text.setRise(3)
    text.textLine("Raised text")
    pdf.drawText(text)
    for angle, x, y in ((90, 300, 400), (45, 300, 250), (180, 500, 200)):
        pdf.saveState()
        pdf.translate(x, y)
        pdf.rotate(angle)
        pdf.drawString(0, 0, f"Turned {angle} degrees")
        pdf.restoreState()
    pdf.saveState()
    pdf.translate(400, 120)
    pdf.scale(-1, 1)
    pdf.drawString(0, 0, "Mirrored text")
    pdf.restoreState()
    for x, y, scale in ((100, 450, 1), (300, 470, 1.5)):
        pdf.saveState()
        pdf.translate(x, y)
        pdf.scale(scale, scale)
        pdf.doForm("outer")
        pdf.restoreState()
    pdf.setFont("Helvetica", 0.5)
    pdf.drawString(50, 100, "tiny text")
    pdf.setFont("Helvetica", 0)
    pdf.drawString(50, 90, "zero size text")
    from PIL import Image

    pdf.drawImage(ImageReader(Image.new("RGB", (4, 4), (200, 0, 0))), 400, 60, 20, 20)
    pdf.showPage()
    pdf.save()
    return path


@pytest.mark.parametrize("name", ["f01.pdf", "s-midlothian.pdf"])
def test_sample_pdfs_read_as_pdfminer_lays_them_out(name: str) -> None:
    path = SAMPLE / name
    assert read_pdf(path, 2.0, 0.1, 0.5) == reference(path, 2.0, 0.1, 0.5)


@pytest.mark.parametrize("params", [(2.0, 0.1, 0.5), (0.5, 0.0, 0.1), (8.0, 0.5, 0.9)])
def test_edge_cases_read_as_pdfminer_lays_them_out(tmp_path: Path, params) -> None:
    path = edge_case_pdf(tmp_path / "edge.pdf")
    pages = read_pdf(path, *params)
    assert pages == reference(path, *params)
    assert pages[0].marks and pages[0].images == 1
    assert any("Inner form line" in piece.text for piece in pages[0].pieces)
