"""Time every stage on an N-report corpus, from clean and after adding one report.

    python benchmarks/scale.py --reports 100 [--model models/classifier] [--keep DIR]

The corpus is built from the sample PDFs in ``data/sample``: copy k of a sample
report has its partnership's name rewritten in the PDF's content streams (a name
of the same length, so the layout stays as it was) and is listed in a manifest
under that name, so every file, hash and partnership differs and none is a
duplicate. Why rewrite the streams by hand rather than with a PDF library: the
sample PDFs are ReportLab's (standard fonts, literal strings, ASCII85 + Flate
streams), and the 30 lines below are all it takes, without a dependency.

It runs ``inspections run`` (``pipeline.runner``) into one output folder, from
clean, then adds one more report and runs again (the per-report caches make the
second run read, segment and classify only the new report), and prints seconds
per stage, peak memory of this process and of its worker processes, and plain
pdfminer ``extract_text`` on a sample of the same corpus for comparison.
Without ``--model`` the classifiers are trained first (not counted).

Caveat: the copies repeat the sample reports' sentences, so the embedding and
classification caches (keyed by sentence text) find most sentences already
encoded; ``unique sentences`` is printed, and the README gives the cost of a
corpus of distinct reports from the measured sentences per second.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import shutil
import sys
import tempfile
import time
import zlib
from base64 import a85decode
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.runner import run_all  # noqa: E402

# ReportLab's stream dictionaries hold no nested dictionary.
STREAM = re.compile(rb"<<(?P<dict>[^<>]*)>>\s*stream\r?\n(?P<data>.*?)\s*endstream", re.S)
OBJECT = re.compile(rb"(?m)^(\d+) 0 obj\b")


def _decode(info: bytes, data: bytes) -> bytes:
    if b"/ASCII85Decode" in info:
        data = a85decode(data.strip(), adobe=True) if data.strip().startswith(b"<~") \
            else a85decode(data.strip().removesuffix(b"~>"))
    if b"/FlateDecode" in info:
        data = zlib.decompress(data)
    return data


def rename_pdf(pdf: bytes, old: str, new: str) -> bytes:
    """The PDF with ``old`` replaced by ``new`` in every stream, re-encoded as Flate, and
    a fresh cross-reference table."""
    def restream(match: re.Match[bytes]) -> bytes:
        info = match.group("dict")
        data = _decode(info, match.group("data")).replace(old.encode("latin-1"),
                                                          new.encode("latin-1"))
        packed = zlib.compress(data)
        info = re.sub(rb"/Filter\s*(\[[^\]]*\]|/\w+)", b"", info)
        info = re.sub(rb"/Length\s+\d+", b"", info)
        return b"<<" + info + b" /Filter /FlateDecode /Length %d >>\nstream\n" % len(packed) \
            + packed + b"\nendstream"

    body = STREAM.sub(restream, pdf.split(b"xref\n")[0])
    body = body.replace(f"({old}".encode("latin-1"), f"({new}".encode("latin-1"))
    offsets = {int(m.group(1)): m.start() for m in OBJECT.finditer(body)}
    size = max(offsets) + 1
    xref = b"xref\n0 %d\n0000000000 65535 f \n" % size + b"".join(
        b"%010d 00000 n \n" % offsets.get(n, 0) for n in range(1, size))
    trailer = re.search(rb"trailer\s*<<.*?>>", pdf, re.S).group(0)
    return body + xref + trailer + b"\nstartxref\n%d\n%%%%EOF\n" % len(body)


def new_name(name: str, k: int) -> str:
    """A name of the same length as ``name`` for copy ``k`` (copy 0 keeps it)."""
    if k == 0:
        return name
    code = "".join(chr(97 + (k // 26 ** i) % 26) for i in (2, 1, 0))
    return name[:-3] + code


def build_corpus(folder: Path, n: int, start: int = 0) -> list[dict[str, str]]:
    """Reports ``start`` .. ``n - 1`` of the corpus in ``folder``; their manifest rows."""
    with (REPO / "data" / "sample" / "manifest.csv").open(encoding="utf-8") as fh:
        samples = list(csv.DictReader(fh))
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, n):
        sample = samples[i % len(samples)]
        k = i // len(samples)
        name = new_name(sample["partnership"], k)
        report_id = sample["report_id"] if k == 0 else f"{sample['report_id']}-{k:03d}"
        pdf = (REPO / "data" / "sample" / sample["file"]).read_bytes()
        (folder / f"{report_id}.pdf").write_bytes(
            pdf if k == 0 else rename_pdf(pdf, sample["partnership"], name))
        rows.append({**sample, "file": f"{report_id}.pdf", "report_id": report_id,
                     "partnership": name})
    return rows


def write_manifest(folder: Path, rows: list[dict[str, str]]) -> None:
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def peak_mb() -> tuple[float, float]:
    """(this process, largest worker process) peak resident memory in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def plain_pdfminer(pdfs: list[Path]) -> tuple[float, int]:
    from pdfminer.high_level import extract_text

    start, pages = time.perf_counter(), 0
    for pdf in pdfs:
        pages += extract_text(str(pdf)).count("\f") or 1
    return time.perf_counter() - start, pages


def run_once(pdfs: Path, out: Path, args: argparse.Namespace, model: Path) -> dict[str, float]:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    run_all(pdfs, out, focus="Midlothian", model_dir=model, labels=REPO / "data" / "labels",
            reference=REPO / "data" / "reference" / "official_evaluations.csv",
            keep_going=True, params_path=args.params, timings=timings)
    timings["total (train excluded)"] = time.perf_counter() - start - timings.get("train", 0)
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=20)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "classifier")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--baseline", type=int, default=7,
                    help="PDFs read with plain pdfminer for the speed comparison")
    ap.add_argument("--keep", type=Path, help="Build and run here instead of a temporary folder")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="scale-"))
    pdfs, out = work / "pdfs", work / "out"
    shutil.rmtree(work, ignore_errors=True)
    rows = build_corpus(pdfs, args.reports)
    write_manifest(pdfs, rows)
    model = args.model if args.model.exists() else work / "models"
    clean = run_once(pdfs, out, args, model)
    if not args.model.exists():
        model = out / "models"
    own, workers = peak_mb()
    rows += build_corpus(pdfs, args.reports + 1, start=args.reports)
    write_manifest(pdfs, rows)
    plus_one = run_once(pdfs, out, args, model)
    own2, workers2 = peak_mb()

    files = sorted(pdfs.glob("*.pdf"))
    plain_s, _ = plain_pdfminer(files[: args.baseline])
    pages = [len(json.loads((out / "extracted" / f"{p.stem}.json").read_text())["pages"])
             for p in files]
    extract_pages_per_s = sum(pages[: args.reports]) / clean["extract"]
    plain_pages_per_s = sum(pages[: args.baseline]) / plain_s
    unique = len({json.loads(x)["text"] for x in (out / "segments" / "segments.jsonl").open()})
    print(f"{args.reports} reports, {sum(pages[: args.reports])} pages, {unique} unique "
          f"sentences; model {model}")
    print(f"{'stage':24s} {'clean (s)':>10s} {'+1 report (s)':>14s}")
    for stage in [*clean]:
        print(f"{stage:24s} {clean[stage]:10.1f} {plus_one.get(stage, 0):14.1f}")
    share = plus_one["total (train excluded)"] / clean["total (train excluded)"]
    print(f"+1 report costs {share:.1%} of the clean run")
    print(f"extraction: {extract_pages_per_s:.1f} pages/s against plain pdfminer "
          f"{plain_pages_per_s:.1f} pages/s ({extract_pages_per_s / plain_pages_per_s:.2f}x)")
    print(f"peak memory: this process {max(own, own2):.0f} MB, largest worker "
          f"{max(workers, workers2):.0f} MB")


if __name__ == "__main__":
    main()
