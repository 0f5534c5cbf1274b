"""Time the classifier stages: train, evaluate, and classifying a report.

    python benchmarks/classifier.py   # train + evaluate stages, classify 400 sentences

Prints wall-clock seconds. The budgets: the train stage ideally under 8 minutes
on two cores; classifying a 400-sentence report under 20 s once the models are
loaded (the cold figure, median of three runs, encodes every sentence with the
models' encoder; the cached one reuses vectors as the pipeline's embed stage
provides them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.classify.stage import classify, load_models  # noqa: E402
from pipeline.evaluate import stage as evaluate  # noqa: E402
from pipeline.train.data import read_labels, source_neutrals  # noqa: E402
from pipeline.train.stage import train  # noqa: E402


def report_segments(labels: Path, sources: Path, n: int = 400) -> list[dict]:
    """A report-sized list of segments in file order, from the fictional reports."""
    rows = read_labels([labels])
    segments: list[dict] = []
    for rid in sorted({r["report_id"] for r in rows}):
        own = [r for r in rows if r["report_id"] == rid]
        segments += source_neutrals(own[:1], sources) + own
        if len(segments) >= n:
            break
    return [{"segment_id": f"b{i}", "report_id": "bench", "partnership": "Bench",
             "part": r.get("part"), "kind": r.get("kind"), "subsection": r.get("subsection"),
             "text": r["text"], "page": 1} for i, r in enumerate(segments[:n])]


def seconds(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    print(f"{label:58s} {time.perf_counter() - start:7.1f} s", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=REPO / "data" / "labels")
    ap.add_argument("--sources", type=Path, default=REPO / "data" / "sources")
    args = ap.parse_args()

    base = {"sources_dir": str(args.sources)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        timed("train stage (out-of-report predictions, final fit)",
              lambda: train([args.labels], out / "m1", base))
        metrics = timed("evaluate stage (scores, baselines, intervals)",
                        lambda: evaluate.run([args.labels], out / "m1", {}))
        models = timed("load models", lambda: load_models(out / "m1"))
        segments = report_segments(args.labels, args.sources)
        cold = []
        for k in range(3):
            cold.append(seconds(classify, segments, models))
            print(f"{f'classify {len(segments)} sentences (cold: encodes all), run {k + 1}':58s} "
                  f"{cold[-1]:7.1f} s", flush=True)
        print(f"{'classify cold, median of 3':58s} {statistics.median(cold):7.1f} s")
        from pipeline.classify.stage import models_encoder

        cache = models_encoder(models)  # the models' encoder at their precision
        cache.embed([s["text"] for s in segments])  # what the embed stage does ahead
        timed(f"classify a {len(segments)}-sentence report (sentence vectors cached)",
              lambda: classify(segments, models, cache))
    print(json.dumps(metrics["headline"], indent=1))


if __name__ == "__main__":
    main()
