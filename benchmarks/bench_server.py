"""Serving benchmark: requests/s and latency percentiles at several concurrency levels, with
dynamic batching on and off (max_batch_size=1) in one run, and the server's RSS memory before
and after the load.

Each mode starts a real server (`python -m desta.cli serve`) in a subprocess on
loopback; client threads send OpenAI-format chat requests (a speech clip + a question, greedy,
fixed max_tokens) in a closed loop for a fixed time, then wait for what is in flight.

    .venv/bin/python benchmarks/bench_server.py --levels 1 4 16 64 --seconds 15
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import numpy as np

MODEL_NAME = "desta-bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_server(port: int, max_batch_size: int, model: str, device: str | None,
                 log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "desta.cli", "serve", "--model", model,
           "--port", str(port), "--served-model-name", MODEL_NAME,
           "--max-batch-size", str(max_batch_size), "--max-queue", "1024",
           "--log-level", "warning"]
    if device:
        cmd += ["--device", device]
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return wait_until_healthy(proc, port, log_path)


def wait_until_healthy(proc: subprocess.Popen, port: int, log_path: Path,
                       timeout: float = 300) -> subprocess.Popen:
    """`proc` once its /health answers ok; an error naming `log_path` if it exits or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if json.loads(r.read())["status"] == "ok":
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server did not come up; see {log_path}")


def request(port: int, body: bytes) -> float:
    """One chat completion; returns its latency in seconds (raises on any error)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as resp:
        reply = json.loads(resp.read())
    elapsed = time.perf_counter() - t0
    if not reply["choices"][0]["message"]["content"] and reply["usage"]["completion_tokens"]:
        raise RuntimeError(f"empty answer: {reply}")
    return elapsed


def run_level(port: int, body: bytes, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop_at:
            try:
                lat = request(port, body)
                with lock:
                    latencies.append(lat)
            except (OSError, RuntimeError, KeyError, urllib.error.HTTPError) as err:
                with lock:
                    errors.append(repr(err))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"concurrency": concurrency, "requests": len(latencies), "errors": len(errors),
            "error_sample": errors[:3], "wall_s": round(wall, 2),
            "rps": round(len(latencies) / wall, 3),
            "p50_s": round(float(np.percentile(lat, 50)), 3),
            "p90_s": round(float(np.percentile(lat, 90)), 3),
            "p99_s": round(float(np.percentile(lat, 99)), 3)}


def bench_mode(name: str, max_batch_size: int, args: argparse.Namespace, body: bytes) -> dict:
    port = free_port()
    proc = start_server(port, max_batch_size, args.model, args.device,
                        Path(args.log_dir) / f"server-{name}.log")
    try:
        for _ in range(2):  # warm up: first ASR/VAD loads, allocator growth
            request(port, body)
        rss_start = rss_mib(proc.pid)
        levels = []
        for c in args.levels:
            result = run_level(port, body, c, args.seconds)
            result["rss_after_mib"] = round(rss_mib(proc.pid), 1)
            levels.append(result)
            print(f"[{name}] c={c:3d}: {result['rps']:.2f} req/s, p50 {result['p50_s']:.2f}s "
                  f"p90 {result['p90_s']:.2f}s p99 {result['p99_s']:.2f}s, "
                  f"{result['requests']} ok / {result['errors']} errors, "
                  f"RSS {result['rss_after_mib']:.0f} MiB", flush=True)
        # More passes at the highest level: RSS must level off, not keep growing with load.
        repeats = []
        for _ in range(args.repeats):
            again = run_level(port, body, args.levels[-1], args.seconds)
            again["rss_after_mib"] = round(rss_mib(proc.pid), 1)
            repeats.append(again)
            print(f"[{name}] repeat c={args.levels[-1]}: {again['rps']:.2f} req/s, "
                  f"{again['errors']} errors, RSS {again['rss_after_mib']:.0f} MiB", flush=True)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            health = json.loads(r.read())
    finally:
        proc.terminate()
        proc.wait(30)
    return {"mode": name, "max_batch_size": max_batch_size, "levels": levels,
            "repeats_top_level": repeats, "rss_start_mib": round(rss_start, 1),
            "rss_after_levels_mib": levels[-1]["rss_after_mib"],
            "rss_after_repeats_mib": [r["rss_after_mib"] for r in repeats],
            "server_health": health}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--seconds", type=float, default=15.0, help="load time per level")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2,
                        help="extra passes at the highest level, to see RSS level off")
    parser.add_argument("--modes", nargs="+", choices=["batching", "no-batching"],
                        default=["batching", "no-batching"])
    parser.add_argument("--max-batch-size", type=int, default=16,
                        help="for the batching mode (the server default)")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--device", default=None)
    parser.add_argument("--audio", type=Path, default=None,
                        help="clip to send (default: the bundled demo speech clip)")
    parser.add_argument("--workload", choices=["audio", "text"], default="audio",
                        help="audio: the clip + a question (ASR included); text: a question "
                             "only (the LLM alone)")
    parser.add_argument("--log-dir", default="/tmp")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    clip = args.audio or Path(str(resources.files("desta") / "assets" / "demo_speech.wav"))
    data = base64.b64encode(clip.read_bytes()).decode()
    content: list[dict] = [{"type": "text", "text": "What is said in the audio?"}]
    if args.workload == "audio":
        content.insert(0, {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
    body = json.dumps({
        "model": MODEL_NAME, "temperature": 0, "max_tokens": args.max_tokens,
        "messages": [{"role": "user", "content": content}],
    }).encode()

    print(f"workload {args.workload}, clip {clip.name}, max_tokens {args.max_tokens}, {args.seconds:g} s per level, "
          f"{os.cpu_count()} CPUs", flush=True)
    runs = {mode: bench_mode(mode, args.max_batch_size if mode == "batching" else 1, args,
                             body) for mode in args.modes}
    if len(runs) == 2:
        on, off = runs["batching"], runs["no-batching"]
        print("\n| concurrency | batching req/s | p50 / p90 / p99 (s) | no batching req/s | "
              "p50 / p90 / p99 (s) | gain |")
        print("|---|---|---|---|---|---|")
        for a, b in zip(on["levels"], off["levels"], strict=True):
            gain = a["rps"] / b["rps"] if b["rps"] else float("nan")
            print(f"| {a['concurrency']} | {a['rps']:.2f} | {a['p50_s']:.2f} / {a['p90_s']:.2f}"
                  f" / {a['p99_s']:.2f} | {b['rps']:.2f} | {b['p50_s']:.2f} / {b['p90_s']:.2f}"
                  f" / {b['p99_s']:.2f} | {gain:.2f}x |")
    for m in runs.values():
        errors = sum(x["errors"] for x in m["levels"] + m["repeats_top_level"])
        print(f"{m['mode']}: RSS {m['rss_start_mib']:.0f} MiB after warm-up, "
              f"{m['rss_after_levels_mib']:.0f} MiB after all levels, then "
              f"{m['rss_after_repeats_mib']} MiB after each repeat at c={args.levels[-1]}; "
              f"batches {m['server_health']['batches']}, largest "
              f"{m['server_health']['max_batch_size_seen']}, errors {errors}")
    if args.out:
        args.out.write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
