"""Label a queue in the terminal, one sentence at a time.

Each sentence is shown with its report, part and heading and the sentences either
side (a sentence read alone is often misread: "This was not the case for all
children" means nothing without the one before), with the models' guess as the
default answer, so that agreeing costs one key (Enter).

Keys: ``+ - ~ 0`` (or the sentiment's name) change the sentiment, a QI code (``5.3``,
``5.3,5.4`` or ``5.3 5.4``, main first) changes the QI, both may go on one line
(``- 6.4``); the changed answer is shown and Enter saves it. ``?`` lists the codes
with their titles, ``s`` skips, ``b`` goes back to the previous sentence of this
session, ``q`` quits. A mistyped code is refused and asked again.

Every answer rewrites the output file atomically, so Ctrl-C or a closed terminal
loses nothing; on restart the sentences already in the output file are skipped.
The output holds only answered rows, in the label file format (extra fields such as
``segment_id`` and the models' suggestion are ignored by the label reader).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.core.errors import InputError
from pipeline.core.io import numbered_jsonl, write_jsonl
from pipeline.core.schema import FRAMEWORK, QI_CODES, QI_TITLES, SENTIMENTS
from pipeline.train.data import CONTEXT_FIELDS, SENTIMENT_TAGS, text_key

KEPT_FIELDS = (*CONTEXT_FIELDS, "segment_id", "page")
KEYS_HELP = ("Enter accept · + - ~ 0 sentiment · QI code(s), e.g. 5.3 or 5.3,5.4 · "
             "? codes · s skip · b back · q quit")
_COMMANDS = {"s": "skip", "b": "back", "q": "quit", "?": "help"}


@dataclass(frozen=True)
class Step:
    """What one typed line means: an action, and the answer it leaves in place."""

    action: str  # save, skip, back, quit, help, edit, error
    qi: list[str] = field(default_factory=list)
    sentiment: str = ""
    error: str = ""


def parse_sentiment(token: str) -> str | None:
    value = SENTIMENT_TAGS.get(token, token.lower())
    return value if value in SENTIMENTS else None


def parse_qi(token: str) -> list[str] | None:
    """Codes of one token (``5.3`` or ``5.3,5.4``); None if any is unknown."""
    codes = [c.strip().lower() if c.strip().lower() == "none" else c.strip()
             for c in token.split(",") if c.strip()]
    return codes if codes and all(c in QI_CODES for c in codes) else None


def interpret(line: str, qi: Sequence[str], sentiment: str) -> Step:
    """The meaning of one typed line, given the answer shown (pure, so it is testable)."""
    text = line.strip()
    if not text:
        return Step("save", list(qi), sentiment)
    if text.lower() in _COMMANDS:
        return Step(_COMMANDS[text.lower()], list(qi), sentiment)
    new_qi: list[str] = []
    new_sentiment = sentiment
    for token in text.split():
        found = parse_sentiment(token)
        if found is not None:
            new_sentiment = found
            continue
        codes = parse_qi(token)
        if codes is None:
            return Step("error", list(qi), sentiment,
                        f"unknown QI code or sentiment {token!r} (type ? for the codes)")
        new_qi.extend(c for c in codes if c not in new_qi)
    return Step("edit", new_qi or list(qi), new_sentiment)


def _guess(row: Mapping[str, Any], path: Path, lineno: int) -> tuple[list[str], str]:
    qi = row.get("qi")
    qi = [qi] if isinstance(qi, str) else qi
    codes = parse_qi(",".join(qi)) if isinstance(qi, list) and qi and \
        all(isinstance(c, str) for c in qi) else None
    sentiment = parse_sentiment(row["sentiment"]) if isinstance(row.get("sentiment"), str) \
        else None
    if codes is None or sentiment is None:
        raise InputError(path, f"line {lineno}: needs a suggested 'qi' (known codes) and "
                               f"'sentiment' ({', '.join(SENTIMENTS)}); write it with "
                               "`inspections queue`")
    return codes, sentiment


def read_queue(path: Path) -> list[dict[str, Any]]:
    """Queue rows, each with a valid guess (``qi`` list, ``sentiment`` name)."""
    rows = []
    for lineno, row in numbered_jsonl(path):
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise InputError(path, f"line {lineno}: 'text' must be a non-empty string")
        qi, sentiment = _guess(row, Path(path), lineno)
        rows.append({**row, "text": row["text"].strip(), "qi": qi, "sentiment": sentiment})
    if not rows:
        raise InputError(path, "the queue is empty")
    return rows


def default_out(queue_path: Path) -> Path:
    """``queue.jsonl`` -> ``queue.labels.jsonl`` beside it."""
    queue_path = Path(queue_path)
    return queue_path.with_name(f"{queue_path.name.split('.')[0]}.labels.jsonl")


def read_done(path: Path) -> dict[str, dict[str, Any]]:
    """Rows already labelled in the output file, by text key (empty if none yet)."""
    if not Path(path).exists():
        return {}
    done: dict[str, dict[str, Any]] = {}
    for lineno, row in numbered_jsonl(path):
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise InputError(path, f"line {lineno}: 'text' must be a non-empty string")
        done[text_key(row["text"])] = row
    return done


def label_row(row: Mapping[str, Any], qi: Sequence[str], sentiment: str) -> dict[str, Any]:
    """The saved answer: a label row, with the models' suggestion kept for later study
    (how often the models were right on the sentences people chose to check)."""
    out: dict[str, Any] = {"text": row["text"], "qi": list(qi), "sentiment": sentiment}
    out.update({k: row[k] for k in KEPT_FIELDS if row.get(k) is not None})
    out["suggested_qi"] = list(row["qi"])
    out["suggested_sentiment"] = row["sentiment"]
    return out


# --- display ------------------------------------------------------------------------

def _title(code: str) -> str:
    return QI_TITLES.get(code, "No indicator" if code == FRAMEWORK.no_indicator else code)


def _answer_line(qi: Sequence[str], sentiment: str) -> str:
    codes = ", ".join(f"{c} ({_title(c)})" for c in qi)
    return f"answer: [bold]{sentiment}[/bold] · QI [bold]{escape(codes)}[/bold]"


def show(console: Console, row: Mapping[str, Any], number: int, total: int,
         qi: Sequence[str], sentiment: str) -> None:
    """One sentence with where it stands in its report and the models' reading."""
    where = " · ".join(str(row[k]) for k in ("partnership", "report_id") if row.get(k))
    heading = " / ".join(str(row[k]) for k in ("part", "subsection") if row.get(k))
    page = f" · page {row['page']}" if row.get("page") is not None else ""
    console.rule(escape(f"{number}/{total} · {where} · {heading}{page}"))
    if row.get("previous_sentence"):
        console.print(f"[dim]  … {escape(row['previous_sentence'])}[/dim]")
    console.print(f"[bold]» {escape(row['text'])}[/bold]")
    if row.get("next_sentence"):
        console.print(f"[dim]  … {escape(row['next_sentence'])}[/dim]")
    scores = row.get("suggested_scores") or {}
    if scores:
        sent = ", ".join(f"{k} {v:.2f}" for k, v in (scores.get("sentiment") or {}).items())
        qis = ", ".join(f"{k} {v:.2f}" for k, v in (scores.get("qi") or {}).items())
        console.print(f"[dim]model: {escape(sent)} · QI {escape(qis)}[/dim]")
    console.print(_answer_line(qi, sentiment))
    console.print(f"[dim]{KEYS_HELP}[/dim]")


def show_codes(console: Console) -> None:
    table = Table(title="QI codes (main first; two codes: 5.3,5.4)", show_edge=False)
    table.add_column("code")
    table.add_column("title")
    for code in QI_CODES:
        table.add_row(code, _title(code))
    console.print(table)
    tags = ", ".join(f"{tag} {name}" for tag, name in SENTIMENT_TAGS.items())
    console.print(f"sentiment: {escape(tags)}")


# --- the session --------------------------------------------------------------------

@dataclass
class Summary:
    saved: int = 0
    skipped: int = 0
    already: int = 0
    remaining: int = 0
    quit: bool = False


def run_session(
    queue: Sequence[Mapping[str, Any]],
    out_path: Path,
    console: Console,
    read: Callable[[str], str] | None = None,
) -> Summary:
    """Ask for each queued sentence not yet in ``out_path``; save after every answer.

    ``read`` reads one line (default: the console's input); end of input counts as
    ``q``, so a scripted session ends cleanly.
    """
    ask = read or console.input
    done = read_done(out_path)
    todo = [row for row in queue if text_key(row["text"]) not in done]
    summary = Summary(already=len(queue) - len(todo))
    if summary.already:
        console.print(f"{summary.already} of {len(queue)} queued sentences already labelled "
                      f"in {escape(str(out_path))}; carrying on with the rest.")
    answered: set[int] = set()
    pos = 0
    while 0 <= pos < len(todo):
        row = todo[pos]
        key = text_key(row["text"])
        previous = done.get(key)
        qi = list(previous["qi"]) if previous else list(row["qi"])
        sentiment = previous["sentiment"] if previous else row["sentiment"]
        show(console, row, pos + 1, len(todo), qi, sentiment)
        while True:
            try:
                line = ask("> ")
            except EOFError:
                line = "q"
            step = interpret(line, qi, sentiment)
            if step.action == "error":
                console.print(f"[red]{escape(step.error)}[/red]")
            elif step.action == "help":
                show_codes(console)
            elif step.action == "edit":
                qi, sentiment = step.qi, step.sentiment
                console.print(_answer_line(qi, sentiment) + " [dim](Enter saves)[/dim]")
            else:
                break
        if step.action == "quit":
            summary.quit = True
            break
        if step.action == "back":
            if pos == 0:
                console.print("[dim]this is the first sentence of this session[/dim]")
            pos = max(pos - 1, 0)
            continue
        if step.action == "save":
            done[key] = label_row(row, qi, sentiment)
            write_jsonl(out_path, done.values())
            answered.add(pos)
        else:
            summary.skipped += 1
        pos += 1
    summary.saved = len(answered)
    summary.remaining = sum(1 for row in queue if text_key(row["text"]) not in done)
    return summary
