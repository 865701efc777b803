"""Training benchmark: samples/s, peak memory and the per-stage breakdown of one training step.

Stages of a step (batch of B rows, one clip each): data (audio decode + Whisper log-mel, or the
tap cache's entries), the frozen encoder forward (taps; none with the tap cache), the Q-Former
connector forward + backward, the frozen LLM forward + backward (gradients flow to the audio
vectors only), and the whole step with the optimizer.

Each `--setups` entry is measured in the same run: `30s` (the released window, taps computed
every step: the trainer before the clip window), `clip` (each clip at its own window) and
`+cache` variants (`data.tap_cache`: the frozen encoder's taps computed once per clip).

    python benchmarks/bench_training.py                          # tiny-cpu recipe, embedded stack
    python benchmarks/bench_training.py --setups 30s clip clip+cache --seconds 5
    python benchmarks/bench_training.py --stack released-random --device cuda --batch-size 12

`released-random` builds the released recipe's shapes (Whisper-large-v3 encoder, 6-layer
Q-Former with 64 queries on taps [7,15,23,31], Llama-3.1-8B) with random weights, so no
download is needed, and also reports model-FLOPs utilisation (FLOPs counted by
torch.utils.flop_counter on one step; peak = the GPU's dense bf16 rate, --peak-tflops).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

SENTENCES = ["the weather is lovely today and the birds are singing",
             "please remember to bring your umbrella tomorrow morning",
             "our flight to paris was delayed by almost two hours",
             "she plays the violin in the city orchestra every weekend"]
PROMPT = "Describe the audio: what is said, and how does the speaker sound?"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int):
    """Median seconds of fn() over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def embedded_batch(batch_size: int, folder: Path, window: str, seconds: float,
                   tap_cache: Path | None):
    """The tiny-cpu recipe's model (embedded backbones) with encoder window `window`, rows
    over espeak-ng clips padded to `seconds`, collated by the training pipeline."""
    import numpy as np
    import soundfile as sf

    from desta.audio.io import load_audio
    from desta.model import DestaModel
    from desta.training.config import load_config, resolve_recipe
    from desta.training.data import Collator, Row, RowEncoder
    from desta.training.tap_cache import TapCache

    section = load_config(resolve_recipe("tiny-cpu")).model
    section.encoder_window = window
    model = DestaModel.from_config(section.to_desta_config(), device="cpu",
                                   dtype=torch.float32)
    rows, paths = [], []
    for i in range(batch_size):
        raw, wav = folder / f"raw{i}.wav", folder / f"clip{i}.wav"
        text = SENTENCES[i % len(SENTENCES)]
        if not wav.exists():
            subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
            size = int(seconds * 16_000)
            wave = load_audio(str(raw))
            sf.write(wav, np.pad(wave, (0, max(0, size - len(wave))))[:size], 16_000)
        paths.append(wav)
        response = f"The speaker calmly says: {text}. The voice is clear and steady."
        rows.append(Row(id=str(i), source=f"bench:{i}", seed_description=None, prompt=PROMPT,
                        messages=[{"role": "user", "content": f"<|AUDIO|>\n{PROMPT}",
                                   "audios": [{"audio": wav.name, "text": text}]},
                                  {"role": "assistant", "content": response}]))
    encoder = RowEncoder(model.builder, max_transcript_tokens=100)
    cache = None
    if tap_cache is not None:
        cache = TapCache(tap_cache, model)
        cache.build([(p, False) for p in paths], progress=False)
    collator = Collator(encoder, model.processor.feature_extractor, folder,
                        encoder_window=window, clip_window_step=model.config.clip_window_step,
                        tap_cache=cache)
    return model, encoder, collator, rows


def released_random_batch(batch_size: int, device: torch.device, tokenizer_dir: str,
                          window: str, seconds: float):
    """Released shapes, random weights; backbones bf16, connector float32 (as the trainer);
    features of `seconds`-long clips in encoder window `window`."""
    from transformers import (
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        WhisperConfig,
        WhisperForConditionalGeneration,
    )

    from desta.audio.features import window_frames
    from desta.model import DestaConfig, DestaModel
    from desta.model.modeling import PreparedBatch
    from desta.training.data import RowEncoder

    wcfg = WhisperConfig(d_model=1280, encoder_layers=32, encoder_attention_heads=20,
                         encoder_ffn_dim=5120, decoder_layers=2, decoder_attention_heads=20,
                         decoder_ffn_dim=5120, num_mel_bins=128, vocab_size=51866)
    lcfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                       max_position_embeddings=8192, rope_theta=500000.0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        encoder = WhisperForConditionalGeneration(wcfg)
        llm = LlamaForCausalLM(lcfg)
    torch.set_default_dtype(torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)  # any chat tokenizer: ids < vocab
    cfg = DestaConfig(encoder_model_id="random:whisper-large-v3",
                      llm_model_id="random:llama-3.1-8b", target_layer_ids=[7, 15, 23, 31],
                      qformer_num_hidden_layers=6, prompt_size=64, encoder_window=window)
    model = DestaModel(cfg, encoder=encoder, processor=None, llm=llm, tokenizer=tokenizer)
    model.connector.to(device=device, dtype=torch.float32)
    encoder_rows = RowEncoder(model.builder, max_transcript_tokens=100)
    from desta.model.assembly import Conversation

    words = " ".join(SENTENCES * 4)
    convs = [Conversation(messages=[{"role": "user", "content": f"<|AUDIO|>\n{PROMPT}"}],
                          clips=[None], target=words) for _ in range(batch_size)]
    transcripts = [[encoder_rows.transcript_ids(SENTENCES[i % 4])] for i in range(batch_size)]
    batch = model.builder.build(convs, transcripts)
    frames = window_frames(int(seconds * 16_000), window, cfg.clip_window_step)
    features = torch.randn(batch_size, 128, frames, device=device, dtype=torch.bfloat16)
    prepared = PreparedBatch(batch=batch, input_features=features, transcripts=[],
                             feature_frames=None if window == "30s" else [frames] * batch_size)
    return model, prepared


def breakdown(model, prepared, device: torch.device, repeats: int, autocast) -> dict:
    params = model.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01,
                                  fused=device.type == "cuda")

    def encoder_fwd():
        return model.encode(prepared.input_features, prepared.feature_frames)

    taps = prepared.taps  # from the tap cache: no encoder in the step
    if taps is None:
        taps, _ = encoder_fwd()

    def connector_fwd_bwd():
        with autocast():
            out = model.audio_vectors(taps, prepared.tap_lengths)
        out.float().pow(2).mean().backward()

    batch = prepared.batch
    with torch.no_grad(), autocast():
        embeds = model.embed(prepared).detach()

    def llm_fwd_bwd():
        leaf = embeds.clone().requires_grad_(True)  # stands for the audio vectors' gradient path
        with autocast():
            out = model.llm(inputs_embeds=leaf, attention_mask=batch.attention_mask.to(device),
                            position_ids=batch.position_ids.to(device),
                            labels=batch.labels.to(device))
        out.loss.backward()

    def full_step():
        with autocast():
            loss = model(prepared).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    results = {
        "encoder_forward_s": 0.0 if prepared.taps is not None else
        timed(encoder_fwd, device, repeats),
        "connector_fwd_bwd_s": timed(connector_fwd_bwd, device, repeats),
        "llm_fwd_bwd_s": timed(llm_fwd_bwd, device, repeats),
        "train_step_s": timed(full_step, device, repeats),
    }
    optimizer.zero_grad(set_to_none=True)
    results["llm_tokens_per_row"] = float(batch.attention_mask.sum(1).float().mean())
    results["trainable_params_M"] = sum(p.numel() for p in params) / 1e6
    if device.type == "cuda":
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            full_step()
        results["step_tflop"] = counter.get_total_flops() / 1e12
    return results


def run_setup(args: argparse.Namespace, setup: str, device: torch.device, folder: Path
              ) -> dict:
    """One setup ("30s", "clip", "clip+cache", ...): its step breakdown and samples/s."""
    window, _, extra = setup.partition("+")
    report: dict = {"setup": setup, "window": window, "tap_cache": extra == "cache"}
    if args.stack == "embedded":
        model, encoder, collator, rows = embedded_batch(
            args.batch_size, folder, window, args.seconds,
            folder / "tap_cache" if extra == "cache" else None)
        model.to(device)
        report["data_collate_s"] = timed(lambda: collator(rows), device, args.repeats)
        prepared = collator(rows).to_prepared(model, encoder)
        if prepared.input_features is not None:
            prepared.input_features = prepared.input_features.to(device)
        autocast = nullcontext
    else:
        if extra:
            raise SystemExit("the tap cache setups need --stack embedded (real clips)")
        tok = args.tokenizer
        if tok is None:
            from desta.backbones import EMBEDDED_LLM_ID, resolve_backbone

            tok = resolve_backbone(EMBEDDED_LLM_ID)
        model, prepared = released_random_batch(args.batch_size, device, tok, window,
                                                args.seconds)

        def autocast():
            return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    report.update(breakdown(model, prepared, device, args.repeats, autocast))
    step = report["train_step_s"] + report.get("data_collate_s", 0.0)
    report["samples_per_s"] = args.batch_size / step
    report["samples_per_s_compute_only"] = args.batch_size / report["train_step_s"]
    if device.type == "cuda":
        report["peak_gpu_memory_GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
        report["mfu"] = report["step_tflop"] / report["train_step_s"] / args.peak_tflops
    del model
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", choices=["embedded", "released-random"], default="embedded")
    parser.add_argument("--setups", nargs="+", default=["30s", "clip", "clip+cache"],
                        help="encoder window, optionally +cache (tap cache; embedded only)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4, help="tiny-cpu recipe: 4")
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--tokenizer", default=None,
                        help="chat tokenizer dir for released-random (default: the embedded "
                             "SmolLM2 one)")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="dense bf16 peak of the GPU (H100 SXM: 989, H200: 989)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)

    report: dict = {"stack": args.stack, "device": str(device), "batch_size": args.batch_size,
                    "seconds_per_clip": args.seconds, "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "machine": platform.processor() or platform.machine(), "setups": []}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    with tempfile.TemporaryDirectory() as tmp:
        for setup in args.setups:
            report["setups"].append(run_setup(args, setup, device, Path(tmp)))
    report["peak_rss_GiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(report, indent=2))
    stages = ["data_collate_s", "encoder_forward_s", "connector_fwd_bwd_s", "llm_fwd_bwd_s",
              "train_step_s"]
    first = report["setups"][0]
    print(f"\n| setup | {' | '.join(s.removesuffix('_s') + ' (ms)' for s in stages)} "
          f"| samples/s | vs {first['setup']} |")
    print("|---|" + "---:|" * (len(stages) + 2))
    for r in report["setups"]:
        cells = " | ".join(f"{r.get(k, 0.0) * 1e3:.0f}" for k in stages)
        print(f"| {r['setup']} | {cells} | {r['samples_per_s']:.2f} | "
              f"x{r['samples_per_s'] / first['samples_per_s']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
