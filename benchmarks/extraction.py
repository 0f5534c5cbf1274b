"""Benchmark the extract stage: fidelity and speed on the shared corpus.

    python benchmarks/extraction.py [--shared ../shared] [--browser] [--json out.json]

For each PDF in ``<shared>/corpus/pdf`` it prints pages, seconds, pages/s and the
word-sequence similarity (:mod:`pipeline.similarity`) of the extracted text (all
pages joined) against the source text, next to pdfminer's plain ``extract_text``
as a baseline. The fictional reports and the paraphrase are compared with
``corpus/sources/<id>.md``; the three ``midlothian-2020-*`` renders with the seed
text (``seeds/*.txt``) and also with ``corpus/sources/midlothian-2020.md``, the
exact rendered text (the seed's table and logo lines are not in the PDFs, so
about 0.996 is the best any extractor can score against the seed).

``--browser`` also renders the fictional sources with headless Chromium in other
layouts (one column, justified two and three columns, first-line indents), to see
the stage on a PDF producer it was not tuned on. Nothing is written unless
``--json`` is given.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.extract.similarity import markdown_text, similarity  # noqa: E402
from pipeline.extract.stage import extract_pdf  # noqa: E402

LAYOUTS = {
    "browser-1col": "body{font:11pt 'Liberation Sans',sans-serif;line-height:1.5}",
    "browser-2col": "body{font:10pt 'DejaVu Serif',serif;column-count:2;column-gap:1.2em;"
                    "text-align:justify} h1{column-span:all}",
    "browser-3col": "body{font:9pt 'DejaVu Sans',sans-serif;column-count:3;column-gap:1.5em;"
                    "text-align:justify}",
    "browser-indent": "body{font:11pt 'Liberation Serif',serif;text-align:justify}"
                      "p{margin:0;text-indent:1.5em}",
}


def _references(shared: Path, stem: str) -> dict[str, str]:
    sources = shared / "corpus" / "sources"
    if stem.startswith("midlothian-2020"):
        seed = next((shared / "seeds").glob("*.txt")).read_text(encoding="utf-8")
        md = (sources / "midlothian-2020.md").read_text(encoding="utf-8")
        return {"source": seed, "rendered md": markdown_text(md)}
    return {"source": markdown_text((sources / f"{stem}.md").read_text(encoding="utf-8"))}


def measure(pdf: Path, references: dict[str, str]) -> dict[str, object]:
    from pdfminer.high_level import extract_text

    start = time.perf_counter()
    result = extract_pdf(pdf)
    seconds = time.perf_counter() - start
    text = "\n\n".join(page["text"] for page in result["pages"])
    start = time.perf_counter()
    plain = extract_text(str(pdf))
    plain_seconds = time.perf_counter() - start
    row: dict[str, object] = {
        "file": pdf.name, "pages": len(result["pages"]), "seconds": round(seconds, 2),
        "pages_per_s": round(len(result["pages"]) / seconds, 1),
        "plain_seconds": round(plain_seconds, 2),
    }
    for name, reference in references.items():
        row[f"similarity ({name})"] = round(similarity(text, reference), 4)
        row[f"plain pdfminer ({name})"] = round(similarity(plain, reference), 4)
    return row


def _markdown_html(markdown: str) -> str:
    """Just enough markdown (headings, lists, paragraphs) for the browser renders."""
    out, open_list = [], ""
    for line in markdown.splitlines():
        line = line.strip()
        kind = "ul" if line.startswith("- ") else "ol" if re.match(r"\d+\. ", line) else ""
        if open_list and kind != open_list:
            out.append(f"</{open_list}>")
            open_list = ""
        if not line or line.startswith("<!--"):
            continue
        heading = re.match(r"(#+)\s+(.*)", line)
        if heading:
            level = min(len(heading.group(1)), 3)
            out.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        elif kind:
            if not open_list:
                start = re.match(r"\d+", line)
                out.append(f'<{kind} start="{start.group()}">' if start else f"<{kind}>")
                open_list = kind
            out.append(f"<li>{html.escape(re.sub(r'^(- |[0-9]+[.] )', '', line))}</li>")
        else:
            out.append(f"<p>{html.escape(line.replace('**', ''))}</p>")
    if open_list:
        out.append(f"</{open_list}>")
    return "\n".join(out)


def render_with_browser(md: Path, css: str, out: Path, browser: str) -> None:
    page = out.with_suffix(".html")
    page.write_text(
        f"<!doctype html><html lang='en-GB'><head><meta charset='utf-8'><title>{md.stem}</title>"
        f"<style>@page{{size:A4;margin:2cm}} {css}</style></head>"
        f"<body>{_markdown_html(md.read_text(encoding='utf-8'))}</body></html>",
        encoding="utf-8",
    )
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--print-to-pdf={out}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )


def _cell(column: str, value: object) -> str:
    scored = column.startswith(("similarity", "plain pdfminer"))
    return f"{value:.4f}" if scored and isinstance(value, float) else str(value)


def print_table(rows: list[dict[str, object]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    widths = {c: max(len(c), *(len(_cell(c, row.get(c, ""))) for row in rows)) for c in columns}
    print(" | ".join(c.ljust(widths[c]) for c in columns))
    print("-|-".join("-" * widths[c] for c in columns))
    for row in rows:
        print(" | ".join(_cell(c, row.get(c, "")).ljust(widths[c]) for c in columns))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--browser", action="store_true", help="add Chromium renders")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    pdfs = sorted((args.shared / "corpus" / "pdf").glob("*.pdf"))
    if not pdfs:
        print(f"no PDFs under {args.shared / 'corpus' / 'pdf'}", file=sys.stderr)
        return 1
    rows = [measure(pdf, _references(args.shared, pdf.stem)) for pdf in pdfs]
    total_pages = sum(int(row["pages"]) for row in rows)
    total_seconds = sum(float(row["seconds"]) for row in rows)
    print_table(rows)
    print(f"\n{total_pages} pages in {total_seconds:.1f} s: "
          f"{total_pages / total_seconds:.1f} pages/s (plain pdfminer: "
          f"{total_pages / sum(float(r['plain_seconds']) for r in rows):.1f} pages/s)")

    if args.browser:
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if not browser:
            print("\n--browser: no chromium on PATH", file=sys.stderr)
        else:
            extra = []
            with tempfile.TemporaryDirectory() as tmp:
                for md in sorted((args.shared / "corpus" / "sources").glob("f0*.md")):
                    for layout, css in LAYOUTS.items():
                        pdf = Path(tmp) / f"{md.stem}-{layout}.pdf"
                        render_with_browser(md, css, pdf, browser)
                        extra.append(measure(pdf, _references(args.shared, md.stem)))
            print("\nSame sources rendered by Chromium:\n")
            print_table(extra)
            rows += extra
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
