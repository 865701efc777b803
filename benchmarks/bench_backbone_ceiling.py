"""Text ceiling of a backbone LLM: the hearing probe's `--backbone-run` questions and
`sakura-text`, answered by any LLM id, with its generation speed and memory.

Each item is the conversation `desta eval hearing --backbone-run` / `desta eval sakura-text`
gives the backbone (the seed description in place of the audio, the benchmark's own system
prompt), built with the LLM's own chat template by the same `DestaModel.generate` path and
scored by the same rules. Only the LLM changes (`DestaConfig.llm_model_id`); no connector is
involved in a text-only conversation. Run one LLM per process so the peak memory is its own:

    OMP_NUM_THREADS=1 python benchmarks/bench_backbone_ceiling.py \
        --llm embedded:smollm2-135m-instruct --every 3 --out runs/ceiling/smollm2
    OMP_NUM_THREADS=1 python benchmarks/bench_backbone_ceiling.py \
        --llm embedded:gemma3-270m --every 3 --out runs/ceiling/gemma3

`--every K` keeps every K-th item of each benchmark (in the benchmark's own order), the same
items for every LLM. Predictions are resumable (`<out>/<benchmark>.jsonl`); figures go to
`<out>/ceiling.json`. docs/backbones.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROBE = ROOT.parent / "realdata" / "root" / "desta-corpus" / "probe.jsonl"
DEFAULT_SAKURA = ROOT.parent / "shared" / "data" / "sakura-dev"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", required=True, help="LLM backbone id (embedded:..., dir, hub)")
    parser.add_argument("--probe", type=Path, default=DEFAULT_PROBE)
    parser.add_argument("--sakura", type=Path, default=DEFAULT_SAKURA)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from desta.data.generate import END_AUDIO, START_AUDIO
    from desta.evaluation.registry import ScoreContext, get_spec, with_system_prompt
    from desta.evaluation.runner import PredictionStore, generate_predictions
    from desta.model.config import DestaConfig
    from desta.model.modeling import DestaModel
    from desta.threads import configure_threads

    def score(spec, rows: list[dict]) -> dict:
        if spec.backbone_messages:  # hearing: the text-ceiling half of its scores
            return spec.score(rows, ScoreContext(backbone_rows=rows))["text_ceiling"]
        return spec.score(rows, ScoreContext())

    threads = configure_threads(args.threads)
    start = time.perf_counter()
    model = DestaModel.from_config(DestaConfig(llm_model_id=args.llm), device="cpu")
    load_s = time.perf_counter() - start
    llm_params = sum(p.numel() for p in model.llm.parameters())
    args.out.mkdir(parents=True, exist_ok=True)
    figures: dict = {"llm": args.llm, "llm_params": llm_params, "threads": threads,
                     "every": args.every, "load_seconds": round(load_s, 1)}
    for name, data in (("hearing", args.probe), ("sakura-text", args.sakura)):
        spec = get_spec(name)
        text = spec.backbone_messages or spec.messages  # hearing: --backbone-run's conversation
        items = spec.load(data, None)[::args.every]
        store = PredictionStore(args.out / f"{name}.jsonl")
        run = generate_predictions(
            model, items, store,
            messages=lambda item, text=text, spec=spec: with_system_prompt(text(item),
                                                                           spec.system_prompt),
            result_row=spec.result_row, batch_size=args.batch_size,
            max_new_tokens=spec.max_new_tokens, desc=f"{name} ({args.llm})")
        done = store.load()
        rows = [done[item.id] for item in items]
        tokens = sum(len(model.tokenizer(r["response"], add_special_tokens=False)["input_ids"])
                     for r in rows)
        # A model that does not answer but writes another audio block and question (a base
        # model continuing the pattern) names a label there, which keyword scoring counts as
        # right: also score only what comes before the first audio tag it writes.
        tagged = sum(START_AUDIO in r["response"] or END_AUDIO in r["response"] for r in rows)
        cut = [{**r, "response": re.split(f"{START_AUDIO}|{END_AUDIO}", r["response"])[0]}
               for r in rows]
        figures[name] = {"items": len(items), "run": run, "answer_tokens": tokens,
                         "tokens_per_s": tokens / run["seconds"] if run["generated"] else None,
                         "answers_with_audio_tags": tagged,
                         "scores": score(spec, rows), "scores_before_audio_tag": score(spec, cut)}
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "ceiling.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in figures.items()
                      if k not in ("hearing", "sakura-text")}, indent=2))
    for name in ("hearing", "sakura-text"):
        f = figures[name]
        print(name, f["items"], "items", f"{f['run']['seconds']:.0f} s",
              f"{f['tokens_per_s'] or 0:.1f} answer tokens/s",
              f"{f['answers_with_audio_tags']} answers write audio tags")
        for key in ("scores", "scores_before_audio_tag"):
            shown = f[key].get("summary") or {t: v.get("accuracy", v.get("wer"))
                                              for t, v in f[key].items()}
            print(" ", key, json.dumps(shown))


if __name__ == "__main__":
    main()
