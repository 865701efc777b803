"""`desta serve`: the OpenAI-compatible server and web demo from the command line.

Hooked into `desta.cli` with `register(subparsers)`.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from desta.errors import ConfigError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `serve` subcommand to a `desta` argparse subparsers object."""
    from desta.inference.openai_format import ServerConfig, ServingLimits
    from desta.model.embedded import MODEL_HELP

    server_defaults, limits = ServerConfig(), ServingLimits()
    p = subparsers.add_parser(
        "serve", help="OpenAI-compatible chat server with audio input, plus a web demo at /",
        description="Serve a model at /v1/chat/completions (OpenAI format, audio as "
                    "input_audio parts) with dynamic batching; the web demo is at /.")
    p.add_argument("--model", default="embedded", help=MODEL_HELP)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", default=None,
                   help="the model id clients send (default: 'desta-embedded' or the "
                        "checkpoint directory's name)")
    p.add_argument("--api-key", default=os.environ.get("DESTA_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on /v1/* (default: "
                        "$DESTA_API_KEY; none = open)")
    p.add_argument("--max-batch-size", type=int, default=server_defaults.max_batch_size,
                   help="most requests per generate call (1 = no batching)")
    p.add_argument("--batch-wait-ms", type=float, default=server_defaults.batch_wait_ms,
                   help="how long to wait for more requests to batch")
    p.add_argument("--max-queue", type=int, default=server_defaults.max_queue,
                   help="waiting requests beyond this get HTTP 429")
    p.add_argument("--max-body-mb", type=float, default=limits.max_body_bytes / 2**20,
                   help="largest request body (base64 audio included)")
    p.add_argument("--max-audio-seconds", type=float, default=limits.max_audio_seconds,
                   help="longest clip accepted (the encoder hears the first 30 s)")
    p.add_argument("--max-audio-clips", type=int, default=limits.max_audio_clips)
    p.add_argument("--max-tokens", type=int, default=limits.max_tokens,
                   help="largest max_tokens a request may ask for")
    p.add_argument("--default-max-tokens", type=int, default=limits.default_max_tokens)
    p.add_argument("--max-text-chars", type=int, default=limits.max_text_chars,
                   help="text characters per request, counted before tokenising")
    p.add_argument("--max-messages", type=int, default=limits.max_messages)
    p.add_argument("--max-prompt-tokens", type=int, default=None,
                   help="prompt tokens per request (default: the LLM's context); bounds how "
                        "long one prompt's prefill holds the worker")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: $OMP_NUM_THREADS if set, else 1: see "
                        "docs/serving.md)")
    p.add_argument("--allow-local-audio", type=Path, default=None, metavar="DIR",
                   help="let requests name audio files under DIR (audio_url with a path or "
                        "file:// URL); off by default")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)
    return p


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the model and serve it until interrupted."""
    from desta.inference.openai_format import ServerConfig, ServingLimits
    from desta.inference.server import serve
    from desta.model.embedded import EMBEDDED, EMBEDDED_UNTRAINED, load_model
    from desta.threads import configure_threads

    configure_threads(args.threads)
    if args.allow_local_audio is not None and not args.allow_local_audio.is_dir():
        raise ConfigError(f"--allow-local-audio {args.allow_local_audio} is not a directory")
    if args.default_max_tokens > args.max_tokens:
        raise ConfigError(f"--default-max-tokens {args.default_max_tokens} is over "
                          f"--max-tokens {args.max_tokens}")
    limits = ServingLimits(max_body_bytes=int(args.max_body_mb * 2**20),
                           max_audio_seconds=args.max_audio_seconds,
                           max_audio_clips=args.max_audio_clips, max_tokens=args.max_tokens,
                           default_max_tokens=args.default_max_tokens,
                           max_text_chars=args.max_text_chars, max_messages=args.max_messages,
                           max_prompt_tokens=args.max_prompt_tokens,
                           allowed_audio_dir=args.allow_local_audio)
    model = load_model(args.model, device=args.device)
    name = f"desta-{args.model}" if args.model in (EMBEDDED, EMBEDDED_UNTRAINED) \
        else Path(args.model.rstrip("/")).name
    config = ServerConfig(model_name=args.served_model_name or name, api_key=args.api_key,
                          max_batch_size=args.max_batch_size, batch_wait_ms=args.batch_wait_ms,
                          max_queue=args.max_queue, limits=limits)
    logger.info("web demo: http://%s:%d/", args.host, args.port)
    serve(model.eval(), config, host=args.host, port=args.port, log_level=args.log_level)
    return 0
