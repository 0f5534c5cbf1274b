"""Sentences per second of each encoder on CPU and GPU, and whether the GPU's vectors
are the CPU's.

    python benchmarks/encode_speed.py [--devices cpu cuda] [--encoders minilm mpnet]
                                      [--sentences 2000] [--batch-sizes 16 64]
                                      [--stage] [--json OUT.json]

Encodes sample-report sentences (``data/labels``) once to warm up, then times a full
pass per device and batch size, and prints runtime, device and sentences/s. Every
device's vectors are compared with the first device's (by default the CPU's ONNX
Runtime, what the pipeline runs without a GPU) on the same sentences: minimum and
mean cosine, and the largest absolute difference, which is what the pipeline
promises when it moves to a GPU ("the same vectors to within float tolerance").
``--stage`` also runs the embed stage itself (``embed.run``) with ``device: cpu``
and ``device: cuda`` on the same segments and compares the caches, so the path the
pipeline takes is checked, not only the encoder. Without a GPU, ``cuda`` is skipped
with a note.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.embed import runtime  # noqa: E402

SETUPS = {
    "cpu": lambda: runtime.select_device("cpu"),
    "cpu-torch": lambda: ("torch", "cpu"),
    "cuda": lambda: runtime.select_device("cuda"),
}


def sentences(n: int) -> list[str]:
    texts: list[str] = []
    for path in sorted((REPO / "data" / "labels").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.open(encoding="utf-8") if line.strip()]
    return (texts * (n // max(len(texts), 1) + 1))[:n]


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Cosines (the vectors are unit length) and the largest element difference."""
    cosine = (a * b).sum(axis=1) / np.clip(
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12, None)
    return {"min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean()),
            "max_abs_diff": float(np.abs(a - b).max())}


def timed(encoder, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    encoder.encode(texts[:64], batch_size=batch_size)  # warm-up (graph build, CUDA context)
    start = time.perf_counter()
    vectors, _ = encoder.encode(texts, batch_size=batch_size)
    _synchronise()
    return vectors, time.perf_counter() - start


def _synchronise() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:  # pragma: no cover
        pass


def stage_check(name: str, texts: list[str], batch_size: int) -> dict[str, float]:
    """The embed stage run on CPU and on CUDA over the same segments: do the caches agree?"""
    from pipeline.embed import stage
    from pipeline.embed.stage import EmbeddingCache

    with tempfile.TemporaryDirectory() as tmp:
        segments = Path(tmp) / "segments.jsonl"
        unique = sorted(set(texts))
        segments.write_text("".join(json.dumps({"segment_id": f"s{i}", "report_id": "r",
                                                "text": t}) + "\n"
                                    for i, t in enumerate(unique)), encoding="utf-8")
        vectors = {}
        for device in ("cpu", "cuda"):
            out = Path(tmp) / f"{device}.npz"
            start = time.perf_counter()
            stage.run(segments, out, {"encoder": name, "device": device,
                                      "batch_size": batch_size})
            seconds = time.perf_counter() - start
            vectors[device] = EmbeddingCache(out, name, "cpu").embed(unique)
            print(f"  embed stage, device {device}: {len(unique)} segments in {seconds:.1f} s "
                  f"(model load included)", flush=True)
        return agreement(vectors["cpu"], vectors["cuda"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=list(SETUPS),
                    help="cpu: ONNX Runtime (the default runtime); cpu-torch: PyTorch on the "
                         "CPU; cuda: what embed.device cuda selects")
    ap.add_argument("--encoders", nargs="+", default=["minilm", "mpnet"])
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[16])
    ap.add_argument("--stage", action="store_true", help="also run the embed stage on both")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    texts = sentences(args.sentences)
    devices = [d for d in args.devices if d != "cuda" or runtime.cuda_available()]
    if len(devices) < len(args.devices):
        print("no CUDA device: cuda skipped")
    results: list[dict] = []
    for name in args.encoders:
        reference = None
        for device in devices:
            backend, chosen = SETUPS[device]()
            try:
                encoder = runtime._load(name, backend, chosen)
            except Exception as err:  # noqa: BLE001 - report and go on to the next device
                print(f"{name} {backend} {chosen}: cannot load ({type(err).__name__}: {err})")
                continue
            for batch_size in args.batch_sizes:
                vectors, seconds = timed(encoder, texts, batch_size)
                row = {"encoder": name, "runtime": backend, "device": chosen,
                       "batch_size": batch_size, "sentences": len(texts),
                       "sentences_per_s": round(len(texts) / seconds, 1)}
                if reference is None:
                    reference = vectors
                else:
                    row.update(agreement(reference, vectors))
                results.append(row)
                cmp = (f"; cosine to the first min {row['min_cosine']:.7f} mean "
                       f"{row['mean_cosine']:.7f}, max |diff| {row['max_abs_diff']:.2e}"
                       if "min_cosine" in row else "")
                print(f"{name:7s} {backend:5s} {chosen:5s} batch {batch_size:4d} "
                      f"{row['sentences_per_s']:9.1f} sentences/s{cmp}", flush=True)
        if args.stage and "cuda" in devices:
            try:
                row = {"encoder": name, "check": "embed stage cpu vs cuda",
                       **stage_check(name, texts, args.batch_sizes[0])}
            except Exception as err:  # noqa: BLE001
                print(f"{name}: embed stage check failed ({type(err).__name__}: {err})")
                continue
            print(f"  embed stage caches, cpu against cuda: min cosine {row['min_cosine']:.6f}, "
                  f"max |diff| {row['max_abs_diff']:.2e}", flush=True)
            results.append(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
