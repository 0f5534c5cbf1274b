"""Bad and hostile PDFs end within their limits with a named error; the rest goes on.

The PDFs are built here, small and fast: a 500-page document, a stream that inflates
to 200 MB, and 3,000 form XObjects each drawing the next (pdfminer recurses once per
level). Limits are set low so that each test takes a second or two.
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import pytest

from pipeline.extract.stage import extract_path

REPO = Path(__file__).resolve().parents[2]


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF from object bodies (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"", compress: bool = False) -> bytes:
    if compress:
        data = zlib.compress(data, 9)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def one_page(content: bytes, resources: bytes = b"<< >>", more: tuple[bytes, ...] = ()) -> bytes:
    return raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                    b"/Resources " + resources + b" >>",
                    content, *more])


def inflating_pdf(megabytes: int) -> bytes:
    """A content stream of a few hundred kilobytes that inflates to ``megabytes``."""
    return one_page(stream(b" " * (megabytes << 20), compress=True))


def nested_forms_pdf(depth: int) -> bytes:
    """Form XObjects nested ``depth`` deep, each drawing the next."""
    forms = []
    for level in range(depth):
        last = level + 1 == depth
        body = b"BT /F1 12 Tf (deep) Tj ET" if last else b"/X%d Do" % (level + 1)
        res = b"<< >>" if last else b"<< /XObject << /X%d %d 0 R >> >>" % (level + 1, level + 6)
        forms.append(stream(body, b" /Type /XObject /Subtype /Form /BBox [0 0 10 10] "
                                  b"/Resources " + res))
    return one_page(stream(b"/X0 Do"), b"<< /XObject << /X0 5 0 R >> >>", tuple(forms))


def long_pdf(path: Path, pages: int) -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    for number in range(pages):
        for line in range(40):
            pdf.drawString(72, 760 - 18 * line, f"Page {number + 1}, line {line + 1} of a very "
                                                "long document that takes time to read.")
        pdf.showPage()
    pdf.save()
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    shutil.copy(REPO / "data" / "sample" / "f01.pdf", pdfs / "good.pdf")
    return pdfs


def _errors(out: Path) -> dict[str, str]:
    return {Path(row["file"]).name: row["reason"]
            for row in json.loads((out / "errors.json").read_text())}


def test_hostile_pdfs_end_with_named_errors_and_the_good_one_is_read(folder: Path,
                                                                     tmp_path: Path) -> None:
    (folder / "inflates.pdf").write_bytes(inflating_pdf(200))
    (folder / "nested.pdf").write_bytes(nested_forms_pdf(3000))
    long_pdf(folder / "long.pdf", 500)
    out = tmp_path / "out"
    extract_path([folder], out, keep_going=True,
                 params={"max_memory_mb": 100, "timeout_s": 30.0, "max_pages": 300})
    errors = _errors(out)
    assert errors == {
        "inflates.pdf": "needed more than the memory limit of 100 MB (extract.max_memory_mb)",
        "nested.pdf": "not a readable PDF: structure too deeply nested",
        "long.pdf": "has 500 pages, more than the limit of 300 (extract.max_pages)",
    }
    assert json.loads((out / "good.json").read_text())["pages"]


def test_a_pdf_over_the_time_limit_is_stopped(folder: Path, tmp_path: Path) -> None:
    long_pdf(folder / "long.pdf", 500)
    out = tmp_path / "out"
    extract_path([folder], out, keep_going=True, params={"timeout_s": 4.0, "max_pages": 0})
    assert _errors(out) == {
        "long.pdf": "stopped after the time limit of 4 s (extract.timeout_s)"}
    assert (out / "good.json").exists()
