"""torch CPU threads for `desta data generate` and `desta serve`: the same work with
`--threads 1` and `--threads 2` (or `--counts ...`), each run in a fresh subprocess, the
settings interleaved over `--rounds` rounds so that a change in the machine's load hits all
of them alike. Prints the load average around every run: on a shared machine the figures
are only comparable within one run of this script.

- generate: `desta data generate` (transformers backend, embedded SmolLM2-135M, greedy) over a
  small synthesised corpus; wall time of the whole command (model load included) and rows/min.
- serve: `desta serve` (embedded model); closed-loop text requests (`--serve-concurrency`
  clients, `max_tokens` 32), then audio requests one at a time (the bundled speech clip: VAD,
  ASR, Whisper encoder, generation); requests/s and mean latency.

    nice -n 19 .venv/bin/python benchmarks/bench_threads.py --rounds 2
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from importlib import resources
from pathlib import Path

MODEL_NAME = "desta-bench"


# The setting under test comes from --threads alone, not from the caller's environment.
ENV = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def desta(*args: str) -> list[str]:
    return [sys.executable, "-m", "desta.cli", *args]


def bench_generate(manifest: Path, work: Path, threads: int, tag: str, rows: int,
                   max_new_tokens: int) -> dict:
    out = work / f"gen-{tag}"
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run(desta("data", "generate", "--manifest", str(manifest), "--out", str(out),
                         "--threads", str(threads), "--limit", str(rows), "--max-new-tokens",
                         str(max_new_tokens), "--no-progress"),
                   check=True, capture_output=True, env=ENV)
    seconds = time.perf_counter() - t0
    written = sum(1 for _ in (out / "shard-0-of-1.jsonl").open())
    return {"threads": threads, "seconds": round(seconds, 1),
            "rows_per_min": round(60 * written / seconds, 1), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2)}


def _post(port: int, body: bytes) -> float:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as resp:
        resp.read()
    return time.perf_counter() - t0


def bench_serve(threads: int, requests: int, concurrency: int, log: Path) -> dict:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(desta("serve", "--port", str(port), "--threads", str(threads),
                                  "--served-model-name", MODEL_NAME, "--log-level", "warning"),
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=ENV)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start; see {log}") from None
                time.sleep(0.5)
        text = json.dumps({"model": MODEL_NAME, "temperature": 0, "max_tokens": 32,
                           "messages": [{"role": "user", "content": "Tell me about rivers."}]}
                          ).encode()
        clip = Path(str(resources.files("desta") / "assets" / "demo_speech.wav"))
        audio = json.dumps({"model": MODEL_NAME, "temperature": 0, "max_tokens": 32,
                            "messages": [{"role": "user", "content": [
                                {"type": "input_audio", "input_audio": {
                                    "data": base64.b64encode(clip.read_bytes()).decode(),
                                    "format": "wav"}},
                                {"type": "text", "text": "What is said?"}]}]}).encode()
        _post(port, audio)  # warm-up (loads VAD and ASR)
        load = os.getloadavg()[0]
        latencies: list[float] = []
        lock = threading.Lock()
        todo = iter(range(requests))

        def client() -> None:
            for _ in todo:
                lat = _post(port, text)
                with lock:
                    latencies.append(lat)

        t0 = time.perf_counter()
        workers = [threading.Thread(target=client) for _ in range(concurrency)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        text_wall = time.perf_counter() - t0
        audio_lat = [_post(port, audio) for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(30)
    return {"threads": threads, "text_rps": round(requests / text_wall, 2),
            "text_latency_s": round(statistics.mean(latencies), 2),
            "audio_latency_s": round(statistics.mean(audio_lat), 2),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=24, help="generate: rows per run")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--serve-requests", type=int, default=16)
    parser.add_argument("--serve-concurrency", type=int, default=4)
    parser.add_argument("--skip", choices=["generate", "serve"], default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    results: dict[str, list[dict]] = {"generate": [], "serve": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.skip != "generate":
            subprocess.run(desta("data", "synth", "--out", str(work / "corpus"), "--size",
                                 str(args.rows), "--no-progress"), check=True,
                           capture_output=True)
        for round_ in range(args.rounds):
            for threads in args.counts:
                if args.skip != "generate":
                    r = bench_generate(work / "corpus" / "manifest.jsonl", work, threads,
                                       f"{threads}-{round_}", args.rows, args.max_new_tokens)
                    results["generate"].append(r)
                    print("generate", json.dumps(r), flush=True)
                if args.skip != "serve":
                    r = bench_serve(threads, args.serve_requests, args.serve_concurrency,
                                    work / f"serve-{threads}-{round_}.log")
                    results["serve"].append(r)
                    print("serve", json.dumps(r), flush=True)

    print(f"\n{os.cpu_count()} CPUs; medians over {args.rounds} round(s)")
    print("| threads | generate rows/min | serve text req/s | text latency (s) | "
          "audio latency (s) |")
    print("|---|---|---|---|---|")
    for threads in args.counts:
        gen = [r["rows_per_min"] for r in results["generate"] if r["threads"] == threads]
        srv = [r for r in results["serve"] if r["threads"] == threads]

        def med(values: list[float]) -> str:
            return f"{statistics.median(values):.2f}" if values else "-"

        print(f"| {threads} | {med(gen)} | {med([r['text_rps'] for r in srv])} | "
              f"{med([r['text_latency_s'] for r in srv])} | "
              f"{med([r['audio_latency_s'] for r in srv])} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
