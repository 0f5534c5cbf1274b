"""Measure the themes, benchmark and report stages on the labelled stand-in corpus.

The six fictional reports' gold labels (``data/labels``) stand in for the
classifier's output: fake page numbers (one per 12 sentences) and fake
``qi_scores`` are added. Midlothian has no labels and is not used.

    python benchmarks/report.py --focus Inverlarig --out /tmp/standin

prints: number of themes, outlier share, grade predictor leave-one-report-out
figures over all six reports (and with the focus held out), render time and
HTML size. Embeddings are cached in ``--cache`` (the first run encodes
about 1,200 sentences, about a minute on two cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pipeline.compare import benchmark
from pipeline.core.io import read_jsonl
from pipeline.embed.stage import EmbeddingCache
from pipeline.report import render as report
from pipeline.themes import stage as themes

ROOT = Path(__file__).resolve().parents[1]


def standin_segments() -> list[dict]:
    segments = []
    for path in sorted((ROOT / "data" / "labels").glob("*.labels.jsonl")):
        for i, row in enumerate(read_jsonl(path)):
            qi = row["qi"] if isinstance(row["qi"], list) else [row["qi"]]
            scores = {code: round(0.8 / (rank + 1), 3) for rank, code in enumerate(qi)}
            segments.append({**row, "segment_id": f"{row['report_id']}-{i:04d}",
                             "page": 2 + i // 12, "qi": qi, "qi_scores": scores})
    return segments


def standin_reports() -> list[dict]:
    reports = []
    for path in sorted((ROOT / "data" / "sources").glob("*.meta.json")):
        meta = json.loads(path.read_text())
        if not meta.get("fictional"):
            continue  # Midlothian: kept out of development runs
        reports.append({"report_id": meta["id"], "partnership": meta["partnership"],
                        "title": f"Joint inspection: {meta['partnership']}",
                        "published": meta["published"],
                        "programme": "2018-2020 care and protection",
                        "grades": meta["grades"], "fictional": True})
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--focus", default="Inverlarig")
    parser.add_argument("--out", type=Path, default=Path("/tmp/standin-report"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/standin-embeddings.npz"))
    args = parser.parse_args()

    segments = standin_segments()
    reports = standin_reports()
    cache = EmbeddingCache(args.cache)
    t0 = time.perf_counter()
    vectors = cache.embed([s["text"] for s in segments])
    cache.save()
    t_embed = time.perf_counter() - t0

    t0 = time.perf_counter()
    th = themes.build_themes(segments, vectors, None)
    t_themes = time.perf_counter() - t0
    th.pop("assignment")
    reference = benchmark.read_reference(ROOT / "data" / "reference" /
                                         "official_evaluations.csv")
    t0 = time.perf_counter()
    bench = benchmark.build_benchmark(segments, reports, th, reference, args.focus,
                                      None)
    t_bench = time.perf_counter() - t0
    # The predictor over all six reports, as it runs when the focus (Midlothian) is not one.
    _, all_six = benchmark.grade_section(segments, reports, "Midlothian",
                                         dict(benchmark.DEFAULTS))
    t0 = time.perf_counter()
    report.render(bench, th, segments, args.out)
    t_render = time.perf_counter() - t0

    html = args.out / "comparison.html"
    figures = {
        "segments": len(segments),
        "n_themes": th["n_themes"],
        "silhouette": th["k_selection"]["silhouette"],
        "outlier_share": th["outlier_share"],
        "grade_loro_all_six": all_six.get("loro"),
        "grade_loro_focus_held_out": bench["grade_predictor"].get("loro"),
        "focus_verdicts": {c["qi"]: c["verdict"] for c in bench["focus"]["comparison"]},
        "seconds": {"embed": round(t_embed, 2), "themes": round(t_themes, 2),
                    "benchmark": round(t_bench, 2), "render": round(t_render, 2)},
        "html_bytes": html.stat().st_size,
        "md_bytes": (args.out / "comparison.md").stat().st_size,
        "out": str(args.out),
    }
    print(json.dumps(figures, indent=1, default=lambda o: o.tolist()
                     if isinstance(o, np.ndarray) else str(o)))


if __name__ == "__main__":
    main()
