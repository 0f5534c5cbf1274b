"""Time the classifier stages and, optionally, measure the fine-tuned encoder leave-one-report-out.

    python benchmarks/classifier.py                      # train stage + classify 400 sentences
    python benchmarks/classifier.py --finetune-steps 60  # also time a fine-tuned final fit
    python benchmarks/classifier.py --finetune-loro 60   # full LORO with fine-tuning per fold

Prints wall-clock seconds. The budgets: the final fit under 10 minutes and the
whole train stage ideally under 8 on two cores; classifying a 400-sentence
report under 20 s once the models are loaded (the cold figure, median of three
runs, encodes every sentence with the models' encoder; the cached one reuses
vectors as the pipeline's embed stage provides them). ``--finetune-loro``
fine-tunes the encoder inside every held-out fold for every seed (slow: about
six fine-tuning runs per seed) and prints its figures beside the frozen model's.
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
from pipeline.evaluate.protocol import evaluate_all, headline  # noqa: E402
from pipeline.train.data import read_labels, source_neutrals  # noqa: E402
from pipeline.train.stage import _params, model_predictor, train, training_rows  # noqa: E402
from pipeline.train.vectors import row_vectors  # noqa: E402


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
    ap.add_argument("--finetune-steps", type=int, default=0)
    ap.add_argument("--finetune-loro", type=int, default=0, metavar="STEPS")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()

    base = {"sources_dir": str(args.sources), "eval_seeds": args.seeds}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        metrics = timed("train stage (LORO: model + 2 baselines, final fit)",
                        lambda: train([args.labels], out / "m1", base, out / "metrics.json"))
        timed("final fit only (evaluate=False, internal-CV calibration)",
              lambda: train([args.labels], out / "m2", base, evaluate=False))
        if args.finetune_steps:
            timed(f"final fit with {args.finetune_steps} fine-tuning steps",
                  lambda: train([args.labels], out / "m3",
                                {**base, "finetune_steps": args.finetune_steps},
                                evaluate=False))
        model_dir = out / ("m3" if args.finetune_steps else "m1")
        models = timed("load models", lambda: load_models(model_dir))
        segments = report_segments(args.labels, args.sources)
        cold = []
        for k in range(3):
            cold.append(seconds(classify, segments, models))
            print(f"{f'classify {len(segments)} sentences (cold: encodes all), run {k + 1}':58s} "
                  f"{cold[-1]:7.1f} s", flush=True)
        print(f"{'classify cold, median of 3':58s} {statistics.median(cold):7.1f} s")
        from pipeline.embed.stage import EmbeddingCache

        cache = EmbeddingCache(None, models.encoder)
        cache.embed([s["text"] for s in segments])  # what the embed stage does ahead
        timed(f"classify a {len(segments)}-sentence report (sentence vectors cached)",
              lambda: classify(segments, models, cache))
    print(json.dumps(metrics["headline"], indent=1))

    if args.finetune_loro:
        params = _params({**base, "eval_finetune_steps": args.finetune_loro})
        rows = training_rows([args.labels], params)
        from pipeline.embed.stage import EmbeddingCache

        vectors = row_vectors(rows, EmbeddingCache(None, params["encoder"]))
        predictors = {
            "frozen": model_predictor(params, 0),
            f"finetuned_{args.finetune_loro}": model_predictor(params, args.finetune_loro),
        }
        results, _ = timed(
            "LORO with fine-tuning inside every fold",
            lambda: evaluate_all(rows, vectors, predictors, args.seeds,
                                 seeded=list(predictors)[1:], log=print))
        print(json.dumps({k: {"headline": headline(v),
                              "spread": {m: v[a][b]["std"] for m, (a, b) in
                                         (("sentiment_macro_f1", ("sentiment", "macro_f1")),
                                          ("qi_top1", ("qi", "top1")))}}
                          for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
