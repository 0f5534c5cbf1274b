"""The model card: what the models were trained on, how they were measured, their limits.

Written by the evaluate stage from the model manifest's training facts and the
leave-one-report-out metrics, so the card and ``metrics/classifiers.json`` never
disagree.
"""

from __future__ import annotations

from typing import Any

from pipeline.evaluate.metrics import HEADLINE

_NAMES = {
    "model": "this model",
    "tfidf_lr": "baseline: TF-IDF + LR",
    "embedding_lr": "baseline: frozen encoder + LR",
}
ENCODER_NAMES = {
    "mpnet": "all-mpnet-base-v2 (768 dimensions)",
    "minilm": "all-MiniLM-L6-v2 (384 dimensions)",
}
_LABELS = {
    ("sentiment", "macro_f1"): "sentiment macro-F1",
    ("sentiment", "accuracy"): "sentiment accuracy",
    ("qi", "top1"): "QI top-1 (main code)",
    ("qi", "top3"): "QI top-3",
    ("qi", "top1_any"): "QI top-1 among annotator codes",
    ("qi", "area"): "QI area",
    ("qi", "macro_f1"): "QI macro-F1",
}


def _figures(metrics: dict[str, Any]) -> list[str]:
    names = [n for n in _NAMES if n in metrics]
    if not names:
        return [f"Not evaluated in this run. {metrics.get('note', '')}".strip(), ""]
    intervals = metrics.get("intervals", {}).get("model", {})
    lines = [
        "| measure | " + " | ".join(_NAMES[n] for n in names)
        + (f" | this model, {metrics['intervals'].get('level', 0.95):.0%} interval |"
           if intervals else " |"),
        "|---|" + "---|" * (len(names) + bool(intervals)),
    ]
    for key in HEADLINE:
        cells = []
        for n in names:
            cells.append(f"{metrics[n][key[0]][key[1]]:.3f}")
        if intervals:
            band = intervals.get(f"{key[0]}_{key[1]}")
            cells.append(f"{band['low']:.3f}–{band['high']:.3f}" if band else "")
        lines.append(f"| {_LABELS[key]} | " + " | ".join(cells) + " |")
    lines.append("")
    if intervals:
        lines += [
            "The interval is a percentile bootstrap over the held-out labelled sentences "
            f"({metrics['intervals'].get('resamples')} resamples): how far a figure could "
            "move on another draw of sentences like these. It does not cover a shift to "
            "real wording.", ""]
    lines.append("Per-class sentiment F1 (this model): " + ", ".join(
        f"{c} {v:.2f}" for c, v in metrics["model"]["sentiment"]["f1"].items()) + ".")
    if "context_neutral_rate" in metrics["model"]:
        lines.append(
            "Held-out introduction/context sentences predicted neutral: "
            f"{metrics['model']['context_neutral_rate']:.2f}."
        )
    bare = metrics.get("model_without_context")
    if bare:
        lines += ["", "Without context (the held-out sentences' part, kind and heading left "
                  "out, as for bare sentences or a report of another generation): "
                  f"sentiment macro-F1 {bare['sentiment']['macro_f1']:.3f}, accuracy "
                  f"{bare['sentiment']['accuracy']:.3f}; QI top-1 {bare['qi']['top1']:.3f}, "
                  f"among annotator codes {bare['qi']['top1_any']:.3f}, area "
                  f"{bare['qi']['area']:.3f}."]
    lines += ["", "Per held-out report (this model):", "",
              "| report | sentiment macro-F1 | sentiment accuracy | QI top-1 | QI area |",
              "|---|---|---|---|---|"]
    for report, vals in metrics["model"]["per_report"].items():
        lines.append(f"| {report} | {vals['sentiment_macro_f1']:.3f} | "
                     f"{vals['sentiment_accuracy']:.3f} | {vals['qi_top1']:.3f} | "
                     f"{vals['qi_area']:.3f} |")
    gaps = metrics.get("gap_vs_baselines", {})
    if gaps:
        lines += ["", "Gap to the baselines, per held-out report (mean ± spread, worst):", ""]
        for base, vals in gaps.items():
            parts = [f"{k.replace('_', ' ')} {v['mean']:+.3f} ± {v['std']:.3f} "
                     f"(worst {v['min']:+.3f})" for k, v in vals.items()]
            lines.append(f"- vs {_NAMES[base]}: " + "; ".join(parts))
    return lines + [""]


def finetuned(params: dict[str, Any], info: dict[str, Any],
              metrics: dict[str, Any]) -> str:
    """The card's line on the fine-tuned encoder: what it does, why it is there, the
    share it was given and what each half reads alone."""
    weight = info.get("finetune_weight", params.get("finetune_weight")) or 0
    if not params.get("finetune_weight"):
        return ("- Sentiment: no fine-tuned encoder (`train.finetune_weight: 0`); the "
                "regressions over the frozen vectors decide alone.")
    how = ("fitted, as the temperatures are, on the out-of-report predictions: the share "
           "whose blend has the lowest log-loss on a grid of 0.05"
           " (`train.fit_finetune_weight`)" if params.get("fit_finetune_weight")
           else "set in `train.finetune_weight`")
    line = (f"- Sentiment: {weight:.2f} of the probabilities come from all-MiniLM-L6-v2 "
            f"fine-tuned whole on the labelled sentences ({params.get('finetune_epochs')} "
            f"epochs; text only), {1 - weight:.2f} from the regressions, before the "
            f"temperature; the share is {how}. Why: the fine-tuned encoder learns the "
            "inspectorate's idiom from the labels, where the frozen vectors place polite "
            "shortfalls near praise. Alone it reads less well than the regressions, but its "
            "errors are different ones, and the blend gains where the two disagree. The "
            "out-of-report figures below include it: each held-out report is read by an "
            "encoder fine-tuned on the other reports only.")
    parts = metrics.get("sentiment_parts")
    if parts:
        line += " Sentiment accuracy / macro-F1 of each half alone and of the blend: " + "; ".join(
            f"{name} {parts[name]['accuracy']:.3f} / {parts[name]['macro_f1']:.3f}"
            for name in ("regressions", "finetuned", "blend")) + "."
    return line


def _class_count(metrics: dict[str, Any], name: str) -> str:
    count = (metrics.get("model", {}).get("sentiment", {}).get("support") or {}).get(name)
    return f"{count} of {metrics.get('n_labelled')}" if count is not None else "a small share"


def _misreadings(metrics: dict[str, Any]) -> list[str]:
    """The commonest confusions, read off the measurement (see ``metrics.misreadings``)."""
    found = metrics.get("misreadings")
    if not found:
        return ["Not measured in this run.", ""]
    lines = ["Sentiment (true → read as, sentences, share of that class):", ""]
    lines += [f"- {m['true']} → {m['predicted']}: {m['n']} ({m['share']:.0%})"
              for m in found["sentiment"]]
    lines += ["", "Main QI (true → read as):", ""]
    lines += [f"- {m['true']} → {m['predicted']}: {m['n']} ({m['share']:.0%})"
              for m in found["qi"]]
    return lines + ["", "Plain descriptions of a service read as praise and polite "
                    "shortfalls read as mixed or positive are the errors to watch on real "
                    "prose; check a sample of classified sentences before leaning on a "
                    "single indicator's score.", ""]


def render_card(metrics: dict[str, Any], info: dict[str, Any]) -> str:
    """The card's Markdown from the evaluate stage's metrics and the manifest's info."""
    params = info.get("params", {})
    encoder = ENCODER_NAMES.get(params.get("encoder"), str(params.get("encoder")))
    stack = (
        "- Sentiment is decided in two stages (stacked generalisation). The first stage "
        "reads the features above. The second reads them again beside the first stage's "
        "probabilities for the previous and next sentence and for the first and last "
        "clause of a contrastive sentence ('While X, Y', 'X, but Y'), and their clash. "
        "A clause's vector is its tokens pooled out of the whole sentence's pass. "
        "Its training inputs are out-of-report first-stage predictions. Neutral keeps the "
        "first stage's probability."
        if params.get("stack") else "- One sentiment stage (`train.stack` is off)."
    )
    lines = [
        "# Model card: QI and sentiment classifiers",
        "",
        "Calibrated logistic regressions that label each sentence of a joint inspection "
        "report with the quality indicator it speaks about (20 codes + `none`, ranked) and its "
        "sentiment (positive, negative, mixed, neutral).",
        "",
        "## Training data",
        "",
        f"- {info.get('n_labelled')} hand-labelled sentences from the evaluative parts of "
        f"{len(info.get('reports', []))} fictional reports ({', '.join(info.get('reports', []))}).",
        f"- {info.get('n_context_neutral')} unlabelled sentences of the same reports as "
        "neutral (the labelled parts hold almost no neutral sentences): those of the "
        "introduction, context and 'What happens next' sections, as QI `none`, and each "
        "conclusion's lead-in to its reasons ('This is based on:') where it judges nothing, "
        "as QI 10.1, as the annotators labelled the two lead-ins they labelled.",
        "- How the training sentences are made: the labelled sentences are taken as the "
        "label files give them; the neutral ones are cut from the fictional reports' "
        "markdown sources by the same sentence splitter that cuts the reports the models "
        "classify (`pipeline.core.sentences`, spaCy's sentencizer with the reports' "
        "abbreviations and names mended), so training and production read the same unit.",
        "- No real report text: the Midlothian report and its paraphrase are never read.",
        "",
        "## Features",
        "",
        f"- Sentence vectors: {encoder}, frozen.",
        "- Context: report part (which inspection question, summary, conclusion, appendix), "
        "kind (strength, priority, key message, body, rationale), the subsection heading's "
        "vector, the neighbouring sentences' mean vector, the mean vector of the sentence's "
        "block, and for Appendix 1 which graded QI the rationale belongs to.",
        "- Cue words: the standard quantity terms (few, less than half, the majority, most, "
        "almost all) and their interaction with problem words, concession patterns "
        "('While X, Y', but, however, although), negation, 'not yet', need/should, "
        "percentages.",
        "- TF-IDF of words and word pairs.",
        stack,
        *(["- Segments without a known part are scored by a second model, trained on "
           "the same sentences with part, kind and heading left out, since the first model "
           "leans on those fields (`train.bare_model`; figures under 'Without context' "
           "below)."]
          if params.get("bare_model") else []),
        f"- QI targets: main code weight 1, second code {params.get('second_code_weight')}, "
        f"{params.get('area_smoothing')} spread over the main code's other area codes "
        "(label smoothing over areas); each row weighted by its main code's frequency "
        f"to the power -{params.get('qi_balance')} (against the mean code's), which loosens "
        "the pull toward the commonest code, 2.1. A second code is listed when its calibrated "
        f"probability is at least {params.get('second_code_threshold')}.",
        f"- Calibration: one temperature per model, fitted on {info.get('calibration')} "
        f"(sentiment {info.get('sentiment_temperature')}, QI {info.get('qi_temperature')}"
        + ("; the model without context: sentiment {}, QI {}".format(*info["bare_temperatures"])
           if info.get("bare_temperatures") else "") + ").",
        finetuned(params, info, metrics),
        "",
        "## Figures (leave-one-report-out on the fictional reports)",
        "",
        f"Protocol: {metrics.get('protocol', 'not evaluated')}. "
        f"Encoder in the evaluation folds: {metrics.get('model_encoder', '')}. "
        "The train stage makes the model's out-of-report predictions (one fit per held-out "
        "report, scikit-learn's `LeaveOneGroupOut` over report ids) and fits the "
        "temperatures on them; the evaluate stage scores them and fits the baselines on "
        "the same folds. Every model here is deterministic, so one run is the figure; the "
        "spread across held-out reports below is the telling uncertainty.",
        "",
        *_figures(metrics),
        "## Known misreadings (leave-one-report-out)",
        "",
        *_misreadings(metrics),
        "## Known limits",
        "",
        f"- Trained on {len(info.get('reports', []))} fictional reports written for this "
        "project; real reports are longer-winded and more specific. Expect lower figures "
        "on real text than above: the reports written in the inspectorate's own idiom "
        "(polite shortfalls, plain descriptions) are the closer guide, and the per-report "
        "table shows them apart.",
        f"- Neutral is {_class_count(metrics, 'neutral')} labelled sentences, almost all "
        "in the reports written in the inspectorate's idiom, where they are 13% of the "
        "evaluative sentences; real reports hold fewer (2-3%), so expect neutral's "
        "precision on real text to be lower than its figure here.",
        "- Only the 2018-2020 report structure (five questions, Appendix 1) is known to the "
        "context features; segments of other generations, whose parts it does not name, are "
        "read by the model trained without context (see 'Without context' above).",
        "- To measure the models on real text, label sentences of a report they were not "
        "trained on and run `inspections evaluate LABELS --model models/classifier`.",
        "- The Appendix 1 rationales for 2.1 and 2.2 share a heading; the model tells them "
        "apart by wording and neighbours, or by an explicit '2.2 Impact on families' segment "
        "where the segmenter keeps one.",
        "- Plain descriptions of a service or a group are the commonest misreading (read as "
        "positive; see above). A prior shift of the neutral class (`train.neutral_prior`) "
        "was measured leave-one-report-out and did not help: it lost as many true findings "
        "as it saved descriptions.",
        "- Speed: on two CPU cores, classifying a new 400-sentence report from cold takes "
        f"about {'8.4' if params.get('encoder_precision') == 'int8' else '12.7'} s "
        f"(encoder at {params.get('encoder_precision', 'fp32')}; where the installed "
        "onnxruntime quantises mpnet well, the int8 encoder gives vectors at cosine 0.99 to "
        "fp32's and leave-one-report-out figures within 0.003 of them, 8.4 s against 12.7 s; "
        "an int8 file that does not is refused when it is made). "
        "`train.encoder: minilm` is faster still and "
        "0.03-0.04 less accurate on sentiment (see the README's measured figures).",
        "- Labels are one writer's; a second annotator agreed on about 97% of sentiments and "
        "85% of main QIs, which caps what any model can show.",
        "",
    ]
    return "\n".join(lines)
