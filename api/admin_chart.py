"""The /admin page's bar chart, as geometry for an inline SVG: no script, no stylesheet.

Pure: days and counts in, rectangles out. The template draws them with presentation
attributes (``fill``, ``x``, ``height``), which the page's Content-Security-Policy allows
where inline ``style`` attributes are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.admin_data import Day

WIDTH, HEIGHT = 560, 180
LABEL_H = 18  # room under the bars for the day labels
TOP_H = 14  # room over the tallest bar for its total
# Statuses drawn, bottom up, and their colours; the rest of the pipeline is "in progress".
COLOURS = {
    "sent": "#15803d",
    "skipped": "#9ca3af",
    "failed": "#b91c1c",
    "unknown": "#d97706",
    "in progress": "#2563eb",
}
IN_PROGRESS = ("planned", "ranked", "sending")


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class Bar:
    label: str
    label_x: float
    total: int
    rects: list[Rect]


def segments(counts: dict[str, int]) -> dict[str, int]:
    """``counts`` folded into the chart's series, in drawing order."""
    folded = {name: counts.get(name, 0) for name in COLOURS if name != "in progress"}
    folded["in progress"] = sum(counts.get(s, 0) for s in IN_PROGRESS)
    return folded


def bars(days: list[Day], width: float = WIDTH, height: float = HEIGHT) -> list[Bar]:
    """One stacked bar a day, scaled so the busiest day fills the plot's height."""
    plot_h = height - LABEL_H - TOP_H
    peak = max((d.total for d in days), default=0) or 1
    slot = width / max(len(days), 1)
    out = []
    for i, day in enumerate(days):
        x, top = i * slot + slot * 0.15, TOP_H + plot_h
        rects = []
        for name, n in segments(day.counts).items():
            h = plot_h * n / peak
            if n:
                top -= h
                title = f"{day.start:%a %d %b}: {n} {name}"
                rects.append(
                    Rect(
                        round(x, 1),
                        round(top, 1),
                        round(slot * 0.7, 1),
                        round(h, 1),
                        COLOURS[name],
                        title,
                    )
                )
        out.append(Bar(f"{day.start:%a %d}", round(i * slot + slot / 2, 1), day.total, rects))
    return out
