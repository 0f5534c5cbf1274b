"""Time classifying one report from cold, phase by phase, and warm.

    python benchmarks/classify_speed.py [--model models/classifier]
                                        [--segments data/segments/segments.jsonl]
                                        [--report ID] [--n 400] [--batch-size 16]
                                        [--runs 3]

Each cold run is a fresh process (nothing cached in memory; the exported ONNX
files on disk are, as after a first use): it times importing the pipeline,
loading and verifying the models, creating the encoder session, encoding (the
sentences, their headings and clause spans, each distinct text once), and
predicting. Then, in the same process, a second, warm call of ``classify`` on
the same segments with an empty vector cache (the session is kept, every text is
encoded again). Prints per-phase seconds, the median over ``--runs`` cold runs
and sentences/s, with the machine's load average beside each run (the machine
may be shared). The report is the largest in the segments file unless
``--report`` names one; its first ``--n`` segments in file order are used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def report_rows(path: Path, report: str | None, n: int) -> list[dict]:
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row.get("report_id"))] = counts.get(str(row.get("report_id")), 0) + 1
    report = report or max(counts, key=counts.get)
    return [r for r in rows if str(r.get("report_id")) == report][:n]


def one_run(args: argparse.Namespace) -> dict:
    """One cold classification in this (fresh) process, then a warm one."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    sys.path.insert(0, str(REPO))
    from pipeline.classify.stage import classify, load_models
    from pipeline.embed import runtime
    from pipeline.train.segments import encode
    times["import"] = time.perf_counter() - start

    rows = report_rows(args.segments, args.report, args.n)
    t = time.perf_counter()
    models = load_models(args.model)
    times["load models"] = time.perf_counter() - t
    t = time.perf_counter()
    encoder = runtime.load(models.encoder, "cpu", models.precision)
    times["encoder session"] = time.perf_counter() - t
    encoder.batch_size = args.batch_size
    cache = models.frozen_encoder(None, "cpu")
    t = time.perf_counter()
    X = encode(rows, cache)
    times["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    models.classifier.predict_proba(X)
    times["predict"] = time.perf_counter() - t
    times["cold total"] = sum(times.values())
    t = time.perf_counter()
    classify(rows, models, models.frozen_encoder(None, "cpu"))
    times["warm classify"] = time.perf_counter() - t
    texts = {r["text"].strip() for r in rows}
    return {"times": times, "n": len(rows), "precision": models.precision,
            "distinct_texts": len(texts),
            "encoded": len(cache._vectors), "load": os.getloadavg()[0]}


def runtime_threads() -> int:
    sys.path.insert(0, str(REPO))
    from pipeline.embed.runtime import cpu_threads

    return cpu_threads()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "classifier")
    ap.add_argument("--segments", type=Path,
                    default=REPO / "data" / "segments" / "segments.jsonl")
    ap.add_argument("--report", default=None)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(args)))
        return
    argv = [sys.executable, __file__, "--child", "--model", str(args.model), "--segments",
            str(args.segments), "--n", str(args.n), "--batch-size", str(args.batch_size)]
    if args.report:
        argv += ["--report", args.report]
    results = []
    for k in range(args.runs):
        load_before = os.getloadavg()[0]
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        results.append(result)
        phases = "  ".join(f"{name} {sec:.2f}" for name, sec in result["times"].items())
        print(f"run {k + 1} (load {load_before:.2f}->{result['load']:.2f}): {phases}",
              flush=True)
    n = results[0]["n"]
    print(f"{n} segments, {results[0]['distinct_texts']} distinct sentences, "
          f"{results[0]['encoded']} vectors (sentences, headings, clauses), "
          f"batch {args.batch_size}, encoder {results[0]['precision']}, "
          f"{runtime_threads()} threads")
    for name in results[0]["times"]:
        med = statistics.median(r["times"][name] for r in results)
        print(f"  {name:18s} median {med:6.2f} s")
    cold = statistics.median(r["times"]["cold total"] for r in results)
    warm = statistics.median(r["times"]["warm classify"] for r in results)
    print(f"cold {cold:.2f} s ({n / cold:.1f} sentences/s), warm {warm:.2f} s "
          f"({n / warm:.1f} sentences/s)")


if __name__ == "__main__":
    main()
