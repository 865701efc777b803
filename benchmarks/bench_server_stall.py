"""Head-of-line blocking benchmark: latency of a small request sent while a maximum-size
request is in the server.

Starts a real server (`python -m desta.cli serve`, embedded model) in a subprocess on
loopback, then for each scenario sends the big request from one thread and, `--delay` seconds
later, a small text request (greedy, `max_tokens` 8) from another, and records both latencies:

- `alone`: the small request with nothing else in the server (the baseline);
- `huge-text`: a text prompt of `--huge-mb` MB (under the default 32 MiB body limit);
- `long-admitted`: a long text prompt the server accepts (`--long-words` words, one token
  each: half the embedded backbone's 8192-token context), `max_tokens` 1. Its prefill holds
  the single worker, so a small request behind it waits for it before and after the fix.

`--src NAME=DIR` (repeatable) runs checkouts' code (e.g. `git worktree`s of two commits) with
the same venv; with several, one server per checkout is started and the scenarios alternate
between them, so "before" and "after" figures come from one run under the same load:

    git worktree add --detach /tmp/before OLD_COMMIT
    nice -n 19 .venv/bin/python benchmarks/bench_server_stall.py \
        --src before=/tmp/before/src --src after=src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench_server import MODEL_NAME, free_port, wait_until_healthy


def start_server(port: int, src: Path | None, threads: int | None, log_path: Path,
                 timeout: float) -> subprocess.Popen:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = [sys.executable, "-m", "desta.cli", "serve", "--port", str(port),
           "--served-model-name", MODEL_NAME, "--log-level", "warning"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=log_path.open("w"), stderr=subprocess.STDOUT, env=env)
    return wait_until_healthy(proc, port, log_path, timeout)


def post(port: int, body: bytes, timeout: float = 600) -> tuple[float, int]:
    """(latency in s, HTTP status) of one chat completion."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        err.read()
        status = err.code
    return time.perf_counter() - t0, status


def body(text: str, max_tokens: int) -> bytes:
    return json.dumps({"model": MODEL_NAME, "temperature": 0, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": text}]}).encode()


def during(port: int, big: bytes, small: bytes, delay: float) -> dict:
    """Send `big`, then `small` `delay` s later; both latencies and statuses."""
    out: dict = {}

    def send_big() -> None:
        out["big_s"], out["big_status"] = post(port, big)

    thread = threading.Thread(target=send_big)
    thread.start()
    time.sleep(delay)
    out["small_s"], out["small_status"] = post(port, small)
    thread.join()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", default=[], metavar="NAME=DIR",
                        help="a checkout's src/ folder to run (repeatable; default: the "
                             "installed desta)")
    parser.add_argument("--threads", type=int, default=None,
                        help="pass --threads to `desta serve` (omit for older checkouts)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.5,
                        help="seconds between the big and the small request")
    parser.add_argument("--huge-mb", type=float, default=16.0)
    parser.add_argument("--long-words", type=int, default=3900,
                        help="words of the long admitted prompt (one token each)")
    parser.add_argument("--startup-timeout", type=float, default=1800.0)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    trees: dict[str, Path | None] = {}
    for item in args.src or ["installed="]:
        name, _, folder = item.partition("=")
        trees[name] = Path(folder) if folder else None
    small = body("Say hi.", 8)
    huge = body("hello world " * int(args.huge_mb * 2**20 / 12), 1)
    longest = body("hello world " * (args.long_words // 2), 1)
    servers: dict[str, tuple[int, subprocess.Popen]] = {}
    results = {name: {"alone": [], "huge-text": [], "long-admitted": []} for name in trees}
    loads: list[float] = []
    try:
        for name, src in trees.items():
            port = free_port()
            servers[name] = port, start_server(port, src, args.threads,
                                               args.log_dir / f"server-stall-{name}.log",
                                               args.startup_timeout)
            post(port, small)  # warm-up
        for _ in range(args.repeats):
            for name, (port, _) in servers.items():
                loads.append(os.getloadavg()[0])
                latency, status = post(port, small)
                results[name]["alone"].append({"small_s": latency, "small_status": status})
                results[name]["huge-text"].append(during(port, huge, small, args.delay))
                results[name]["long-admitted"].append(during(port, longest, small, args.delay))
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait(30)

    print(f"{os.cpu_count()} CPUs; load average {min(loads):.2f}-{max(loads):.2f} during the "
          f"run; median of {args.repeats}")
    print("| code | scenario | small request (s) | big request (s) | big status |")
    print("|---|---|---|---|---|")
    for name, scenarios in results.items():
        for scenario, runs in scenarios.items():
            small_s = statistics.median(r["small_s"] for r in runs)
            if "big_s" in runs[0]:
                big_s = f"{statistics.median(r['big_s'] for r in runs):.2f}"
                statuses = "/".join(sorted({str(r["big_status"]) for r in runs}))
            else:
                big_s, statuses = "-", "-"
            print(f"| {name} | {scenario} | {small_s:.2f} | {big_s} | {statuses} |")
    if args.out:
        args.out.write_text(json.dumps({"load": loads, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
