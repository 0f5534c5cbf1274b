"""The ``inspections`` command line: one sub-command per pipeline stage, plus ``run``.

DVC stages call these same commands, so a user's ad-hoc run and ``dvc repro`` go
through one code path. Heavy libraries are imported inside each command to keep
``inspections --help`` instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from pipeline.core import log as logs
from pipeline.core.errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark Scottish children's-services partnerships from their joint inspection reports.",
)
out_console = Console(highlight=False, soft_wrap=True)  # results only; messages: logging
log = logs.get_logger("cli")

F = TypeVar("F", bound=Callable[..., Any])

ParamsOpt = Annotated[
    Path | None,
    typer.Option("--params", help="params.yaml to read (default: ./params.yaml if present)."),
]
KeepGoing = Annotated[
    bool, typer.Option("--keep-going", help="Skip bad inputs, list them in errors.json, carry on.")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="Dask scheduler (tcp://HOST:8786) to send per-report tasks "
                                     "to (default: engine.scheduler; '' = local processes)."),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache", help="Folder of per-report results kept between runs (a report "
                                 "seen before with the same code and parameters is reused)."),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option("--device", help="auto, cpu or cuda (default: embed.device)."),
]


def _fail_cleanly(func: F) -> F:
    """Print an :class:`InputError` as one line on stderr and exit 1, without a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as err:
            log.error("%s", err)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            log.error("interrupted: outputs already written are intact")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _report_errors(errors: list[InputError]) -> None:
    for err in errors:
        log.warning("skipped: %s", err)


@app.callback()
def main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More messages (debug).")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors; no progress bars.")
    ] = False,
) -> None:
    """Benchmark Scottish children's-services partnerships from their joint inspection reports.

    Messages and progress go to stderr; -v shows more, -q only problems.
    """
    logs.setup(-1 if quiet else min(verbose, 1))


@app.command()
@_fail_cleanly
def params(
    params: ParamsOpt = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="The code's defaults, ignoring params.yaml.")
    ] = False,
) -> None:
    """Print every stage's parameters as YAML: the defaults overlaid with params.yaml."""
    import yaml

    from pipeline.core.params import read_params, resolve
    from pipeline.stages import all_defaults

    given = {} if defaults else read_params(params)
    shown = params or "params.yaml"
    effective: dict[str, Any] = {}
    if "data" in given:
        effective["data"] = given["data"]
    for name, values in all_defaults().items():
        effective[name] = resolve(name, values, given.get(name), shown)
    out_console.print(yaml.safe_dump(effective, sort_keys=False).rstrip(), markup=False)


def _section(name: str, defaults: dict[str, Any], params: Path | None) -> dict[str, Any]:
    from pipeline.core.params import section

    return section(name, defaults, params)


def _scheduler(given: str | None, params: Path | None) -> str:
    """``--scheduler`` when given, else ``engine.scheduler`` from params.yaml."""
    from pipeline.core import engine

    if given is not None:
        return given
    return str(_section("engine", engine.DEFAULTS, params)["scheduler"])


@app.command()
@_fail_cleanly
def extract(
    inputs: Annotated[list[Path], typer.Argument(help="PDF files or folders of PDFs.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <report_id>.json files.")],
    keep_going: KeepGoing = False,
    cache: CacheOpt = None,
    scheduler: SchedulerOpt = None,
    params: ParamsOpt = None,
) -> None:
    """Extract page text from report PDFs (reading order, no headers/footers), in parallel."""
    from pipeline.extract import stage

    errors = stage.extract_path(
        inputs, out, keep_going, _section("extract", stage.DEFAULTS, params), cache,
        _scheduler(scheduler, params),
    )
    _report_errors(errors)


@app.command()
@_fail_cleanly
def segment(
    inputs: Annotated[list[Path], typer.Argument(help="Extracted JSON files or their folder.")],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for segments.jsonl and reports.jsonl.")
    ],
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", help="Optional manifest.csv (report_id, fictional)."),
    ] = None,
    keep_going: KeepGoing = False,
    cache: CacheOpt = None,
    scheduler: SchedulerOpt = None,
    params: ParamsOpt = None,
) -> None:
    """Recover each report's structure and grades; one segment per sentence."""
    from pipeline.segment import stage

    rows = stage.read_manifest(manifest) if manifest else {}
    errors = stage.run(inputs, out, _section("segment", stage.DEFAULTS, params), keep_going, rows,
                       cache, _scheduler(scheduler, params))
    _report_errors(errors)


@app.command()
@_fail_cleanly
def embed(
    segments: Annotated[Path, typer.Argument(help="segments.jsonl")],
    out: Annotated[Path, typer.Option("--out", help="Embedding cache (.npz), updated in place.")],
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = None,
    params: ParamsOpt = None,
) -> None:
    """Sentence embeddings of every segment, cached by text hash."""
    from pipeline.embed import stage

    settings = _section("embed", stage.DEFAULTS, params)
    if device:
        settings["device"] = device
    n = stage.run(segments, out, settings, _scheduler(scheduler, params))
    log.info("embedded %d segments -> %s", n, out)


@app.command()
@_fail_cleanly
def train(
    labels: Annotated[list[Path], typer.Argument(help="Label JSONL files or folders of them.")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    evaluate: Annotated[
        bool,
        typer.Option("--evaluate/--no-evaluate",
                     help="Keep the leave-one-report-out predictions that `evaluate "
                          "--out-of-report` scores (made anyway when calibrating)."),
    ] = True,
    params: ParamsOpt = None,
) -> None:
    """Train the QI and sentiment classifiers on labelled sentences."""
    from pipeline.train import stage

    stage.train(labels, out, _section("train", stage.DEFAULTS, params), evaluate=evaluate)
    log.info("models -> %s", out)


@app.command()
@_fail_cleanly
def classify(
    segments: Annotated[Path, typer.Argument(help="segments.jsonl")],
    model: Annotated[Path, typer.Option("--model", help="Model folder from `inspections train`.")],
    out: Annotated[Path, typer.Option("--out", help="Classified segments (JSONL).")],
    embeddings: Annotated[
        Path | None,
        typer.Option("--embeddings", help="Embedding cache from `embed`, reused when given."),
    ] = None,
    cache: CacheOpt = None,
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = None,
    params: ParamsOpt = None,
) -> None:
    """Add QI and sentiment predictions (with scores) to every segment."""
    from pipeline.classify.stage import classify_file
    from pipeline.embed import stage as embed_stage

    chosen = device or _section("embed", embed_stage.DEFAULTS, params)["device"]
    n = classify_file(segments, model, out, embeddings, cache, _scheduler(scheduler, params),
                      chosen)
    log.info("classified %d segments -> %s", n, out)


@app.command()
@_fail_cleanly
def evaluate(
    labels: Annotated[list[Path], typer.Argument(help="Label JSONL files or folders of them.")],
    model: Annotated[Path, typer.Option("--model", help="Model folder from `inspections train`.")],
    out_of_report: Annotated[
        bool,
        typer.Option("--out-of-report",
                     help="LABELS are the models' training labels: score the leave-one-report-"
                          "out predictions `train` made for them, beside the baselines (the "
                          "DVC stage). Without it, LABELS must be of reports the models never "
                          "saw."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the figures here (JSON).")
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", help="Write each sentence's labels and predictions (JSONL)."),
    ] = None,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Folder for DVC plot data (--out-of-report).")
    ] = None,
    card: Annotated[
        Path | None, typer.Option("--card", help="Write MODEL_CARD.md here (--out-of-report).")
    ] = None,
    params: ParamsOpt = None,
) -> None:
    """Score the classifiers: on held-out labels, or leave-one-report-out on their own."""
    from rich.table import Table

    from pipeline.evaluate import held_out, stage

    settings = stage.settings(_section("evaluate", stage.DEFAULTS, params))
    if out_of_report:
        metrics = stage.run(labels, model, settings, out=out, plots_dir=plots, card=card,
                            predictions=predictions)
        scores, band = metrics["model"], metrics["intervals"]["model"]
        title = (f"leave-one-report-out: {metrics['n_labelled']} labelled sentences from "
                 f"{metrics['n_reports']} reports, models in {model}")
    else:
        if plots or card:
            raise typer.BadParameter("--plots and --card need --out-of-report")
        metrics = held_out.run(labels, model, settings, out=out, predictions=predictions)
        scores, band = metrics, metrics["intervals"]
        title = (f"{metrics['n_sentences']} labelled sentences from "
                 f"{len(metrics['reports'])} report(s), models in {model}")
    table = Table(title=title)
    for column in ("measure", "figure", f"{metrics['intervals']['level']:.0%} interval"):
        table.add_column(column)
    for line in held_out.summary_lines(scores, band):
        table.add_row(*line)
    out_console.print(table)


@app.command()
@_fail_cleanly
def queue(
    segments: Annotated[
        Path, typer.Argument(help="segments.jsonl, or classified segments (scores reused).")
    ],
    model: Annotated[Path, typer.Option("--model", help="Model folder from `inspections train`.")],
    out: Annotated[Path, typer.Option("--out", help="Queue to write (label file format).")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many sentences to queue.")] = 50,
    embeddings: Annotated[
        Path | None,
        typer.Option("--embeddings", help="Embedding cache from `embed`: avoids near-duplicates."),
    ] = None,
    labels: Annotated[
        list[Path] | None,
        typer.Option("--labels", help="Label files or folders whose sentences are skipped "
                                      "(repeatable)."),
    ] = None,
) -> None:
    """Queue the sentences whose labels would teach the models most (uncertain, varied)."""
    from pipeline.core.io import write_jsonl
    from pipeline.label import queue as label_queue
    from pipeline.label.marks import keys_from_label_files

    skip = keys_from_label_files(labels or []) | label_queue.training_keys(model)
    rows = label_queue.scored_segments(segments, model, embeddings)
    vectors = None
    if embeddings is not None:
        vectors = label_queue.load_vectors(embeddings, [r["text"] for r in rows])
    lines = label_queue.build_queue(rows, n, skip, vectors)
    write_jsonl(out, lines)
    reports = len({line.get("report_id") for line in lines})
    log.info("queued %d sentences from %d report(s) -> %s (label them: inspections label %s)",
             len(lines), reports, out, out)


@app.command()
@_fail_cleanly
def label(
    queue_file: Annotated[Path, typer.Argument(help="Queue from `inspections queue`.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Label file to write (default: <queue>.labels.jsonl)."),
    ] = None,
) -> None:
    """Label queued sentences one by one in the terminal; resumable, saved after each answer."""
    from pipeline.label import terminal

    rows = terminal.read_queue(queue_file)
    out = out or terminal.default_out(queue_file)
    if out.resolve() == queue_file.resolve():
        raise InputError(out, "is the queue itself: choose another --out for the labels")
    summary = terminal.run_session(rows, out, Console(highlight=False))
    log.info("%d labelled this time, %d skipped, %d still to label -> %s",
             summary.saved, summary.skipped, summary.remaining, out)


@app.command()
@_fail_cleanly
def themes(
    segments: Annotated[Path, typer.Argument(help="Classified segments (JSONL).")],
    embeddings: Annotated[Path, typer.Option("--embeddings", help="Embedding cache (.npz).")],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for themes.json and segment_themes.jsonl.")
    ],
    params: ParamsOpt = None,
) -> None:
    """Cluster segments into themes with readable labels."""
    from pipeline.themes import stage

    stage.run(segments, embeddings, out, _section("themes", stage.DEFAULTS, params))
    log.info("themes -> %s", out)


@app.command()
@_fail_cleanly
def compare(
    segments: Annotated[Path, typer.Argument(help="Classified segments (JSONL).")],
    reports: Annotated[Path, typer.Option("--reports", help="reports.jsonl from `segment`.")],
    themes_dir: Annotated[Path, typer.Option("--themes", help="Folder written by `themes`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for benchmark.json.")],
    focus: Annotated[
        str | None, typer.Option("--focus", help="Partnership to benchmark (default: params).")
    ] = None,
    reference: Annotated[
        Path | None, typer.Option("--reference", help="Official grades of real partnerships (CSV).")
    ] = Path("data/reference/official_evaluations.csv"),
    training_predictions: Annotated[
        Path | None,
        typer.Option("--training-predictions",
                     help="Out-of-report predictions from `evaluate --predictions`: the grade "
                          "predictor learns from these instead of the in-sample labels."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Folder kept between runs for the intervals' "
                                     "calibration (it depends on the parameters only)."),
    ] = None,
    params: ParamsOpt = None,
) -> None:
    """Benchmark the focus partnership against its peers (benchmark.json)."""
    from pipeline.compare import stage
    from pipeline.core.params import focus_name

    settings = _section("compare", stage.DEFAULTS, params)
    written = stage.run(
        segments,
        reports,
        themes_dir,
        out,
        settings,
        focus=focus_name(focus, params),
        reference=reference,
        training=training_predictions,
        cache=cache,
    )
    log.info("benchmark -> %s", written)


@app.command()
@_fail_cleanly
def report(
    benchmark: Annotated[Path, typer.Argument(help="benchmark.json from `compare`.")],
    segments: Annotated[Path, typer.Option("--segments", help="Classified segments (JSONL).")],
    themes_dir: Annotated[Path, typer.Option("--themes", help="Folder written by `themes`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the report and plot files.")],
    errors: Annotated[
        Path | None,
        typer.Option("--errors", help="errors.json of `segment`: the PDFs not analysed."),
    ] = None,
) -> None:
    """Write the comparison report (HTML and Markdown) and its plot files."""
    from pipeline.report import render as stage

    written = stage.run(benchmark, themes_dir / "themes.json", segments, out, errors)
    log.info("comparison report -> %s", written)


@app.command()
@_fail_cleanly
def run(
    pdf_dir: Annotated[
        Path, typer.Argument(help="Folder of report PDFs (optionally with manifest.csv).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for every stage's outputs.")],
    focus: Annotated[str | None, typer.Option("--focus", help="Partnership to benchmark.")] = None,
    model: Annotated[
        Path, typer.Option("--model", help="Trained models; trained from --labels when missing.")
    ] = Path("models/classifier"),
    labels: Annotated[
        Path, typer.Option("--labels", help="Labels to train from if needed.")
    ] = Path("data/labels"),
    reference: Annotated[Path | None, typer.Option("--reference")] = Path(
        "data/reference/official_evaluations.csv"
    ),
    keep_going: KeepGoing = False,
    scheduler: SchedulerOpt = None,
    params: ParamsOpt = None,
) -> None:
    """Run every stage on a folder of PDFs, outside DVC, into one output folder."""
    from pipeline import runner

    written = runner.run_all(
        pdf_dir,
        out,
        focus=focus,
        model_dir=model,
        labels=labels,
        reference=reference,
        keep_going=keep_going,
        params_path=params,
        warn=_report_errors,
        scheduler=scheduler,
    )
    log.info("comparison report -> %s", written)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
