"""Sentences per second of each encoder on the device ``embed.device`` selects.

    python benchmarks/encode_speed.py [--device auto|cpu|cuda] [--encoders minilm mpnet]
                                      [--sentences 2000] [--batch-size 16]

Encodes sample-report sentences (``data/labels``) once to warm up, then times a
full pass, and prints runtime, device and sentences/s per encoder. With a GPU
(``--device auto`` takes it) it also checks that the vectors agree with the
CPU's to within float tolerance (minimum cosine), which is what the pipeline
promises when it moves to a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.embed import runtime  # noqa: E402


def sentences(n: int) -> list[str]:
    texts: list[str] = []
    for path in sorted((REPO / "data" / "labels").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.open(encoding="utf-8") if line.strip()]
    return (texts * (n // max(len(texts), 1) + 1))[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=runtime.DEVICES)
    ap.add_argument("--encoders", nargs="+", default=["minilm", "mpnet"])
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    texts = sentences(args.sentences)
    backend, device = runtime.select_device(args.device)
    print(f"runtime {backend}, device {device}, {len(texts)} sentences, "
          f"batch {args.batch_size}")
    for name in args.encoders:
        encoder = runtime.load(name, args.device)
        encoder.encode(texts[:64], batch_size=args.batch_size)  # warm-up
        start = time.perf_counter()
        vectors, _ = encoder.encode(texts, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        line = f"{name:8s} {len(texts) / seconds:8.1f} sentences/s ({seconds:.1f} s)"
        if device == "cuda":
            cpu, _ = runtime._load(name, runtime.runtime(), "cpu").encode(
                texts[:256], batch_size=args.batch_size)
            cosine = float(np.min((cpu * vectors[:256]).sum(axis=1)))
            line += f"; min cosine against the CPU {cosine:.6f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
