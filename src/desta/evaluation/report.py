"""Evaluation reports: a Markdown table of our scores beside published numbers, and a PNG chart.

Nothing here is per benchmark: the rows are the scorer's `summary`, the chance levels its
`chance`, and the published numbers and notes come from the benchmark's spec in the registry
(`BenchmarkSpec.published`, `published_notes`; e.g. the DeSTA2.5-Audio paper, arXiv
2507.02768, and the SAKURA paper, as gathered in the project's REFERENCE.md). Only numbers for
the same metric are put side by side; where a published number is on another scale or split,
the spec's notes say so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from desta.evaluation.registry import Published, get_spec

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"
CHART_FILE = "scores.png"


def summary_rows(benchmark: str, scores: Mapping[str, Any]) -> dict[str, float | None]:
    """The headline numbers of a scores dict, as {row label: value}: the scorer's `summary`."""
    return dict(scores.get("summary") or {})


def chance_levels(benchmark: str, scores: Mapping[str, Any]) -> dict[str, float]:
    """Chance accuracy per row where the benchmark has one (the scorer's `chance`)."""
    return {k: float(v) for k, v in (scores.get("chance") or {}).items()}


def _published(benchmark: str) -> tuple[Mapping[str, Sequence[Published]], Sequence[str]]:
    spec = get_spec(benchmark)
    return spec.published, spec.published_notes


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown_report(benchmark: str, scores: Mapping[str, Any]) -> str:
    """The Markdown report: what was scored, then ours | chance | published, with sources."""
    ours = summary_rows(benchmark, scores)
    chance = chance_levels(benchmark, scores)
    published, notes = _published(benchmark)
    systems: list[str] = []
    for entries in published.values():
        for p in entries:
            if p.system not in systems:
                systems.append(p.system)
    labels = list(ours) + [label for label in published if label not in ours]
    header = ["metric", "this run"] + (["chance"] if chance else []) + systems
    lines = [f"# {benchmark} evaluation", ""]
    lines.append(f"- scored: `{scores.get('source', '?')}`")
    if scores.get("method"):
        lines.append(f"- judge: {scores['method']}")
    if scores.get("method_note"):
        lines.append(f"- note: {scores['method_note']}")
    if scores.get("note"):
        lines.append(f"- note: {scores['note']}")
    run = scores.get("run")
    if run and run.get("seconds_per_item"):
        lines.append(f"- generation: {run['generated']} item(s) in {run['seconds']:.1f} s "
                     f"({run['seconds_per_item']:.2f} s/item); {run['already_done']} reused")
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    used_sources: list[str] = []
    for label in labels:
        cells = [label, _fmt(ours.get(label))]
        if chance:
            cells.append(_fmt(chance.get(label)))
        by_system = {p.system: p for p in published.get(label, [])}
        for system in systems:
            p = by_system.get(system)
            if p is None:
                cells.append("–")
                continue
            if p.source not in used_sources:
                used_sources.append(p.source)
            mark = f"[{used_sources.index(p.source) + 1}]"
            cells.append(f"{p.value:.2f} {mark}" + (f" ({p.note})" if p.note else ""))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for i, source in enumerate(used_sources, start=1):
        lines.append(f"[{i}] {source}")
    for note in notes:
        lines.append(f"- {note}")
    lines += ["", "Accuracies and rates are percentages; judge scores are on the judge's scale "
              "(VoiceBench open 1-5, AIR-Bench chat 1-10).", ""]
    return "\n".join(lines)


def write_chart(benchmark: str, scores: Mapping[str, Any], path: str | Path) -> Path | None:
    """A horizontal bar chart of our rows, with published numbers and chance beside them.
    Returns None (and logs why) when there is nothing numeric to plot."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    ours = {k: v for k, v in summary_rows(benchmark, scores).items() if v is not None}
    if not ours:
        logger.info("%s: no numeric score to chart", benchmark)
        return None
    labels = list(ours)
    published, _ = _published(benchmark)
    chance = chance_levels(benchmark, scores)
    systems = []
    for label in labels:
        for p in published.get(label, []):
            if p.system not in systems:
                systems.append(p.system)
    series = [("this run", [ours[label] for label in labels])]
    for system in systems:
        values = []
        for label in labels:
            match = [p.value for p in published.get(label, []) if p.system == system]
            values.append(match[0] if match else float("nan"))
        series.append((system, values))
    height = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.45 * len(labels) * max(1, len(series) / 2)))
    for i, (name, values) in enumerate(series):
        ys = [j + i * height for j in range(len(labels))]
        ax.barh(ys, values, height=height, label=name)
    if chance:
        for j, label in enumerate(labels):
            if label in chance:
                ax.plot([chance[label]] * 2, [j - 0.1, j + 0.8 - 0.1], color="black",
                        linestyle="--", linewidth=1, label="chance" if j == 0 else None)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(labels))])
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("score (accuracy / rate in %, judge scores on their scale)")
    ax.set_title(f"{benchmark}: {scores.get('source', '')}"[:90], fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(benchmark: str, scores: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write `report.md` and `scores.png` into `out_dir`; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"report": out_dir / REPORT_FILE}
    files["report"].write_text(markdown_report(benchmark, scores), encoding="utf-8")
    chart = write_chart(benchmark, scores, out_dir / CHART_FILE)
    if chart is not None:
        files["chart"] = chart
    return files
