"""`desta eval BENCHMARK ...`: run a model over a benchmark (or score a predictions file) and
write predictions, scores, a Markdown report and a chart.

    desta eval sakura --data data/sakura --out runs/sakura                # embedded model
    desta eval mmau --model DeSTA-ntu/DeSTA2.5-Audio-Llama-3.1-8B --data mmau-test-mini.json \\
        --out runs/mmau --batch-size 16
    desta eval mmau --predictions other_system.json --out runs/other      # no model needed
    desta eval speech-ifeval --data speech-ifeval/ --out runs/sif --backbone-run \\
        --judge-url http://127.0.0.1:8000/v1 --judge-model gpt-4o
"""

from __future__ import annotations

import argparse
import json
import sys

from desta.evaluation.registry import all_specs


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `eval` subcommand to the `desta` command line."""
    p = subparsers.add_parser(
        "eval", help="run a benchmark (or score a predictions file) and report",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    specs = all_specs()
    p.add_argument("benchmark", choices=list(specs))
    p.add_argument("--model", default=None,
                   help="'embedded', a checkpoint directory or a hub id (omit with --predictions)")
    p.add_argument("--data", default=None, help="the benchmark in its local layout")
    p.add_argument("--predictions", default=None,
                   help="score this predictions file (JSON list, JSONL, or the benchmark's own "
                        "result files; a folder: all its *.json/*.jsonl) instead of a model")
    p.add_argument("--out", default=None, help="output folder (predictions, scores, report)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="only the first N items")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="default: the benchmark's own (128 sakura; 256 dynamic-superb, "
                        "airbench, self-consistency; 512 mmau, voicebench; 2048 speech-ifeval)")
    p.add_argument("--system-prompt", default=None,
                   help="the system turn of every conversation (default: DeSTA2.5's evaluation "
                        "prompt for the benchmark; '' for none)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--subset", default=None,
                   help="SAKURA tracks (Gender,Animal), a Speech-IFEval / VoiceBench subset, "
                        "AIR-Bench foundation|chat, Dynamic-SUPERB phase1|phase2")
    p.add_argument("--judge-url", default=None,
                   help="OpenAI-compatible endpoint (with /v1) for the LLM judge")
    p.add_argument("--judge-model", default=None, help="model name sent to the judge")
    p.add_argument("--judge-concurrency", type=int, default=8,
                   help="judge requests in flight at once (default 8)")
    p.add_argument("--backbone-predictions", default=None,
                   help="speech-ifeval: the backbone's rows on textual_audio (forgetting rate)")
    p.add_argument("--backbone-run", action="store_true",
                   help="speech-ifeval: run the backbone on textual_audio to get those rows")
    seen: set[str] = set()
    for spec in specs.values():  # each benchmark's own options (BenchmarkSpec.cli_options)
        for option in spec.cli_options:
            if option.flag in seen:
                continue
            seen.add(option.flag)
            extra = {k: v for k, v in (("type", option.type), ("choices", option.choices))
                     if v is not None}
            p.add_argument(option.flag, default=option.default, help=option.help, **extra)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval)
    return p


def run_eval(args: argparse.Namespace) -> int:
    """Entry point of `desta eval`; bad input raises `DestaError` (reported by `desta.cli`)."""
    from desta.errors import DestaError
    from desta.evaluation.report import summary_rows
    from desta.evaluation.runner import evaluate, make_judge

    if args.predictions is None and args.model is None:
        args.model = "embedded"
    if bool(args.judge_url) != bool(args.judge_model):
        raise DestaError("give both --judge-url and --judge-model, or neither")
    judge = (make_judge(args.judge_url, args.judge_model, args.out, args.judge_concurrency)
             if args.judge_url else None)
    options = {option.dest: getattr(args, option.dest)
               for spec in all_specs().values() for option in spec.cli_options}
    result = evaluate(
        args.benchmark, data=args.data, model=args.model, predictions=args.predictions,
        out=args.out, batch_size=args.batch_size, limit=args.limit,
        max_new_tokens=args.max_new_tokens, judge=judge, subset=args.subset,
        backbone_predictions=args.backbone_predictions, backbone_run=args.backbone_run,
        options=options, system_prompt=args.system_prompt, device=args.device,
        progress=not args.no_progress)
    if result.scores.get("note"):
        print(f"note: {result.scores['note']}", file=sys.stderr)
    rows = summary_rows(args.benchmark, result.scores)
    width = max((len(k) for k in rows), default=0)
    for label, value in rows.items():
        shown = "–" if value is None else f"{value:.2f}"
        print(f"{label:<{width}}  {shown}")
    if not result.files:
        print(json.dumps({k: v for k, v in result.scores.items() if k != "results"},
                         indent=2, default=str), file=sys.stderr)
    for kind, path in result.files.items():
        print(f"{kind}: {path}")
    return 0
