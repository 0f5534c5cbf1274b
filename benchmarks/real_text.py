"""How the classifiers read real report wording: the real Midlothian report against its paraphrase.

    python benchmarks/real_text.py                     # ../shared beside the repository
    python benchmarks/real_text.py --shared PATH --model models/classifier

No real sentence is labelled (they are kept for evaluation), so this measures
consistency, not accuracy. The paraphrase in the sample corpus states the same
findings as the real report in new words. A model that has learned the findings,
not the fictional training text's wording, gives a real sentence and its
paraphrase the same labels. The script extracts and segments a real render
(``corpus/pdf/midlothian-2020-ci.pdf``) and the paraphrase's PDF, classifies
both, pairs each real segment with its closest paraphrase segment in the same
part (mutual best match by mpnet sentence vectors, cosine at least
``--min-sim``: the same pairs whichever model is measured), and prints, over
the pairs: agreement and Cohen's kappa for sentiment, main QI and QI area. Over
all segments it prints each side's predicted sentiment shares and the mean
absolute difference of the per-indicator net scores ((positive - negative) /
sentences), which is what the comparison report is built on.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.classify.stage import (  # noqa: E402
    classify,
    load_models,
    models_encoder,  # noqa: E402
)
from pipeline.compare.benchmark import cell_counts  # noqa: E402
from pipeline.core.schema import SENTIMENTS, qi_area  # noqa: E402
from pipeline.embed.stage import EmbeddingCache  # noqa: E402
from pipeline.extract.stage import extract_pdf  # noqa: E402
from pipeline.segment.stage import segment_report  # noqa: E402
from pipeline.train.features import part_group  # noqa: E402

ALIGN_ENCODER = "mpnet"


def segments_of(pdf: Path) -> list[dict]:
    _, rows = segment_report(extract_pdf(pdf))
    return rows


def mutual_pairs(a: list[dict], b: list[dict], va: np.ndarray, vb: np.ndarray,
                 min_sim: float) -> list[tuple[int, int, float]]:
    """(i, j, cosine) for segments that are each other's best match within one part."""
    pairs = []
    for part in sorted({part_group(r.get("part")) for r in a}):
        ia = [i for i, r in enumerate(a) if part_group(r.get("part")) == part]
        ib = [j for j, r in enumerate(b) if part_group(r.get("part")) == part]
        if not ia or not ib:
            continue
        sims = va[ia] @ vb[ib].T
        best_b, best_a = sims.argmax(axis=1), sims.argmax(axis=0)
        for k, i in enumerate(ia):
            j = best_b[k]
            if best_a[j] == k and sims[k, j] >= min_sim:
                pairs.append((i, ib[j], float(sims[k, j])))
    return pairs


def kappa(x: list[str], y: list[str]) -> float:
    """Cohen's kappa: agreement beyond what each side's label shares give by chance
    (1.0 where both sides give one and the same label throughout)."""
    if len(set(x) | set(y)) == 1:
        return 1.0
    return float(cohen_kappa_score(x, y))


def net_scores(rows: list[dict], min_n: int = 5) -> dict[str, float]:
    """Per-indicator net score of one report, as the benchmark stage counts it."""
    out: dict[str, float] = {}
    for cells in cell_counts(rows).values():
        for qi, c in cells.items():
            n = sum(c.values())
            if n >= min_n:
                out[qi] = (c["positive"] - c["negative"]) / n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--model", type=Path, default=REPO / "models" / "classifier")
    ap.add_argument("--real", default="midlothian-2020-ci.pdf")
    ap.add_argument("--paraphrase", type=Path,
                    default=REPO / "data" / "sample" / "s-midlothian.pdf")
    ap.add_argument("--min-sim", type=float, default=0.6)
    args = ap.parse_args()
    real_pdf = args.shared / "corpus" / "pdf" / args.real
    if not real_pdf.exists():
        sys.exit(f"{real_pdf}: not found (pass --shared)")

    started = time.perf_counter()
    models = load_models(args.model)
    cache = models_encoder(models)  # the models' encoder at their precision
    real, para = segments_of(real_pdf), segments_of(args.paraphrase)
    real_out, para_out = classify(real, models, cache), classify(para, models, cache)
    # pairs are always found with mpnet, so that models on other encoders meet the same pairs
    align = EmbeddingCache(None, ALIGN_ENCODER)
    vr = align([r["text"] for r in real])
    vp = align([r["text"] for r in para])
    pairs = mutual_pairs(real, para, vr, vp, args.min_sim)

    print(f"segments: real {len(real)}, paraphrase {len(para)}; pairs {len(pairs)} "
          f"(mutual best match in the same part, cosine >= {args.min_sim}; "
          f"median cosine {np.median([p[2] for p in pairs]):.2f})")
    fields = {
        "sentiment": lambda r: r["sentiment"],
        "QI main code": lambda r: r["qi"][0],
        "QI area": lambda r: qi_area(r["qi"][0]),
    }
    for name, get in fields.items():
        x = [get(real_out[i]) for i, _, _ in pairs]
        y = [get(para_out[j]) for _, j, _ in pairs]
        agree = np.mean([p == q for p, q in zip(x, y, strict=True)])
        print(f"{name:14s} agreement {agree:.3f}   kappa {kappa(x, y):.3f}")
    by_kind: dict[str, list[bool]] = {}
    for i, j, _ in pairs:
        kind = real_out[i].get("kind") or "?"
        by_kind.setdefault(kind, []).append(real_out[i]["sentiment"] == para_out[j]["sentiment"])
    print("sentiment agreement by kind: " + ", ".join(
        f"{k} {np.mean(v):.2f} (n={len(v)})" for k, v in sorted(by_kind.items())))
    for label, rows in (("real", real_out), ("paraphrase", para_out)):
        shares = Counter(r["sentiment"] for r in rows)
        print(f"predicted sentiment shares, {label:10s}: " + ", ".join(
            f"{s} {shares[s] / len(rows):.2f}" for s in SENTIMENTS))
    nr, npara = net_scores(real_out), net_scores(para_out)
    common = sorted(set(nr) & set(npara))
    diffs = [abs(nr[q] - npara[q]) for q in common]
    print(f"per-indicator net score, |real - paraphrase|: mean {np.mean(diffs):.2f}, "
          f"max {np.max(diffs):.2f} over {len(common)} indicators with 5+ segments each side")
    print(f"seconds: {time.perf_counter() - started:.0f}")


if __name__ == "__main__":
    main()
