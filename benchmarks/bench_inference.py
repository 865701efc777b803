"""Inference benchmark: per-stage time, end-to-end throughput of `DestaModel.generate`, and the
released code's calling pattern on the same model, clips and settings, all in one run.

Stages (per batch): audio load, VAD, Whisper features, encoder (taps; for the 30 s window the
same pass gives the ASR encoder states), ASR (30 s window: decode from those states; clip
window: Whisper's own 30 s pass + decode), Q-Former connector, LLM prefill, LLM decode per
token (both through `desta.model.decoding.decode`, as `generate` runs them).

End to end, for speech clips with VAD + ASR and with transcripts given:

* **released pattern**: what the released DeSTA2.5 `generate` does, one clip per call: load the
  clip, Silero VAD on it (always, even with a given transcript), Whisper's `generate` on its
  own features for the transcript (encoder pass 1), then features again, the encoder for the
  taps (pass 2), the connector, and `llm.generate` on a batch of one;
* **ours**: `DestaModel.generate` on batches of each size.

Greedy token ids of every configuration are compared with the released pattern's.

    python benchmarks/bench_inference.py                       # embedded stack on CPU, 30s + clip
    python benchmarks/bench_inference.py --clock cpu           # on a shared machine
    python benchmarks/bench_inference.py --model CKPT --device cuda --batch-sizes 1 8 32 64
    python benchmarks/bench_inference.py --full-size-random --device cuda   # released shapes

Clips are real recorded speech with `--manifest` (a ClipRecord manifest such as
`desta data real-corpus`'s train.jsonl: its English clips with a transcript closest in length
to `--seconds`), else espeak-ng sentences (needs `apt-get install espeak-ng`); either is padded with silence (or
cut) to `--seconds`.

    python benchmarks/bench_inference.py --threads 1 --manifest DATA/desta-corpus/train.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

SENTENCES = [
    "the weather is lovely today and the birds are singing",
    "please remember to bring your umbrella tomorrow morning",
    "our flight to paris was delayed by almost two hours",
    "she plays the violin in the city orchestra every weekend",
    "the library closes at eight o'clock on fridays",
    "a cup of hot tea is the best way to start the day",
    "turn left at the second traffic light and keep going",
    "the children built a sandcastle near the water",
]
QUESTION = "What does the speaker say, and what is their mood?"
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def make_clips(folder: Path, n: int, seconds: float) -> list[tuple[Path, str]]:
    """n espeak-ng clips at 16 kHz, each padded with silence or cut to `seconds`."""
    from desta.audio.io import load_audio

    clips = []
    for i in range(n):
        raw, path = folder / f"raw{i}.wav", folder / f"clip{i}.wav"
        voice = ["en-us", "en-gb", "en-us+f3", "en-us+m3"][i % 4]
        sentence = SENTENCES[i % len(SENTENCES)]
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(140 + 10 * (i % 5)), "-w",
                        str(raw), sentence], check=True)
        wave = load_audio(str(raw))
        size = int(seconds * 16_000)
        wave = np.pad(wave, (0, max(0, size - len(wave))))[:size]
        sf.write(path, wave, 16_000)
        clips.append((path, sentence))
    return clips


def real_clips(manifest: Path, folder: Path, n: int, seconds: float) -> list[tuple[Path, str]]:
    """The n English clips with a transcript of a ClipRecord manifest closest in length to
    `seconds`, each padded with silence or cut to `seconds`, with their transcripts."""
    from desta.audio.io import load_audio
    from desta.data.manifest import manifest_audio_root
    from desta.data.seed import read_manifest

    root = manifest_audio_root(manifest)
    records = [r for r in read_manifest(manifest) if r.domain == "speech" and r.transcript
               and r.meta.get("language") == "en"]
    records.sort(key=lambda r: (abs((r.duration or 0) - seconds), r.id))
    if len(records) < n:
        raise SystemExit(f"{manifest}: {len(records)} English clips with a transcript, need {n}")
    clips, size = [], int(seconds * 16_000)
    for i, rec in enumerate(records[:n]):
        wave = load_audio(str(root / rec.audio))
        path = folder / f"real{i}.wav"
        sf.write(path, np.pad(wave, (0, max(0, size - len(wave))))[:size], 16_000)
        clips.append((path, rec.transcript))
    return clips


class Timer:
    def __init__(self, clock: str, device: torch.device) -> None:
        self.now = CLOCKS[clock]
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def once(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        self.sync()
        t0 = self.now()
        result = fn()
        self.sync()
        return self.now() - t0, result

    def median(self, fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
        """Median time of `fn()` over `repeats` runs after one warm-up."""
        fn()
        runs = [self.once(fn) for _ in range(repeats)]
        return statistics.median(t for t, _ in runs), runs[-1][1]


def messages(clips: list[tuple[Path, str]], given: bool) -> list[list[dict]]:
    return [[{"role": "user", "content": f"<|AUDIO|>\n{QUESTION}",
              "audios": [{"audio": str(path), "text": sentence if given else None}]}]
            for path, sentence in clips]


def stage_times(model: Any, clips: list[tuple[Path, str]], new_tokens: int, timer: Timer
                ) -> dict[str, float]:
    from desta.audio.io import load_audio
    from desta.model.decoding import decode

    out: dict[str, float] = {}
    out["audio_load"], waves = timer.median(lambda: [load_audio(str(c)) for c, _ in clips])
    out["vad"], _ = timer.median(lambda: model.speech_detector.has_speech_batch(waves))
    frames = model.feature_frames(waves)
    out["features"], feats = timer.median(lambda: model.features(waves))
    out["encoder"], (taps, final) = timer.median(lambda: model.encode(feats, frames))
    if frames is None:  # ASR decodes from the states of the same pass
        out["asr"], texts = timer.median(lambda: model.transcriber.transcribe_encoded(final))
    else:  # ASR runs Whisper's own 30 s window
        out["asr"], texts = timer.median(lambda: model.transcriber.transcribe(waves))
    lengths = None if frames is None else [f // 2 for f in frames]
    with torch.no_grad():
        out["qformer"], _ = timer.median(lambda: model.audio_vectors(taps, lengths))
        msgs = [[{"role": "user", "content": f"<|AUDIO|>\n{QUESTION}",
                  "audios": [{"audio": str(c), "text": t}]}] for (c, _), t in zip(clips, texts)]
        prepared = model.prepare(msgs)
        prepared.taps = taps
        ids, embeds, shareable = model._prompt_rows(prepared)

        def gen(n: int) -> Any:
            return decode(model.llm, ids, prompt_embeds=embeds, shareable=shareable,
                          max_new_tokens=n, stop_ids=(), max_active=len(ids))

        out["prefill"], _ = timer.median(lambda: gen(1))
        full, _ = timer.median(lambda: gen(new_tokens))
    out["decode_per_token"] = (full - out["prefill"]) / (new_tokens - 1)
    return out


def released_pattern(model: Any, clips: list[tuple[Path, str]], given: bool, new_tokens: int
                     ) -> list[list[int]]:
    """The released `generate`, one clip per call: VAD always; Whisper `generate` on the
    clip's own features for its transcript (encoder pass 1); then features + encoder for the
    taps (pass 2) + connector + `llm.generate` on a batch of one."""
    from desta.audio.io import load_audio

    token_ids = []
    for path, sentence in clips:
        wave = load_audio(str(path))
        speech = model.speech_detector.has_speech_batch([wave])[0]
        if not speech:
            text = " "  # the released code also overrides a given transcript here
        elif given:
            text = sentence
        else:
            text = model.transcriber.transcribe([wave])[0]
        conv = [{"role": "user", "content": f"<|AUDIO|>\n{QUESTION}",
                 "audios": [{"audio": str(path), "text": text}]}]
        prepared = model.prepare([conv])
        out = model.generate_prepared(prepared, max_new_tokens=new_tokens)
        token_ids.append(model._until_stop(out[0].tolist()))
    return token_ids


def end_to_end(model: Any, clips: list[tuple[Path, str]], batch_sizes: list[int],
               new_tokens: int, timer: Timer, other: Any = None) -> dict[str, Any]:
    """clips/s of the released pattern and of `generate` at each batch size, with ASR and
    with given transcripts, and how many answers equal the released pattern's. `other`: the
    same weights in another dtype, whose `generate` rows are added ("batch 8, bfloat16") and
    compared with the released pattern run in `model`'s dtype."""
    results: dict[str, Any] = {}
    for given in (False, True):
        mode = "given" if given else "asr"
        released_pattern(model, clips[:1], given, 4)  # warm-up
        seconds, reference = timer.once(
            lambda: released_pattern(model, clips, given, new_tokens))  # noqa: B023
        rows = {"released": {"seconds": seconds, "clips_per_s": len(clips) / seconds,
                             "same_as_released": len(clips)}}
        msgs = messages(clips, given)
        runs = [(model, "")] + ([(other, f", {str(other.dtype).removeprefix('torch.')}")]
                                if other is not None else [])
        for m, suffix in runs:
            for b in batch_sizes:
                batches = [msgs[i:i + b] for i in range(0, len(msgs), b)]
                m.generate(batches[0], max_new_tokens=4)  # warm-up
                seconds, outs = timer.once(
                    lambda: [m.generate(x, max_new_tokens=new_tokens)  # noqa: B023
                             for x in batches])  # noqa: B023
                ids = [row for out in outs for row in out.token_ids]
                rows[f"batch {b}{suffix}"] = {
                    "seconds": seconds, "clips_per_s": len(clips) / seconds,
                    "same_as_released": sum(a == r for a, r in zip(ids, reference))}
        for r in rows.values():
            r["vs_released"] = r["clips_per_s"] / rows["released"]["clips_per_s"]
        results[mode] = rows
    return results


def build_model(args: argparse.Namespace, window: str) -> Any:
    from desta.model import DestaConfig, DestaModel

    if args.full_size_random:
        from full_size import full_size_random_model

        model = full_size_random_model(args.device or "cuda", assets=args.assets,
                                       encoder_window=window)
        # Random decoder weights never emit end-of-text; cap ASR at the length a real
        # transcript of these clips has (~20 tokens) so the figures stay representative.
        model.transcriber.max_new_tokens = 24
        return model
    dtype = getattr(torch, args.dtype) if args.dtype else None
    if args.model == "embedded":
        return DestaModel.from_config(DestaConfig(encoder_window=window), device=args.device,
                                      dtype=dtype).eval()
    return DestaModel.from_pretrained(args.model, device=args.device, dtype=dtype).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--windows", nargs="+", default=["30s", "clip"],
                        help="encoder windows to build the embedded model with (a checkpoint "
                             "keeps its own)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None,
                        help="model dtype (default: float32 on CPU, bfloat16 on GPU)")
    parser.add_argument("--ours-dtype", default=None,
                        help="also run `generate` with the same weights in this dtype (e.g. "
                             "bfloat16 on an AVX-512-BF16 CPU), against the released pattern "
                             "in --dtype")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--clips", type=int, default=None, help="default: largest batch size")
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="cpu = process CPU time (steadier on a shared CPU machine)")
    parser.add_argument("--manifest", type=Path,
                        help="real clips: a ClipRecord manifest (default: espeak-ng sentences)")
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--full-size-random", action="store_true",
                        help="Whisper-large-v3 + 6-layer Q-Former + Llama-3.1-8B shapes with "
                             "random weights (no download needed; GPU recommended)")
    parser.add_argument("--assets", type=Path,
                        help="tokenizer/config files for --full-size-random (see full_size.py)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    windows = args.windows if args.model == "embedded" or args.full_size_random else ["own"]
    n = args.clips or max(args.batch_sizes)
    results: dict[str, Any] = {"model": args.model, "torch_threads": torch.get_num_threads(),
                               "cpu": platform.processor(), "clock": args.clock,
                               "clips": n, "seconds_per_clip": args.seconds,
                               "new_tokens": args.new_tokens, "windows": {},
                               "audio": str(args.manifest) if args.manifest else "espeak-ng"}
    with tempfile.TemporaryDirectory() as tmp:
        clips = (real_clips(args.manifest, Path(tmp), n, args.seconds) if args.manifest
                 else make_clips(Path(tmp), n, args.seconds))
        for window in windows:
            t0 = time.perf_counter()
            model = build_model(args, window)
            timer = Timer(args.clock, model.device)
            name = model.config.encoder_window
            entry: dict[str, Any] = {"device": str(model.device), "dtype": str(model.dtype),
                                     "load_seconds": time.perf_counter() - t0, "stages": {}}
            print(f"\n== {args.model}, encoder window {name}, on {model.device} "
                  f"({model.dtype}), {torch.get_num_threads()} thread(s), {args.clock} clock, "
                  f"{n} clips of {args.seconds:g} s, {args.new_tokens} new tokens")
            if not args.skip_stages:
                for b in args.batch_sizes:
                    entry["stages"][b] = stage_times(model, clips[:b], args.new_tokens, timer)
                print("stage (ms per batch)" + "".join(f"{'bs=' + str(b):>11}"
                                                       for b in args.batch_sizes))
                for stage in next(iter(entry["stages"].values())):
                    print(f"{stage:<20}" + "".join(f"{entry['stages'][b][stage] * 1e3:>11.1f}"
                                                   for b in args.batch_sizes))
            other = (copy.deepcopy(model).to(getattr(torch, args.ours_dtype))
                     if args.ours_dtype else None)
            entry["end_to_end"] = end_to_end(model, clips, args.batch_sizes, args.new_tokens,
                                             timer, other)
            for mode, rows in entry["end_to_end"].items():
                print(f"end to end, {'transcripts given' if mode == 'given' else 'VAD + ASR'}:")
                for label, r in rows.items():
                    print(f"  {label:<18} {r['clips_per_s']:7.3f} clips/s  ({r['seconds']:.1f} s)"
                          f"  x{r['vs_released']:.2f} vs released pattern, same answers "
                          f"{r['same_as_released']}/{n}")
            results["windows"][name] = entry
            del model, other
    names = list(results["windows"])
    if len(names) == 2 and not args.skip_stages:
        a, b = (results["windows"][k]["stages"] for k in names)
        print(f"\nencoder + Q-Former, {names[0]} / {names[1]}:")
        for bs in args.batch_sizes:
            ratio = ((a[bs]["encoder"] + a[bs]["qformer"])
                     / (b[bs]["encoder"] + b[bs]["qformer"]))
            results.setdefault("encoder_qformer_ratio", {})[bs] = ratio
            print(f"  bs={bs}: x{ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
