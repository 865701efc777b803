"""The `desta` command line: one subcommand per pipeline stage."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from importlib import resources
from pathlib import Path

from desta.errors import DestaError

DEMO_QUESTION = "What is said in the audio, and where is the speaker going?"


def _demo_clip() -> Path:
    return Path(str(resources.files("desta") / "assets" / "demo_speech.wav"))


def _load_model(spec: str, device: str | None):
    """The model `spec` names (desta.model.embedded) and whether its connector is trained."""
    from desta.model.embedded import is_trained, load_model

    return load_model(spec, device=device), is_trained(spec)


def _ask(model_spec: str, audios: list[str], question: str, texts: list[str | None],
         device: str | None, max_new_tokens: int, sample: bool) -> int:
    t0 = time.perf_counter()
    model, trained = _load_model(model_spec, device)
    load_s = time.perf_counter() - t0
    locators = " ".join("<|AUDIO|>" for _ in audios)
    messages = [{"role": "user", "content": f"{locators}\n{question}".strip(),
                 "audios": [{"audio": a, "text": t} for a, t in zip(audios, texts)]}]
    t0 = time.perf_counter()
    result = model.generate(messages, max_new_tokens=max_new_tokens, do_sample=sample)
    gen_s = time.perf_counter() - t0
    for audio, transcript in zip(audios, result.transcripts[0]):
        print(f"audio:      {audio}")
        print(f"transcript: {transcript.strip() or '(no speech detected)'}")
    print(f"question:   {question}")
    print(f"answer:     {result.texts[0].strip()}")
    print(f"[model {model_spec}: loaded in {load_s:.1f}s, answered in {gen_s:.1f}s]")
    if not trained:
        print("note: this connector is untrained (randomly initialised): its audio vectors "
              "are noise to the LLM and can derail the answer. The default --model embedded "
              "is the shipped connector trained on real recorded audio.")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    return _ask(args.model, [str(_demo_clip())], args.question, [None], args.device,
                args.max_new_tokens, False)


def _cmd_ask(args: argparse.Namespace) -> int:
    texts = args.transcript or []
    if texts and len(texts) != len(args.audio):
        raise DestaError(f"--transcript given {len(texts)} time(s) for {len(args.audio)} "
                         "audio file(s); give one per audio or none")
    return _ask(args.model, args.audio, args.question, texts or [None] * len(args.audio),
                args.device, args.max_new_tokens, args.sample)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="desta", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    from desta.model.embedded import EMBEDDED, MODEL_HELP

    common.add_argument("--model", default=EMBEDDED, help=MODEL_HELP)
    common.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    common.add_argument("--max-new-tokens", type=int, default=128)

    demo = sub.add_parser("demo", parents=[common],
                          help="answer a question about a bundled speech clip")
    demo.add_argument("--question", default=DEMO_QUESTION)
    demo.set_defaults(func=_cmd_demo)

    ask = sub.add_parser("ask", parents=[common], help="ask a question about audio file(s)")
    ask.add_argument("question")
    ask.add_argument("--audio", action="append", required=True,
                     help="audio file (repeat for several clips)")
    ask.add_argument("--transcript", action="append",
                     help="known transcript per audio (skips ASR); repeat per --audio")
    ask.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    ask.set_defaults(func=_cmd_ask)

    from desta.data.cli import register as register_data

    register_data(sub)
    from desta.evaluation.cli import register as register_eval

    register_eval(sub)
    from desta.training.cli import register as register_training

    register_training(sub)
    from desta.inference.cli import register as register_serve

    register_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Libraries speak at WARNING; desta's own progress messages at INFO (DEBUG with -v).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("desta").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:  # transformers' per-load "Loading weights" bars drown our output
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        return args.func(args)
    except DestaError as err:
        print(f"desta: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
