"""Experiment reports: ``results.json`` is the record; ``summary.md`` and ``report.html`` are views.

:func:`write_results` writes the JSON (config, per-user vectors, means with bootstrap
intervals, paired comparisons, per-fold curves, blend weights, timings) and then calls
:func:`render`, which builds both views from the JSON alone, so ``paperboy experiment
report DIR`` re-renders them byte for byte. Plots are inline SVG drawn here (a handful of
small helpers), so the HTML is one self-contained file and needs no plotting library.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from experiments.runner import CONFIDENCE, Results

FORMAT = 1
ALPHA = 0.05  # family-wise error rate for calling a difference significant (on Holm p)
RESULTS, SUMMARY, HTML = "results.json", "summary.md", "report.html"
PALETTE = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#555")
ACCURACY_KINDS = ("recall", "ndcg", "hit_rate", "precision", "mrr", "auc")


# --- the record -----------------------------------------------------------------------------
def results_document(results: Results) -> dict[str, Any]:
    """The JSON-ready record of a run (NaN becomes null)."""
    config = results.config
    doc = {
        "format": FORMAT,
        "name": config.name,
        "description": config.description,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "file": str(config.path),
            "toml": config.path.read_text(encoding="utf-8"),
            "seeds": list(config.seeds),
            "control": config.control,
            "test": config.test,
            "n_boot": config.n_boot,
            "confidence": CONFIDENCE,
            "metrics": [spec.name for spec in config.metrics],
            "variants": [
                {"name": v.name, "components": list(v.components), "params": dict(v.params)}
                for v in config.variants
            ],
        },
        "dataset": results.dataset,
        "users": results.users.tolist(),
        "metrics": _metric_table(results),
        "per_user": {
            metric: {variant: values.tolist() for variant, values in by_variant.items()}
            for metric, by_variant in results.per_user.items()
        },
        "comparisons": [asdict(row) for row in results.comparisons],
        "folds": results.folds,
        "blend": results.blend,
        "seconds": results.seconds,
    }
    return _clean(doc)


def _metric_table(results: Results) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for spec in results.config.metrics:
        variants = {}
        for variant in results.config.variants:
            per_seed = results.per_seed[spec.name][variant.name]
            entry: dict[str, Any] = {"per_seed": per_seed}
            if spec.per_user:
                values = results.per_user[spec.name][variant.name]
                low, high = results.intervals[spec.name][variant.name]
                entry |= {"mean": _nanmean(values), "ci_low": low, "ci_high": high}
                entry["n_users"] = int(np.isfinite(values).sum())
            else:  # coverage: one number per run, so the interval is the spread over seeds
                entry |= {"mean": float(np.mean(per_seed)), "ci_low": None, "ci_high": None}
            variants[variant.name] = entry
        table[spec.name] = {"per_user": spec.per_user, "kind": spec.kind, "variants": variants}
    return table


def _nanmean(values: np.ndarray[Any, Any]) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def _clean(value: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, NaN and inf to None, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path | datetime):
        return str(value)
    return value


def write_results(results: Results, out_dir: Path) -> dict[str, Path]:
    """Write ``results.json`` into ``out_dir`` (created if needed), then render the views."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(out_dir / RESULTS, json.dumps(results_document(results), indent=1) + "\n")
    return render(out_dir)


def render(out_dir: Path) -> dict[str, Path]:
    """(Re-)write ``summary.md`` and ``report.html`` from ``out_dir/results.json``.

    Raises
    ------
    ValueError
        If the folder has no readable ``results.json`` of a known format.
    """
    path = out_dir / RESULTS
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        reason = exc.strerror or exc
        raise ValueError(f"{path}: cannot read ({reason}); run the experiment first") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a results file of format {FORMAT}")
    view = _View(doc)
    _write_atomic(out_dir / SUMMARY, markdown(view))
    _write_atomic(out_dir / HTML, html_report(view))
    return {"results": path, "summary": out_dir / SUMMARY, "html": out_dir / HTML}


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary name, then rename: a crash never leaves half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- reading the record ---------------------------------------------------------------------
class _View:
    """Convenient questions about a results document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.variants = [v["name"] for v in doc["config"]["variants"]]
        self.control = doc["config"]["control"]
        self.metrics = doc["config"]["metrics"]
        self.comparisons = {(c["metric"], c["variant"]): c for c in doc["comparisons"]}

    def entry(self, metric: str, variant: str) -> dict[str, Any]:
        return dict(self.doc["metrics"][metric]["variants"][variant])

    def per_user(self, metric: str) -> bool:
        return bool(self.doc["metrics"][metric]["per_user"])

    def best(self, metric: str) -> str:
        """The variant with the highest mean (every metric here is better when higher)."""
        means = {v: self.entry(metric, v)["mean"] for v in self.variants}
        return max(self.variants, key=lambda v: -math.inf if means[v] is None else means[v])

    def verdict(self, metric: str, variant: str) -> str:
        if variant == self.control:
            return "control"
        row = self.comparisons.get((metric, variant))
        if row is None or row["p_holm"] is None:
            return "not tested"
        if row["p_holm"] >= ALPHA:
            return "no significant difference"
        return "better than control" if row["diff"] > 0 else "worse than control"

    def first_metric(self, kinds: Sequence[str]) -> str | None:
        for kind in kinds:
            for metric in self.metrics:
                if self.doc["metrics"][metric]["kind"] == kind:
                    return metric
        return None


def _num(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _interval(low: float | None, high: float | None, sign: bool = False) -> str:
    if low is None or high is None:
        return "–"
    return f"[{_num(low, sign=sign)}, {_num(high, sign=sign)}]"


def _describe_run(view: _View) -> list[str]:
    doc, config = view.doc, view.doc["config"]
    dataset = doc["dataset"]
    n_cmp = sum(1 for c in doc["comparisons"] if c["p_holm"] is not None)
    test = (
        "paired sign-flip permutation test" if config["test"] == "permutation" else "paired t-test"
    )
    return [
        f"Dataset: **{dataset.get('kind')} / {dataset.get('split')}** "
        f"({_dataset_size(dataset)}); {len(doc['users'])} users with a relevant candidate "
        f"({len(doc['folds'])} fold{'s' if len(doc['folds']) != 1 else ''}).",
        f"Seeds: {', '.join(map(str, config['seeds']))}. Control: **{view.control}**. "
        f"Per-user paired comparisons: {test}, {round(100 * config['confidence'])}% bootstrap "
        f"intervals ({config['n_boot']} resamples), Holm correction across {n_cmp} "
        f"comparisons (variants x metrics); significant means Holm p < {ALPHA}.",
        f"Run {doc['created']}, {doc['seconds'].get('total', 0):.0f} s in total. "
        f"Config: `{config['file']}`.",
    ]


def _dataset_size(dataset: Mapping[str, Any]) -> str:
    parts = [
        f"{dataset[k]:,} {k[2:].replace('_', ' ')}" for k in ("n_users", "n_papers") if k in dataset
    ]
    if "days" in dataset:
        parts.append(f"last {dataset['days']} days replayed")
    if "n_candidates" in dataset:
        parts.append(f"{dataset['n_candidates']:,} candidates ranked")
    return ", ".join(parts)


# --- Markdown -------------------------------------------------------------------------------
def markdown(view: _View) -> str:
    """The summary: headline winners, then one table per metric, per-fold table, weights."""
    doc = view.doc
    lines = [f"# Experiment: {doc['name']}", ""]
    if doc["description"]:
        lines += [doc["description"], ""]
    lines += [*_describe_run(view), "", "## Who wins", ""]
    lines += _table(
        _headline_columns(view),
        _headline_rows(view),
    )
    for metric in view.metrics:
        lines += ["", f"## {metric}", ""]
        lines += _metric_markdown(view, metric)
    lines += _folds_markdown(view)
    lines += _blend_markdown(view)
    lines += ["", "## Time (seconds, all seeds and folds)", ""]
    timing = doc["seconds"].get("variants", {})
    lines += _table(
        ["variant", "fit", "rank"],
        [[v, _num(t["fit"], 1), _num(t["rank"], 1)] for v, t in timing.items()],
    )
    lines += [
        "",
        f"Loading data: {doc['seconds'].get('load', 0):.1f} s. Single-component "
        "variants reuse the component a blend fitted on the same fold and seed (fit 0).",
        "",
    ]
    return "\n".join(lines)


def _headline_columns(view: _View) -> list[str]:
    control = f"vs {view.control} (diff [95% CI])"
    return ["metric", "best variant", "mean [95% CI]", control, "Holm p", "verdict"]


def _headline_rows(view: _View) -> list[list[str]]:
    rows = []
    for metric in view.metrics:
        best = view.best(metric)
        entry = view.entry(metric, best)
        row = view.comparisons.get((metric, best))
        diff = "–" if row is None else _diff_with_interval(row)
        rows.append(
            [
                metric,
                f"**{best}**",
                f"{_num(entry['mean'])} {_interval(entry['ci_low'], entry['ci_high'])}",
                diff,
                "–" if row is None else _p(row["p_holm"]),
                _headline_verdict(view, metric, best),
            ]
        )
    return rows


def _headline_verdict(view: _View, metric: str, best: str) -> str:
    if best != view.control:
        return view.verdict(metric, best)
    if not view.per_user(metric):
        return "control has the best value (not tested)"
    worse = [v for v in view.variants if view.verdict(metric, v) == "worse than control"]
    if not worse:
        return "control has the best mean; no variant significantly different"
    return f"control has the best mean; significantly worse: {', '.join(worse)}"


def _diff_with_interval(row: Mapping[str, Any]) -> str:
    interval = _interval(row["ci_low"], row["ci_high"], sign=True)
    return f"{_num(row['diff'], sign=True)} {interval}"


def _metric_markdown(view: _View, metric: str) -> list[str]:
    best = view.best(metric)
    if not view.per_user(metric):
        header = ["variant", "mean over seeds", "per seed", ""]
        rows = [
            [
                v,
                _num(view.entry(metric, v)["mean"]),
                ", ".join(_num(x) for x in view.entry(metric, v)["per_seed"]),
                "best" if v == best else "",
            ]
            for v in view.variants
        ]
        note = "One value per run (share of candidates in anyone's list): no per-user test."
        return [*_table(header, rows), "", note]
    header = [
        "variant",
        "mean",
        "95% CI",
        f"diff vs {view.control}",
        "95% CI of diff",
        "p",
        "Holm p",
        "verdict",
    ]
    rows = []
    for variant in view.variants:
        entry, row = view.entry(metric, variant), view.comparisons.get((metric, variant))
        name = f"**{variant}** (best)" if variant == best else variant
        cells = [name, _num(entry["mean"]), _interval(entry["ci_low"], entry["ci_high"])]
        if row is None:
            cells += ["–", "–", "–", "–"]
        else:
            cells += [
                _num(row["diff"], sign=True),
                _interval(row["ci_low"], row["ci_high"], True),
                _p(row["p"]),
                _p(row["p_holm"]),
            ]
        rows.append([*cells, view.verdict(metric, variant)])
    return _table(header, rows)


def _folds_markdown(view: _View) -> list[str]:
    folds = view.doc["folds"]
    metric = view.first_metric(ACCURACY_KINDS) or view.metrics[0]
    if len(folds) < 2:
        return []
    lines = ["", f"## Per fold: {metric} (mean over users and seeds)", ""]
    rows = [
        [f["label"], str(f["n_users"]), *(_num(f["values"][metric][v]) for v in view.variants)]
        for f in folds
    ]
    return lines + _table(["fold", "users", *view.variants], rows)


def _blend_markdown(view: _View) -> list[str]:
    blend = view.doc["blend"]
    if not blend:
        return []
    lines = ["", "## Blend weights (on raw component scores, mean over seeds and folds)", ""]
    for variant, entries in blend.items():
        names = list(entries[0]["weights"])
        mean = {n: float(np.mean([e["weights"][n] for e in entries])) for n in names}
        sources = sorted({e["source"] for e in entries})
        weights = ", ".join(f"{n} {w:.3g}" for n, w in mean.items())
        lines.append(f"- {variant}: {weights} ({'; '.join(sources)})")
    return lines


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


# --- HTML -----------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}tr.best td{font-weight:600}
.better{color:#2e7d32}.worse{color:#c62828}.muted{color:#777}
.plots{display:flex;flex-wrap:wrap;gap:12px}
svg{background:#fafafa;border:1px solid #eee}svg text{font:11px system-ui,sans-serif}
pre{background:#f5f5f5;padding:8px;overflow:auto}
"""


def html_report(view: _View) -> str:
    """The self-contained HTML report: the summary's tables and the plots."""
    doc = view.doc
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(doc['name'])}</title>",
        f"<style>{_CSS}</style></head><body><h1>Experiment: {esc(doc['name'])}</h1>",
    ]
    if doc["description"]:
        parts.append(f"<p>{esc(doc['description'])}</p>")
    parts += [f"<p>{_md_inline(line)}</p>" for line in _describe_run(view)]
    parts.append("<h2>Who wins</h2>")
    parts.append(
        _html_table(
            _headline_columns(view),
            _headline_rows(view),
        )
    )
    parts.append("<h2>Each metric per variant (mean and 95% interval)</h2><div class='plots'>")
    parts += [_metric_plot(view, metric) for metric in view.metrics]
    parts.append("</div>")
    parts.append(_tradeoff_section(view))
    parts.append(_folds_section(view))
    parts.append("<h2>Tables</h2>")
    for metric in view.metrics:
        parts.append(f"<h3>{esc(metric)}</h3>")
        lines = _metric_markdown(view, metric)
        header, rows = _split_md_table(lines)
        parts.append(_html_table(header, rows))
        parts += [
            f"<p class='muted'>{esc(line)}</p>"
            for line in lines
            if not line.startswith("|") and line
        ]
    parts.append("".join(f"<p>{_md_inline(line)}</p>" for line in _blend_markdown(view) if line))
    parts.append(f"<h2>Config</h2><pre>{esc(doc['config']['toml'])}</pre>")
    parts.append(f"<h2>Time</h2><pre>{esc(json.dumps(doc['seconds'], indent=1))}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _md_inline(text: str) -> str:
    """Escape, then turn the summary's ``**bold**`` and ``code`` into tags."""
    out = html.escape(text.lstrip("- "))
    for mark, tag in (("**", "b"), ("`", "code")):
        pieces = out.split(mark)
        out = "".join(p if i % 2 == 0 else f"<{tag}>{p}</{tag}>" for i, p in enumerate(pieces))
    return out


def _split_md_table(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    cells = [
        [c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")
    ]
    return cells[0], cells[2:]


def _html_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        best = any("(best)" in cell for cell in row[:1])
        cls = " class='best'" if best else ""
        tds = "".join(f"<td{_verdict_class(c)}>{_md_inline(c)}</td>" for c in row)
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _verdict_class(cell: str) -> str:
    if cell == "better than control":
        return " class='better'"
    return " class='worse'" if cell == "worse than control" else ""


def _metric_plot(view: _View, metric: str) -> str:
    rows = []
    for variant in view.variants:
        entry = view.entry(metric, variant)
        low, high = entry["ci_low"], entry["ci_high"]
        if low is None:  # coverage: show the spread over seeds instead
            low, high = min(entry["per_seed"]), max(entry["per_seed"])
        rows.append((variant, entry["mean"], low, high))
    control = view.entry(metric, view.control)["mean"]
    return interval_chart(metric, rows, colours=_colours(view), reference=control)


def _tradeoff_section(view: _View) -> str:
    accuracy = view.first_metric(("recall", "ndcg", "hit_rate", "mrr"))
    diversity = view.first_metric(("diversity",)) or view.first_metric(("novelty", "coverage"))
    if accuracy is None or diversity is None:
        return ""
    points = []
    for variant in view.variants:
        x, y = view.entry(metric=diversity, variant=variant), view.entry(accuracy, variant)
        points.append((variant, _point(x), _point(y)))
    title = f"<h2>Trade-off: {html.escape(accuracy)} vs {html.escape(diversity)}</h2>"
    return title + scatter_chart(points, diversity, accuracy, colours=_colours(view))


def _point(entry: Mapping[str, Any]) -> tuple[float, float, float]:
    low, high = entry["ci_low"], entry["ci_high"]
    if low is None:
        low, high = min(entry["per_seed"]), max(entry["per_seed"])
    return float(entry["mean"]), float(low), float(high)


def _folds_section(view: _View) -> str:
    folds = view.doc["folds"]
    if len(folds) < 2:
        return ""
    labels = [f["label"] for f in folds]
    charts = []
    for metric in view.metrics:
        series = {v: [f["values"][metric][v] for f in folds] for v in view.variants}
        charts.append(line_chart(metric, labels, series, colours=_colours(view)))
    return "<h2>Per fold (day)</h2><div class='plots'>" + "".join(charts) + "</div>"


def _colours(view: _View) -> dict[str, str]:
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(view.variants)}


# --- SVG helpers ----------------------------------------------------------------------------
def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    """Map [lo, hi] linearly onto [a, b] (a flat range maps to the middle)."""
    span = hi - lo
    return (lambda v: (a + b) / 2) if span <= 0 else (lambda v: a + (v - lo) / span * (b - a))


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    step *= next(m for m in (1, 2, 5, 10) if (hi - lo) / (step * m) <= n)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _padded(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 0.05
    return lo - pad, hi + pad


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _svg(width: int, height: int, body: Iterable[str]) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' {extra}>{html.escape(text)}</text>"
    )


def _line(
    x1: float, y1: float, x2: float, y2: float, colour: str = "#999", w: float = 1, extra: str = ""
) -> str:
    return (
        f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' "
        f"stroke='{colour}' stroke-width='{w}' {extra}/>"
    )


def _x_axis(ticks: list[float], x: Any, top: float, bottom: float) -> list[str]:
    out = []
    for t in ticks:
        out += [
            _line(x(t), top, x(t), bottom, "#e4e4e4"),
            _text(x(t), bottom + 13, _fmt(t), "middle"),
        ]
    return out


def interval_chart(
    title: str,
    rows: Sequence[tuple[str, float, float, float]],
    *,
    colours: Mapping[str, str],
    reference: float | None = None,
    show_reference: bool = False,
) -> str:
    """Horizontal dot-and-whisker chart: one row per variant, mean with its interval.

    ``reference`` (the control's mean) is drawn as a dashed line, so an interval clear of it
    reads at a glance; ``show_reference`` widens the axis to include it (e.g. 0 for a
    difference).
    """
    label_w, width, row_h, top = 110, 360, 22, 24
    height = top + row_h * len(rows) + 22
    values = [v for _, _, low, high in rows for v in (low, high)]
    if show_reference and reference is not None:
        values.append(reference)
    lo, hi = _padded(values)
    x = _scale(lo, hi, label_w, width - 12)
    body = [_text(8, 15, title, extra="font-weight='600'")]
    body += _x_axis(_ticks(lo, hi), x, top - 4, height - 20)
    if reference is not None:
        dashed = "stroke-dasharray='4 3'"
        body.append(_line(x(reference), top - 4, x(reference), height - 20, "#888", 1, dashed))
    for i, (name, mean, low, high) in enumerate(rows):
        y, colour = top + row_h * i + row_h / 2, colours[name]
        body += [
            _text(8, y + 4, name),
            _line(x(low), y, x(high), y, colour, 2),
            _line(x(low), y - 4, x(low), y + 4, colour),
            _line(x(high), y - 4, x(high), y + 4, colour),
            f"<circle cx='{x(mean):.1f}' cy='{y:.1f}' r='4' fill='{colour}'/>",
        ]
    return _svg(width, height, body)


def scatter_chart(
    points: Sequence[tuple[str, tuple[float, float, float], tuple[float, float, float]]],
    x_label: str,
    y_label: str,
    *,
    colours: Mapping[str, str],
) -> str:
    """Scatter of variants with interval crosses; ``x`` and ``y`` are ``(mean, low, high)``."""
    width, height, left, bottom = 520, 340, 56, 36
    x_lo, x_hi = _padded([v for _, xs, _ in points for v in xs[1:]])
    y_lo, y_hi = _padded([v for _, _, ys in points for v in ys[1:]])
    x = _scale(x_lo, x_hi, left, width - 16)
    y = _scale(y_lo, y_hi, height - bottom, 14)
    body = _x_axis(_ticks(x_lo, x_hi), x, 14, height - bottom)
    for t in _ticks(y_lo, y_hi):
        body += [
            _line(left, y(t), width - 16, y(t), "#e4e4e4"),
            _text(left - 4, y(t) + 4, _fmt(t), "end"),
        ]
    body += [
        _text((left + width) / 2, height - 6, x_label + " →", "middle"),
        _text(12, 12, "↑ " + y_label),
    ]
    for name, (xm, xl, xh), (ym, yl, yh) in points:
        colour = colours[name]
        body += [
            _line(x(xl), y(ym), x(xh), y(ym), colour, 1.5),
            _line(x(xm), y(yl), x(xm), y(yh), colour, 1.5),
            f"<circle cx='{x(xm):.1f}' cy='{y(ym):.1f}' r='5' fill='{colour}'/>",
            _text(x(xm) + 7, y(ym) - 6, name, extra=f"fill='{colour}'"),
        ]
    return _svg(width, height, body)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    colours: Mapping[str, str],
) -> str:
    """One line per variant over the folds (days), with a legend."""
    width, height, left, bottom, top = 360, 230, 48, 40, 24
    values = [v for vs in series.values() for v in vs if v is not None]
    lo, hi = _padded(values or [0.0, 1.0])
    x = _scale(0, max(len(labels) - 1, 1), left, width - 14)
    y = _scale(lo, hi, height - bottom, top)
    body = [_text(8, 15, title, extra="font-weight='600'")]
    for t in _ticks(lo, hi):
        body += [
            _line(left, y(t), width - 14, y(t), "#e4e4e4"),
            _text(left - 4, y(t) + 4, _fmt(t), "end"),
        ]
    for i, label in enumerate(labels):
        body.append(
            _text(x(i), height - bottom + 13, label[5:] if len(label) == 10 else label, "middle")
        )
    for j, (name, vs) in enumerate(series.items()):
        colour = colours[name]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs) if v is not None)
        body.append(f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-width='2'/>")
        body.append(_text(left + 80 * j, height - 8, "— " + name, extra=f"fill='{colour}'"))
    return _svg(width, height, body)


# --- online experiments ---------------------------------------------------------------------
# One set of tables for `experiment online-report`'s terminal output and its HTML page, built
# from the report's JSON form (``recsys.online.analysis.online_report``).
OnlineTable = tuple[str, list[str], list[list[str]]]


def online_tables(result: Mapping[str, Any]) -> list[OnlineTable]:
    """The interim tables (always-valid), then the final ones when the horizon is read."""
    interim, final = result["interim"], result["final"]
    open_note = (
        f"interim: every sent digest, {interim['open_digests']} of them still inside their "
        f"{result['window_days']:g}-day click window (clicks so far)"
    )
    tables = [
        (f"{open_note}; {_level(result)} {interim['interval']}s", *_arm_rows(interim)),
        (f"difference from {result['plan']['control']} (interim)", *_difference_rows(interim)),
        ("CTR per position (interim)", *_position_rows(interim)),
    ]
    if "arms" in final:
        tables += [
            (f"final, {_level(result)} {final['interval']}s", *_arm_rows(final)),
            (f"difference from {result['plan']['control']} (final)", *_difference_rows(final)),
            ("CTR per position (final)", *_position_rows(final)),
        ]
    return tables


def online_summary(result: Mapping[str, Any]) -> list[str]:
    """The lines an experimenter reads first: the plan, the decision, the final status."""
    plan = result["plan"]
    horizon = plan["horizon"] or {"planned": "none"}
    as_of = result["now"][:16].replace("T", " ")
    return [
        f"{result['experiment']} ({result['status']}), clicks within "
        f"{result['window_days']:g} days of sending, as of {as_of} UTC",
        f"alpha {plan['alpha']:g}, control {plan['control']}, horizon "
        + ", ".join(f"{k} {v}" for k, v in horizon.items()),
        str(result["interim"]["decision"]),
        str(result["final"]["status"]),
    ]


def online_html(result: Mapping[str, Any]) -> str:
    """A self-contained page (no script, no external CSS) of the online report."""
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(result['experiment'])}"
        f"</title><style>{_CSS}</style></head><body>"
        f"<h1>Online experiment: {esc(result['experiment'])}</h1>",
    ]
    summary = online_summary(result)
    parts.append(f"<p>{esc(summary[0])}<br>{esc(summary[1])}</p>")
    parts.append(f"<p><b>{esc(summary[2])}</b></p><p>{esc(summary[3])}</p>")
    chart = _difference_chart(result)
    if chart:
        parts.append(f"<div class='plots'>{chart}</div>")
    for title, header, rows in online_tables(result):
        parts.append(f"<h2>{esc(title)}</h2>{_plain_html_table(header, rows)}")
    parts.append(
        "<p class='muted'>Always-valid intervals (normal-mixture confidence sequences, "
        "Howard et al. 2021) may be read after every digest; the fixed-horizon ones only "
        "once, at the planned horizon.</p></body></html>\n"
    )
    return "\n".join(parts)


def _plain_html_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells escaped as they are (``_html_table`` reads markdown, which would eat a minus)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{_verdict_class(c)}>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_online_html(result: Mapping[str, Any], path: Path) -> Path:
    """Write :func:`online_html` atomically; returns the path."""
    _write_atomic(path, online_html(result))
    return path


def _level(result: Mapping[str, Any]) -> str:
    return f"{100 * (1 - result['plan']['alpha']):g}%"


def _arm_rows(part: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["arm", "digests", "open", "shown", "clicked", "CTR", "interval", "clicks/digest"]
    rows = [
        [name, str(a["digests"]), str(a["open"]), str(a["shown"]), str(a["clicked"]),
         _pct(a["ctr"]), _pct_interval(a["ctr_interval"]), _num(a["clicks_per_digest"])]
        for name, a in part["arms"].items()
    ]  # fmt: skip
    return header, rows


def _difference_rows(part: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["arm", "CTR difference", "interval", "alpha", "verdict"]
    rows = [
        [name, _points(d["diff"]), _points_interval(d["interval"]), f"{d['alpha']:.3g}",
         {"better": "better than control", "worse": "worse than control"}.get(
             d["verdict"], "no decision")]
        for name, d in part["differences"].items()
    ]  # fmt: skip
    return header, rows


def _position_rows(part: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    depth = max((len(a["positions"]) for a in part["arms"].values()), default=0)
    header = ["arm", *(f"@{p + 1}" for p in range(depth))]
    rows = []
    for name, arm in part["arms"].items():
        cells = [f"{_pct(p['ctr'])} ({p['clicked']}/{p['shown']})" for p in arm["positions"]]
        rows.append([name, *cells, *["-"] * (depth - len(cells))])
    return header, rows


def _difference_chart(result: Mapping[str, Any]) -> str:
    rows = [
        (name, 100 * d["diff"], 100 * d["interval"][0], 100 * d["interval"][1])
        for name, d in result["interim"]["differences"].items()
        if d["diff"] is not None and None not in d["interval"]
    ]
    if not rows:
        return ""
    colours = {name: PALETTE[i % len(PALETTE)] for i, (name, *_) in enumerate(rows)}
    title = "CTR difference from control, points (always-valid)"
    return interval_chart(title, rows, colours=colours, reference=0.0, show_reference=True)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _pct_interval(bounds: Sequence[float | None]) -> str:
    if None in bounds:
        return "(not enough digests)"
    return f"[{100 * bounds[0]:.2f}%, {100 * bounds[1]:.2f}%]"  # type: ignore[operator]


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.2f} pts"


def _points_interval(bounds: Sequence[float | None]) -> str:
    if None in bounds:
        return "(not enough digests)"
    return f"[{100 * bounds[0]:+.2f}, {100 * bounds[1]:+.2f}]"  # type: ignore[operator]
