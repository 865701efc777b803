"""What a frozen Whisper encoder itself carries about the speaker: a linear probe across speakers.

For each encoder (desta backbone ids, loaded with `desta.backbones.load_encoder`), the clips of
the real corpus (`desta data real-corpus`: train.jsonl, heldout.jsonl) that carry a Gender or a
Language label go through the encoder with desta's own encode path (`DestaModel.encode`: the
30 s window the shipped connector uses, or `--window clip`, each clip in its own window). The
hidden states over the clip's real frames (the first ceil(duration * 50)) are mean-pooled, at
the final encoder output (after the last LayerNorm) and at the middle layer (raw output of layer
n/2 - 1, like desta's taps). A logistic regression fitted on the train speakers is scored on the
held-out speakers (balanced accuracy): gender, and language over the held-out language set (the
train clips of those languages only). For a multilingual encoder, the decoder's own language
detection (the language token after <|startoftranscript|>, over all 99 languages) on the
held-out clips is the upper bound of what it carries. Also prints the encoder's time for one
5 s clip window and one 30 s window, and its parameter count.

Clips are taken per speaker in file order, at most `--per-speaker`; `#8k` narrowband copies
in train are skipped, and so are train clips with neither a Gender label nor a held-out
language. Figures and run times: docs/backbones.md ("Candidate encoder: Whisper base").

    pip install scikit-learn        # the probe's logistic regression (not a desta dependency)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_encoder_probe.py \\
        --root DATA --per-speaker 60 --window clip
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from desta.model.modeling import DestaModel

LANG_CODES = {"English": "en", "Spanish": "es", "French": "fr", "Italian": "it",
              "Russian": "ru", "Czech": "cs", "Dutch": "nl"}


def read_rows(path: Path, per_speaker: int) -> list[dict]:
    by_speaker: dict[str, list[dict]] = defaultdict(list)
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            attrs = row.get("attributes") or {}
            if "#8k" in row["id"] or not ({"Gender", "Language"} & set(attrs)):
                continue
            speaker = (row.get("meta") or {}).get("speaker") or row["id"]
            if len(by_speaker[speaker]) < per_speaker:
                by_speaker[speaker].append({**row, "speaker": speaker})
    return [r for rows in by_speaker.values() for r in rows]


class EncoderOnly:
    """The encoder half of `DestaModel` (its `encode`, both windows) on a bare Whisper."""

    encode = DestaModel.encode
    _encode_window = DestaModel._encode_window

    def __init__(self, whisper, taps: list[int]) -> None:
        self.encoder, self.taps, self.device = whisper, taps, whisper.device


def embed(model_id: str, rows: list[dict], audio: dict[str, np.ndarray], window: str,
          batch: int) -> dict:
    """Mean-pooled (middle, final) states per clip id, the language detected (multilingual
    encoders), the timings, and the parameter count."""
    from transformers.modeling_outputs import BaseModelOutput

    from desta.audio.features import log_mel, window_frames
    from desta.backbones import load_encoder

    whisper, processor = load_encoder(model_id)
    layers = whisper.config.encoder_layers
    enc = EncoderOnly(whisper, [layers // 2 - 1])
    fe = processor.feature_extractor
    gen = whisper.generation_config
    multilingual = bool(getattr(gen, "is_multilingual", False))
    id_to_lang = {v: k.strip("<|>") for k, v in (gen.lang_to_id or {}).items()} if multilingual \
        else {}

    frames = {r["id"]: window_frames(len(audio[r["id"]]), window, 1.0) for r in rows}
    groups: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        groups[3000 if window == "30s" else frames[r["id"]]].append(r)
    out: dict[str, dict] = {}
    start = time.perf_counter()
    with torch.inference_mode():
        for f, group in sorted(groups.items()):
            for i in range(0, len(group), batch):
                chunk = group[i:i + batch]
                waves = [audio[r["id"]] for r in chunk]
                feats = log_mel(fe, waves, None if window == "30s" else [f] * len(chunk))
                taps, final = enc.encode(feats)
                detected = []
                if multilingual:
                    ids = whisper.detect_language(
                        encoder_outputs=BaseModelOutput(last_hidden_state=final))
                    detected = [id_to_lang[int(t)] for t in ids.flatten()]
                for j, r in enumerate(chunk):
                    n = min(math.ceil(r["duration"] * 50), final.shape[1])
                    out[r["id"]] = {"middle": taps[0][j, :n].mean(0).numpy(),
                                    "final": final[j, :n].mean(0).numpy(),
                                    "lang": detected[j] if detected else None}
    seconds = time.perf_counter() - start
    return {"clips": out, "seconds": seconds, "params": sum(
        p.numel() for p in whisper.get_encoder().parameters()),
        "time_5s": time_window(enc, fe, 500), "time_30s": time_window(enc, fe, 3000),
        "multilingual": multilingual, "layers": layers}


def time_window(enc: EncoderOnly, fe, frames: int, reps: int = 3) -> float:
    """Median seconds of one encoder pass over one window of `frames` mel frames."""
    from desta.audio.features import log_mel

    wave = np.random.default_rng(0).standard_normal(frames * 160).astype(np.float32) * 0.1
    feats = log_mel(fe, [wave], None if frames == 3000 else [frames])
    times = []
    with torch.inference_mode():
        enc.encode(feats)
        for _ in range(reps):
            t = time.perf_counter()
            enc.encode(feats)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def probe(train: list[dict], held: list[dict], clips: dict, key: str, label: str,
          classes: set[str] | None = None) -> tuple[float, int, int]:
    """Balanced accuracy on the held-out speakers of a logistic regression on train speakers."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import balanced_accuracy_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        raise SystemExit("bench_encoder_probe needs scikit-learn: pip install scikit-learn") from None

    def xy(rows: list[dict]) -> tuple[np.ndarray, list[str]]:
        rows = [r for r in rows if label in r["attributes"]
                and (classes is None or r["attributes"][label] in classes)]
        return (np.stack([clips[r["id"]][key] for r in rows]),
                [r["attributes"][label] for r in rows])

    (xt, yt), (xh, yh) = xy(train), xy(held)
    clf = make_pipeline(StandardScaler(), LogisticRegression(
        max_iter=3000, class_weight="balanced", C=0.1))
    clf.fit(xt, yt)
    return balanced_accuracy_score(yh, clf.predict(xh)), len(yt), len(yh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/work/realdata/root"),
                        help="data root holding desta-corpus/ (train.jsonl, heldout.jsonl)")
    parser.add_argument("--encoders", nargs="+",
                        default=["embedded:whisper-tiny.en", "embedded:whisper-base"])
    parser.add_argument("--per-speaker", type=int, default=60)
    parser.add_argument("--window", choices=["30s", "clip"], default="30s")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from desta.audio.io import load_audio

    corpus = args.root / "desta-corpus"
    train = read_rows(corpus / "train.jsonl", args.per_speaker)
    held = read_rows(corpus / "heldout.jsonl", args.per_speaker)
    held_langs = {r["attributes"]["Language"] for r in held if "Language" in r["attributes"]}
    train = [r for r in train  # only what a probe uses
             if "Gender" in r["attributes"] or r["attributes"].get("Language") in held_langs]
    audio = {r["id"]: load_audio(args.root / r["audio"]) for r in train + held}
    print(f"{len(train)} train clips ({len({r['speaker'] for r in train})} speakers), "
          f"{len(held)} held-out ({len({r['speaker'] for r in held})} speakers); held-out "
          f"languages: {', '.join(sorted(held_langs))}; window {args.window}, "
          f"{args.threads} thread(s)", flush=True)

    results = []
    for model_id in args.encoders:
        emb = embed(model_id, train + held, audio, args.window, args.batch)
        row = {"encoder": model_id, "params_M": round(emb["params"] / 1e6, 2),
               "time_5s_clip_s": round(emb["time_5s"], 3),
               "time_30s_window_s": round(emb["time_30s"], 3),
               "embed_seconds": round(emb["seconds"], 1)}
        for key in ("middle", "final"):
            g, ng_t, ng_h = probe(train, held, emb["clips"], key, "Gender")
            lang, nl_t, nl_h = probe(train, held, emb["clips"], key, "Language", held_langs)
            row[f"gender_{key}"], row[f"language_{key}"] = round(100 * g, 1), round(100 * lang, 1)
        row["n"] = {"gender_train": ng_t, "gender_held": ng_h, "lang_train": nl_t,
                    "lang_held": nl_h}
        if emb["multilingual"]:
            # Detected over all 99 languages; balanced = mean of the per-language recalls.
            hits: dict[str, list[bool]] = defaultdict(list)
            for r in held:
                if r["attributes"].get("Language") in LANG_CODES:
                    code = LANG_CODES[r["attributes"]["Language"]]
                    hits[code].append(emb["clips"][r["id"]]["lang"] == code)
            every = [h for v in hits.values() for h in v]
            row["langid_acc"] = round(100 * sum(every) / len(every), 1)
            row["langid_balanced"] = round(100 * statistics.mean(
                sum(v) / len(v) for v in hits.values()), 1)
            row["langid_per_language"] = {k: round(100 * sum(v) / len(v), 1)
                                          for k, v in sorted(hits.items())}
        results.append(row)
        print(json.dumps(row), flush=True)

    print(f"\nheld-out speakers, balanced accuracy % (window {args.window}, "
          f"<= {args.per_speaker} clips/speaker)")
    print(f"{'encoder':28} {'params':>7} {'gender mid':>10} {'gender last':>11} "
          f"{'lang mid':>8} {'lang last':>9} {'langid':>6} {'5 s clip':>8} {'30 s win':>8}")
    for r in results:
        langid = f"{r['langid_balanced']:.1f}" if "langid_balanced" in r else "-"
        print(f"{r['encoder']:28} {r['params_M']:>6.1f}M {r['gender_middle']:>10.1f} "
              f"{r['gender_final']:>11.1f} {r['language_middle']:>8.1f} "
              f"{r['language_final']:>9.1f} {langid:>6} {r['time_5s_clip_s']:>7.3f}s "
              f"{r['time_30s_window_s']:>7.3f}s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
