"""Charts for the comparison report: hand-made inline SVG for the HTML, PNG for the rest.

Why hand-made SVG in the page: a few rectangles and circles per chart come to
a few kilobytes, the text stays real text (selectable, searchable, in the
page's font) and nothing is fetched. The PNG twins (for ``comparison.md``
and ``dvc plots``) are drawn with matplotlib from the same row data.

Every label passed in is untrusted text: it is escaped here.
"""

from __future__ import annotations

import io
from html import escape
from pathlib import Path
from typing import Any

from pipeline.core.io import atomic_write

FOCUS = "#1f5fa8"
PEER = "#8a8f98"
BAND = "#e3e6ea"
GRID = "#d5d9de"
SENTIMENT_COLOURS = {
    "positive": "#2e7d32",
    "negative": "#c62828",
    "mixed": "#e0a100",
    "neutral": "#9e9e9e",
}
VERDICT_COLOURS = {"above": "#2e7d32", "below": "#c62828"}
FONT = "font-family:inherit;font-size:12px"

WIDTH = 720
ROW = 24


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v - round(v)) > 1e-9 else str(int(round(v)))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


class _Frame:
    """Shared layout: labels on the left, a linear x axis, one row per item."""

    def __init__(self, n_rows: int, lo: float, hi: float, label_w: int, right_w: int,
                 top: int = 40):
        self.lo, self.hi = lo, hi
        self.left = label_w
        self.right = WIDTH - right_w
        self.top = top
        self.height = top + n_rows * ROW + 12

    def x(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        return round(self.left + (v - self.lo) / (self.hi - self.lo) * (self.right - self.left), 1)

    def y(self, i: int) -> float:
        return self.top + i * ROW + ROW / 2

    def open(self, title: str, desc: str) -> list[str]:
        return [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {self.height}" '
            f'role="img" class="chart" style="{FONT}">',
            f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
        ]

    def axis(self, ticks: list[float], fmt=_fmt, zero: float | None = None) -> list[str]:
        out = []
        bottom = self.height - 12
        for t in ticks:
            x = self.x(t)
            colour = "#6b7280" if zero is not None and t == zero else GRID
            out.append(f'<line x1="{x}" y1="{self.top - 6}" x2="{x}" y2="{bottom}" '
                       f'stroke="{colour}" stroke-width="1"/>')
            out.append(f'<text x="{x}" y="{self.top - 10}" text-anchor="middle" '
                       f'fill="#4b5563">{escape(fmt(t))}</text>')
        return out


def _legend(items: list[tuple[str, str]], y: int = 14, x0: int = 8) -> list[str]:
    """Legend swatches in one line: (svg shape markup at origin, label)."""
    out, x = [], x0
    for shape, label in items:
        out.append(f'<g transform="translate({x},{y})">{shape}'
                   f'<text x="14" y="4">{escape(label)}</text></g>')
        x += 24 + 7 * len(label)
    return out


def forest_svg(rows: list[dict[str, Any]], reference: float | None, title: str,
               reference_label: str = "peer median") -> str:
    """One indicator: each partnership's net score with its interval.

    rows: ``label``, ``net``, ``lo``, ``hi``, ``focus`` (bool), ``thin`` (bool).
    """
    f = _Frame(len(rows), -1.0, 1.0, label_w=250, right_w=56)
    desc = "; ".join(f"{r['label']}: net {r['net']:+.2f}" for r in rows)
    out = f.open(title, desc)
    out += f.axis([-1, -0.5, 0, 0.5, 1], fmt=lambda t: f"{t:+.1f}" if t else "0", zero=0)
    if reference is not None:
        x = f.x(reference)
        out.append(f'<line x1="{x}" y1="{f.top - 4}" x2="{x}" y2="{f.height - 12}" '
                   f'stroke="{PEER}" stroke-dasharray="4 3" stroke-width="1.5"/>')
    for i, r in enumerate(rows):
        y = f.y(i)
        colour = FOCUS if r.get("focus") else PEER
        weight = "bold" if r.get("focus") else "normal"
        if r.get("focus"):
            out.append(f'<rect x="0" y="{y - ROW / 2 + 1}" width="{WIDTH}" height="{ROW - 2}" '
                       'fill="#eef4fb"/>')
        out.append(f'<text x="{f.left - 10}" y="{y + 4}" text-anchor="end" '
                   f'font-weight="{weight}" fill="#111827">{escape(_clip(r["label"], 38))}'
                   f"<title>{escape(r['label'])}</title></text>")
        if r.get("lo") is not None and r.get("hi") is not None:
            out.append(f'<line x1="{f.x(r["lo"])}" y1="{y}" x2="{f.x(r["hi"])}" y2="{y}" '
                       f'stroke="{colour}" stroke-width="2"/>')
        fill = "white" if r.get("thin") else colour
        out.append(f'<circle cx="{f.x(r["net"])}" cy="{y}" r="5" fill="{fill}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{WIDTH - 6}" y="{y + 4}" text-anchor="end" '
                   f'font-weight="{weight}" fill="#111827">{r["net"]:+.2f}</text>')
    if reference is not None:
        out += _legend([(f'<line x1="0" y1="0" x2="10" y2="0" stroke="{PEER}" '
                         'stroke-dasharray="4 3" stroke-width="1.5"/>', reference_label),
                        (f'<circle cx="5" cy="0" r="4" fill="white" stroke="{PEER}" '
                         'stroke-width="2"/>', "thin evidence")], y=10)
    out.append("</svg>")
    return "".join(out)


def profile_svg(items: list[dict[str, Any]], focus_label: str) -> str:
    """All indicators: the focus's net (with interval) against the peers' median and range.

    items: ``label``, ``net``/``lo``/``hi`` (focus, may be None), ``peer_median``,
    ``peer_min``, ``peer_max``, ``verdict``, ``thin``.
    """
    f = _Frame(len(items), -1.0, 1.0, label_w=320, right_w=70, top=48)
    desc = "; ".join(
        f"{it['label']}: {focus_label} "
        + (f"{it['net']:+.2f}" if it.get("net") is not None else "no data")
        + (f", peer median {it['peer_median']:+.2f}" if it.get("peer_median") is not None
           else "")
        for it in items)
    out = f.open(f"{focus_label} against peers, net score by indicator", desc)
    out += _legend([
        (f'<rect x="0" y="-5" width="10" height="10" fill="{BAND}"/>', "peers' range"),
        (f'<path d="M5 -5 L10 0 L5 5 L0 0 Z" fill="{PEER}"/>', "peer median"),
        (f'<circle cx="5" cy="0" r="4" fill="{FOCUS}"/>', f"{focus_label} (with interval)"),
    ], y=12)
    out += f.axis([-1, -0.5, 0, 0.5, 1], fmt=lambda t: f"{t:+.1f}" if t else "0", zero=0)
    for i, it in enumerate(items):
        y = f.y(i)
        label = (f'<text x="{f.left - 10}" y="{y + 4}" text-anchor="end" fill="#111827">'
                 f"{escape(_clip(it['label'], 44))}<title>{escape(it['label'])}</title></text>")
        if it.get("href"):
            label = f'<a href="{escape(it["href"])}">{label}</a>'
        out.append(label)
        if it.get("peer_min") is not None and it.get("peer_max") is not None:
            x0, x1 = f.x(it["peer_min"]), f.x(it["peer_max"])
            out.append(f'<rect x="{x0 - 3}" y="{y - 6}" width="{round(x1 - x0 + 6, 1)}" '
                       f'height="12" rx="3" fill="{BAND}"/>')
        if it.get("peer_median") is not None:
            x = f.x(it["peer_median"])
            out.append(f'<path d="M{x} {y - 6} L{x + 6} {y} L{x} {y + 6} L{x - 6} {y} Z" '
                       f'fill="{PEER}"/>')
        if it.get("net") is not None:
            if it.get("lo") is not None:
                out.append(f'<line x1="{f.x(it["lo"])}" y1="{y}" x2="{f.x(it["hi"])}" '
                           f'y2="{y}" stroke="{FOCUS}" stroke-width="2"/>')
            fill = "white" if it.get("thin") else FOCUS
            out.append(f'<circle cx="{f.x(it["net"])}" cy="{y}" r="5" fill="{fill}" '
                       f'stroke="{FOCUS}" stroke-width="2"/>')
        verdict = it.get("verdict")
        if verdict in VERDICT_COLOURS:
            out.append(f'<text x="{WIDTH - 6}" y="{y + 4}" text-anchor="end" font-weight="bold" '
                       f'fill="{VERDICT_COLOURS[verdict]}">{escape(verdict)}</text>')
    out.append("</svg>")
    return "".join(out)


def theme_svg(items: list[dict[str, Any]], focus_label: str) -> str:
    """Each theme's share of the focus's segments (split by sentiment) against the peers' mean.

    items: ``label``, ``parts`` (sentiment -> share), ``peer_mean``.
    """
    top = max([sum(it["parts"].values()) for it in items] + [it["peer_mean"] for it in items]
              + [0.01])
    hi = min(1.0, top * 1.1)
    f = _Frame(len(items), 0.0, hi, label_w=300, right_w=50, top=48)
    desc = "; ".join(f"{it['label']}: {sum(it['parts'].values()):.0%} of {focus_label}, "
                     f"peers {it['peer_mean']:.0%}" for it in items)
    out = f.open(f"Themes: share of {focus_label}'s segments against the peers' mean", desc)
    out += _legend([(f'<rect x="0" y="-5" width="10" height="10" fill="{c}"/>', s)
                    for s, c in SENTIMENT_COLOURS.items()]
                   + [('<line x1="5" y1="-7" x2="5" y2="7" stroke="#111827" stroke-width="2"/>',
                       "peers' mean")], y=12)
    step = 0.05 if hi <= 0.3 else 0.1
    ticks = [round(k * step, 2) for k in range(int(hi / step) + 1)]
    out += f.axis(ticks, fmt=lambda t: f"{t:.0%}")
    for i, it in enumerate(items):
        y = f.y(i)
        out.append(f'<text x="{f.left - 10}" y="{y + 4}" text-anchor="end" fill="#111827">'
                   f"{escape(_clip(it['label'], 46))}<title>{escape(it['label'])}</title></text>")
        x = f.left
        for sentiment, colour in SENTIMENT_COLOURS.items():
            share = it["parts"].get(sentiment, 0.0)
            if share <= 0:
                continue
            w = f.x(share) - f.left
            out.append(f'<rect x="{round(x, 1)}" y="{y - 7}" width="{round(w, 1)}" height="14" '
                       f'fill="{colour}"><title>{escape(sentiment)}: {share:.1%}</title></rect>')
            x += w
        px = f.x(it["peer_mean"])
        out.append(f'<line x1="{px}" y1="{y - 10}" x2="{px}" y2="{y + 10}" stroke="#111827" '
                   'stroke-width="2"/>')
        total = sum(it["parts"].values())
        out.append(f'<text x="{WIDTH - 6}" y="{y + 4}" text-anchor="end" fill="#111827">'
                   f"{total:.0%}</text>")
    out.append("</svg>")
    return "".join(out)


# --- PNG twins (matplotlib) -----------------------------------------------------------

def _save_png(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    # No timestamp metadata, so the same data give the same bytes (DVC sees no change).
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def profile_png(items: list[dict[str, Any]], focus_label: str, path: Path) -> None:
    plt = _pyplot()
    n = len(items)
    fig, ax = plt.subplots(figsize=(8.5, 0.34 * n + 1.3))
    for i, it in enumerate(items):
        y = n - 1 - i
        if it.get("peer_min") is not None:
            ax.plot([it["peer_min"], it["peer_max"]], [y, y], color=BAND, lw=9,
                    solid_capstyle="round", zorder=1)
        if it.get("peer_median") is not None:
            ax.scatter([it["peer_median"]], [y], marker="D", color=PEER, s=30, zorder=2)
        if it.get("net") is not None:
            if it.get("lo") is not None:
                ax.plot([it["lo"], it["hi"]], [y, y], color=FOCUS, lw=1.8, zorder=3)
            ax.scatter([it["net"]], [y], color="white" if it.get("thin") else FOCUS,
                       edgecolors=FOCUS, s=36, zorder=4, linewidths=1.5)
    ax.set_yticks(range(n))
    ax.set_yticklabels([_clip(it["label"], 46) for it in reversed(items)], fontsize=8)
    ax.set_xlim(-1.05, 1.05)
    ax.axvline(0, color="#6b7280", lw=0.8)
    ax.set_xlabel("net score: (positive - negative) / sentences")
    ax.set_title(f"{focus_label} (blue, with interval) against peers' median (grey) and range",
                 fontsize=9)
    ax.grid(axis="x", color=GRID, lw=0.6)
    ax.set_axisbelow(True)
    _save_png(fig, path)


def theme_png(items: list[dict[str, Any]], focus_label: str, path: Path) -> None:
    plt = _pyplot()
    n = len(items)
    fig, ax = plt.subplots(figsize=(8.5, 0.34 * n + 1.3))
    for i, it in enumerate(items):
        y = n - 1 - i
        left = 0.0
        for sentiment, colour in SENTIMENT_COLOURS.items():
            share = it["parts"].get(sentiment, 0.0)
            if share > 0:
                ax.barh([y], [share], left=left, color=colour, height=0.6)
                left += share
        ax.plot([it["peer_mean"]] * 2, [y - 0.4, y + 0.4], color="#111827", lw=2)
    ax.set_yticks(range(n))
    ax.set_yticklabels([_clip(it["label"], 46) for it in reversed(items)], fontsize=8)
    ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    ax.set_xlabel(f"share of {focus_label}'s sentences")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=s) for s, c in SENTIMENT_COLOURS.items()]
    handles.append(Line2D([], [], color="#111827", lw=2, label="peers' mean"))
    ax.legend(handles=handles, fontsize=7, loc="lower right", frameon=False)
    ax.grid(axis="x", color=GRID, lw=0.6)
    ax.set_axisbelow(True)
    _save_png(fig, path)
