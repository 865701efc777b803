"""Rows per minute of `desta data generate` with the embedded backbone (SmolLM2-135M).

Measures, in one run on the same synthetic clips and the same greedy settings, through the real
loop (`run_generation`: seed descriptions, prompt sampling, generation, fsync per batch):

1. one row at a time with `model.generate` (the transformers backend before continuous
   batching, batch size 1);
2. batches of 8 with `model.generate` (that backend's old default);
3. the continuous engine with its defaults (`desta.model.decoding.decode`);
4. the continuous engine one row at a time;
5. optionally the OpenAI-compatible backend against `desta serve` (in-process, loopback,
   dynamic batching) at the given concurrencies.

Every configuration's rows are compared with configuration 1's (same response text). Wall time
and process CPU time are both reported: on a shared machine the CPU time is the steadier
measure of the work done. Model loading is not timed.

    .venv/bin/python benchmarks/bench_data_generation.py --clips 32 --max-new-tokens 128
    .venv/bin/python benchmarks/bench_data_generation.py --dtype bfloat16 --concurrency 1 16
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from desta.data.backends import (
    DEFAULT_ITEMS_PER_CALL,
    DEFAULT_MAX_ACTIVE,
    OpenAIBackend,
    SamplingParams,
    TransformersBackend,
)
from desta.data.generate import GenerateConfig, run_generation
from desta.data.instructions import InstructionPool
from desta.data.synth import build_synth_corpus


def _timed(backend: Any, manifest: Path, pool: InstructionPool, work: Path, name: str,
           reference: dict[str, str] | None) -> dict[str, Any]:
    out = work / name.replace(" ", "_").replace(",", "")
    cpu, start = time.process_time(), time.perf_counter()
    report = run_generation(GenerateConfig(manifest=manifest, out_dir=out, progress=False),
                            backend, pool)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = [json.loads(line) for line in (out / "shard-0-of-1.jsonl").read_text().splitlines()]
    answers = {r["id"]: r["response"] for r in rows}
    words = sum(len(r["response"].split()) for r in rows)
    result = {"config": name, "rows": report.written, "failed": report.failed,
              "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
              "rows_per_minute": round(60 * report.written / seconds, 2),
              "rows_per_cpu_minute": round(60 * report.written / cpu, 2),
              "response_words_mean": round(words / max(1, len(rows)), 1),
              "same_as_one_at_a_time": (None if reference is None else
                                        sum(answers.get(k) == v for k, v in reference.items()))}
    print(json.dumps(result), flush=True)
    result["answers"] = answers
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--dtype", default="float32", help="float32 or bfloat16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_ITEMS_PER_CALL,
                        help="items per call of the continuous engine")
    parser.add_argument("--max-active", type=int, default=DEFAULT_MAX_ACTIVE)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[],
                        help="also time the openai backend against `desta serve` at these")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="bench_data_gen_"))
    manifest = build_synth_corpus(work / "corpus", size=args.clips, seed=0, progress=False)
    pool = InstructionPool.load()
    params = SamplingParams(max_new_tokens=args.max_new_tokens)
    results = []

    local = TransformersBackend(params=params, batch_size=1, device=args.device,
                                dtype=args.dtype, engine="generate")
    local.generate([[{"role": "user", "content": "Hi"}]], [0])  # warm-up
    base = _timed(local, manifest, pool, work, "generate, one at a time", None)
    results.append(base)
    reference = base["answers"]
    local.batch_size = local.max_active = 8
    results.append(_timed(local, manifest, pool, work, "generate, batch 8", reference))
    local.engine = "continuous"
    local.batch_size, local.max_active = args.batch_size, min(args.batch_size, args.max_active)
    results.append(_timed(local, manifest, pool, work,
                          f"continuous, {local.batch_size} per call, {local.max_active} active",
                          reference))
    local.batch_size = local.max_active = 1
    results.append(_timed(local, manifest, pool, work, "continuous, one at a time", reference))
    local.close()

    if args.concurrency:
        from desta.inference.server import ServerConfig, ServerThread
        from desta.model import DestaModel

        model = DestaModel.from_config(device=args.device,
                                       dtype=getattr(torch, args.dtype)).eval()
        config = ServerConfig(model_name="desta-embedded", max_batch_size=16, batch_wait_ms=10,
                              max_queue=256)
        with ServerThread(model, config) as server:
            for concurrency in args.concurrency:
                remote = OpenAIBackend(server.base_url + "/v1", params=params,
                                       concurrency=concurrency)
                results.append(_timed(remote, manifest, pool, work,
                                      f"openai concurrency {concurrency}", reference))
                remote.close()

    fast = results[2]
    ratios = {
        "continuous_over_generate_one_at_a_time": {
            "wall": round(base["seconds"] / fast["seconds"], 2),
            "cpu": round(base["cpu_seconds"] / fast["cpu_seconds"], 2)},
        "continuous_over_generate_batch_8": {
            "wall": round(results[1]["seconds"] / fast["seconds"], 2),
            "cpu": round(results[1]["cpu_seconds"] / fast["cpu_seconds"], 2)},
        "generate_batch_8_over_one_at_a_time": {
            "wall": round(base["seconds"] / results[1]["seconds"], 2),
            "cpu": round(base["cpu_seconds"] / results[1]["cpu_seconds"], 2)},
        "continuous_over_continuous_one_at_a_time": {
            "wall": round(results[3]["seconds"] / fast["seconds"], 2),
            "cpu": round(results[3]["cpu_seconds"] / fast["cpu_seconds"], 2)},
    }
    for r in results:
        r.pop("answers")
    summary = {"device": args.device, "dtype": args.dtype, "cpu_threads": args.threads,
               "machine": platform.processor() or platform.machine(),
               "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
               "clips": args.clips, "max_new_tokens": args.max_new_tokens, "ratios": ratios,
               "results": results}
    print(f"\n{args.clips} rows, {args.max_new_tokens} new tokens max, {args.dtype}, "
          f"{args.threads} thread(s)")
    print("| configuration | rows | wall s | CPU s | rows/min (wall) | same answers as row 1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        same = "-" if r["same_as_one_at_a_time"] is None else \
            f"{r['same_as_one_at_a_time']}/{base['rows']}"
        print(f"| {r['config']} | {r['rows']} | {r['seconds']} | {r['cpu_seconds']} | "
              f"{r['rows_per_minute']} | {same} |")
    for name, value in ratios.items():
        print(f"{name}: {value['wall']}x wall, {value['cpu']}x CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
