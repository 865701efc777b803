"""`desta train` and `desta quickstart`.

Hook into the main CLI with `register(subparsers)` (one line in `desta/cli.py`). Multi-GPU /
multi-node runs go through the launchers, which start one process per device:

    accelerate launch --num_processes 8 -m desta.cli train --config released --set ...
    torchrun --nnodes 2 --nproc_per_node 8 ... -m desta.cli train --config released ...
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path
from typing import Any

from desta.errors import ConfigError

logger = logging.getLogger(__name__)

QUICKSTART_QUESTIONS = ("What does the speaker say?", "Describe the speaker's voice.",
                        "Is the speaker male or female?")


def register(subparsers: Any) -> None:
    """Add the `train` and `quickstart` subcommands to the `desta` parser."""
    train = subparsers.add_parser(
        "train", help="train the connector on JSONL rows (YAML recipe + overrides)",
        description="Train a DeSTA connector. Recipes: a YAML path or a shipped name "
                    "(released, released-lora, tiny-cpu).")
    train.add_argument("--config", required=True, help="recipe YAML path or shipped name")
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="SECTION.KEY=VALUE",
                       help="override a field, e.g. --set optim.lr=3e-4 (repeatable)")
    train.add_argument("--resume", default="auto",
                       help="'auto' (newest checkpoint in the output dir, default), a checkpoint "
                            "directory, or 'none' to start fresh")
    train.add_argument("--print-config", action="store_true",
                       help="print the resolved config and exit")
    train.set_defaults(func=_cmd_train)

    quick = subparsers.add_parser(
        "quickstart", help="the method end to end on real speech in minutes: fetch -> "
                           "self-generated targets -> train -> held-out probe",
        description="Fetch real recorded speech (Fish Fillets NG's Czech and Dutch dialogue, "
                    "a Debian package), have the backbone write gender answers from each "
                    "clip's seed description, train the connector on the Czech voices and "
                    "probe the gender of the held-out Dutch voices against chance. "
                    "--synthetic: the offline espeak-ng corpus instead.")
    quick.add_argument("--workdir", default="runs/quickstart")
    quick.add_argument("--data-dir", default=None,
                       help="where the real audio is fetched (default ~/.cache/desta/real)")
    quick.add_argument("--synthetic", action="store_true",
                       help="no download: synthesise a corpus (espeak-ng speech, tones) instead")
    quick.add_argument("--train-manifest", help="use these training rows (JSONL) instead of "
                                                "synthesising a corpus")
    quick.add_argument("--val-manifest", help="held-out rows (JSONL) for --train-manifest")
    quick.add_argument("--data-root", help="root of the audio paths in the manifests")
    quick.add_argument("--clips", type=int, default=64, help="--synthetic: clips to synthesise")
    quick.add_argument("--steps", type=int, default=60, help="optimizer steps")
    quick.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="SECTION.KEY=VALUE", help="override a tiny-cpu recipe field")
    quick.set_defaults(func=_cmd_quickstart)


def _resume_arg(value: str) -> str | None:
    return None if value.lower() == "none" else value


def _cmd_train(args: argparse.Namespace) -> int:
    from desta.training.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    from desta.training.trainer import Trainer

    result = Trainer(cfg, resume=_resume_arg(args.resume)).fit()
    if result.interrupted:
        print(f"stopped at step {result.steps}; resume with the same command "
              f"(checkpoint: {result.last_checkpoint})")
    else:
        print(f"done: {result.steps} steps; model: {result.final_dir or result.last_checkpoint}; "
              f"curves: {result.output_dir / 'loss_curves.png'}")
    return 0


# ---- quickstart ---------------------------------------------------------------------------
QUICKSTART_RESPONSE_TOKENS = 128


def synthesise_corpus_hook(workdir: Path, clips: int, seed: int) -> tuple[Path, Path, Path] | None:
    """HOOK (data stage): synthesise a small corpus and have the backbone write its targets,
    returning (train.jsonl, validation.jsonl, data_root) in the released row format.

    Calls the data stage (`desta data synth` / `desta data generate`: `build_synth_corpus`,
    `run_generation` with the transformers backend on the embedded LLM) when this build has
    it; returns None otherwise, and the quickstart then needs rows given with
    --train-manifest. Targets are never made up here: they are the backbone's own answers to
    (seed description + prompt).
    """
    try:
        from desta.data.backends import SamplingParams, make_backend
        from desta.data.generate import GenerateConfig, run_generation
        from desta.data.synth import build_synth_corpus
    except ImportError:
        return None
    corpus = workdir / "corpus"
    manifest = Path(build_synth_corpus(corpus, size=clips, seed=seed))
    root = manifest.parent  # clip paths in the manifest are relative to it
    report = run_generation(
        GenerateConfig(manifest=manifest, out_dir=corpus / "rows", seed=seed, data_root=root),
        # Short answers: they must fit the recipe's 300-token rows, and a 2-core CPU writes
        # ~10 tokens/s per row.
        make_backend("transformers", seed=seed, batch_size=16,
                     params=SamplingParams(max_new_tokens=QUICKSTART_RESPONSE_TOKENS)))
    rows = [line for line in Path(report.rows_path).read_text().splitlines() if line.strip()]
    if len(rows) < 10:
        raise ConfigError(f"the data stage wrote only {len(rows)} rows to {report.rows_path}; "
                          "quickstart needs at least 10")
    random.Random(seed).shuffle(rows)
    n_val = max(4, len(rows) // 5)
    train, val = corpus / "train.jsonl", corpus / "validation.jsonl"
    train.write_text("\n".join(rows[n_val:]) + "\n")
    val.write_text("\n".join(rows[:n_val]) + "\n")
    return train, val, root


def _chance_level(predictions: list[dict[str, Any]], seed: int = 0) -> float | None:
    """The consecutive-words metric when each prediction is scored against another row's
    reference: what matching without using the audio would score."""
    from desta.training.metrics import consecutive_words_match

    if len(predictions) < 2:
        return None
    refs = [p["reference"] for p in predictions]
    order = list(range(len(refs)))
    random.Random(seed).shuffle(order)
    shifted = order[1:] + order[:1]  # a derangement of the shuffled order
    pairs = {a: b for a, b in zip(order, shifted)}
    hits = sum(consecutive_words_match(p["prediction"], refs[pairs[i]])
               for i, p in enumerate(predictions))
    return hits / len(predictions)


def _cmd_quickstart(args: argparse.Namespace) -> int:
    if not (args.synthetic or args.train_manifest):
        from desta.training.quickstart import QuickstartPlan, default_data_root, run_real

        root = Path(args.data_dir).expanduser() if args.data_dir else default_data_root()
        return run_real(Path(args.workdir), root, QuickstartPlan(steps=args.steps),
                        args.overrides)
    return _quickstart_synthetic(args)


def _quickstart_synthetic(args: argparse.Namespace) -> int:
    from desta.training.config import load_config
    from desta.training.trainer import Trainer

    workdir = Path(args.workdir)
    if args.train_manifest:
        if not args.val_manifest:
            raise ConfigError("--train-manifest needs --val-manifest (held-out rows)")
        train, val = Path(args.train_manifest), Path(args.val_manifest)
        root = Path(args.data_root) if args.data_root else train.parent
    else:
        made = synthesise_corpus_hook(workdir, args.clips, seed=0)
        if made is None:
            raise ConfigError(
                "quickstart cannot synthesise its corpus: the data stage (`desta data "
                "synth` + `desta data generate`, module desta.data) is not in this build. Generate rows with it, or pass existing rows: --train-manifest "
                "train.jsonl --val-manifest dev.jsonl --data-root DIR")
        train, val, root = made

    print(f"[1/3] train: {train} (held-out: {val})")
    cfg = load_config("tiny-cpu", [
        f"data.train=[{json.dumps(str(train))}]", f"data.validation=[{json.dumps(str(val))}]",
        f"data.data_root={json.dumps(str(root))}", f"train.output_dir={json.dumps(str(workdir / 'run'))}",
        f"train.max_steps={args.steps}", "validation.every=0", *args.overrides])
    trainer = Trainer(cfg, resume=None)
    result = trainer.fit()
    before, after = result.validation[0], result.validation[-1]

    print("[2/3] evaluate (held-out rows)")
    print(f"  loss: untrained adapter {before['loss']:.3f} -> trained {after['loss']:.3f}")
    if "consecutive_words" in after:
        chance = _chance_level(trainer.last_predictions)
        print(f"  consecutive-words match: untrained {before['consecutive_words']:.2f} -> "
              f"trained {after['consecutive_words']:.2f}"
              + (f" (chance: {chance:.2f})" if chance is not None else ""))
    print(f"  curves: {result.output_dir / 'loss_curves.png'}")

    print("[3/3] answer")
    from desta.training.data import iter_rows, resolve_audio_paths

    model = trainer.model.eval()
    for row, question in zip(iter_rows([val]), QUICKSTART_QUESTIONS):
        user = resolve_audio_paths(row.messages[:1], root)[0]
        clip = user["audios"][0]["audio"]
        locators = " ".join("<|AUDIO|>" for _ in user["audios"])
        conv = [{"role": "user", "content": f"{locators}\n{question}",
                 "audios": user["audios"]}]
        answer = model.generate(conv, max_new_tokens=64).texts[0].strip()
        print(f"  {clip}\n    Q: {question}\n    A: {answer}")
    print(f"model saved in {result.final_dir}; try: desta ask --model {result.final_dir} "
          "--audio CLIP 'What do you hear?'")
    return 0
