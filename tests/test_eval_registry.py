"""The benchmark registry: benchmarks register themselves, the runner, the command line and the
report only look them up, and `desta.evaluation` has no import cycle."""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import pytest

import desta.evaluation.registry as registry
from desta.errors import DestaError
from desta.evaluation.cli import register as register_cli
from desta.evaluation.records import BenchmarkItem
from desta.evaluation.registry import (
    BenchmarkSpec,
    CliOption,
    Published,
    ScoreContext,
    all_specs,
    audio_question_messages,
    get_spec,
    register,
)
from desta.evaluation.runner import evaluate

PACKAGE = Path(registry.__file__).parent
BENCHMARK_MODULES = {"mmau": "mmau", "sakura": "sakura", "speech-ifeval": "speech_ifeval",
                     "voicebench": "voicebench", "airbench": "airbench",
                     "dynamic-superb": "dynamic_superb", "self-consistency": "self_consistency",
                     "hearing": "hearing", "sakura-text": "hearing"}


def _imports(path: Path) -> set[str]:
    """The desta.evaluation modules `path` imports, at any level (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[:2] == ["desta", "evaluation"]:
                found |= {parts[2]} if len(parts) > 2 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:2] == ["desta", "evaluation"]:
                    found.add(parts[2] if len(parts) > 2 else "__init__")
    return found - {path.stem}


def test_no_import_cycle_and_benchmarks_only_below_the_registry():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    cycles = [m for m in graph if m in reach(m)]
    assert not cycles, f"import cycle through {cycles}: {graph}"
    benchmarks = set(BENCHMARK_MODULES.values())
    # nothing the runner, CLI, report or registry stand on imports a benchmark module
    for infrastructure in ("registry", "records", "runner", "report", "cli", "judges"):
        assert not reach(infrastructure) & benchmarks, infrastructure
    for module in benchmarks:
        assert "runner" not in reach(module), module


def test_every_benchmark_registers_itself():
    specs = all_specs()
    assert set(specs) == set(BENCHMARK_MODULES)
    for name, module in BENCHMARK_MODULES.items():
        assert specs[name].load.__module__ == f"desta.evaluation.{module}"
    with pytest.raises(DestaError, match="unknown benchmark 'nope'; choose one of airbench"):
        get_spec("nope")


@pytest.fixture
def probe_benchmark(monkeypatch):
    """A benchmark defined and registered here, as a new module would do it (the registry
    is restored afterwards)."""
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))

    def load(data: Path, subset: str | None) -> list[BenchmarkItem]:
        rows = json.loads(data.read_text())
        return [BenchmarkItem("probe", r["id"], [data.parent / r["clip"]], r["question"],
                              r["answer"]) for r in rows]

    def result_row(item: BenchmarkItem, text: str) -> dict:
        return {"id": item.id, "answer": item.reference, "response": text}

    def score(rows: list[dict], ctx: ScoreContext) -> dict:
        hits = [r["response"].strip().lower() == r["answer"] for r in rows]
        threshold = ctx.options["probe_threshold"]
        rate = 100.0 * sum(hits) / len(rows)
        return {"summary": {"hits": rate}, "passed": rate >= threshold,
                "backbone": len(ctx.backbone_rows or [])}

    spec = register(BenchmarkSpec(
        "probe", "a held-out probe", load, audio_question_messages, result_row, score,
        backbone_messages=lambda item: [{"role": "user", "content": item.prompt}],
        cli_options=(CliOption("--probe-threshold", type=float, default=50.0,
                               help="pass mark"),),
        published={"hits": [Published("Someone", 75.0, "a paper")]}))
    return spec


def test_a_new_benchmark_is_found_by_the_runner_cli_and_report(probe_benchmark, tmp_path,
                                                                capsys):
    data = tmp_path / "probe.json"
    data.write_text(json.dumps([{"id": "a", "clip": "a.wav", "question": "Q?", "answer": "yes"},
                                {"id": "b", "clip": "b.wav", "question": "Q?", "answer": "no"}]))
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "a", "response": "Yes"}\n{"id": "b", "response": "yes"}\n')
    result = evaluate("probe", data=data, predictions=preds, backbone_predictions=preds,
                      out=tmp_path / "o")
    assert result.scores["summary"] == {"hits": 50.0} and result.scores["passed"] is True
    assert result.scores["backbone"] == 2
    assert "| hits | 50.00 | 75.00 [1] |" in (tmp_path / "o" / "report.md").read_text()

    parser = argparse.ArgumentParser(prog="desta")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "probe", "--data", str(data), "--predictions", str(preds),
                              "--probe-threshold", "60"])
    assert args.func(args) == 0
    assert "hits  50.00" in capsys.readouterr().out
    with pytest.raises(DestaError, match="registered twice"):
        register(BenchmarkSpec("probe", "another", probe_benchmark.load, audio_question_messages,
                               probe_benchmark.result_row, probe_benchmark.score))


def test_the_cli_option_reaches_the_scorer(probe_benchmark, tmp_path):
    data = tmp_path / "probe.json"
    data.write_text(json.dumps([{"id": "a", "clip": "a.wav", "question": "Q", "answer": "yes"}]))
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "a", "response": "no"}\n')
    parser = argparse.ArgumentParser(prog="desta")
    register_cli(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "o"
    args = parser.parse_args(["eval", "probe", "--data", str(data), "--predictions", str(preds),
                              "--out", str(out), "--probe-threshold", "0"])
    args.func(args)
    assert json.loads((out / "scores.json").read_text())["passed"] is True


def test_backbone_run_needs_a_spec_with_backbone_messages(tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": "Gender/en_test_0_common_voice_en_18758345.wav/single",
                                 "response": "(b) Female"}) + "\n")
    with pytest.raises(DestaError, match=r"sakura has no text-only backbone run "
                                         r"\(benchmarks with one: hearing, speech-ifeval\)"):
        evaluate("sakura", data=Path(__file__).parent / "fixtures" / "eval" / "sakura",
                 predictions=preds, backbone_run=True, out=tmp_path / "o")
