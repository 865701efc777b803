"""``desta data ...``: the data-construction stage from the command line.

Subcommands: ``synth`` (local labelled corpus), ``fetch`` (real-audio Debian packages -> a data
root), ``manifest`` (dataset recipe -> ClipRecord JSONL), ``generate`` (backbone responses ->
training rows), ``summarize`` (counts + plots).
Hooked into the main CLI by :func:`register`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from desta.errors import ConfigError

logger = logging.getLogger(__name__)


def _cmd_synth(args: argparse.Namespace) -> int:
    from desta.data.synth import build_synth_corpus

    manifest = build_synth_corpus(args.out, size=args.size, seed=args.seed,
                                  noise_snrs=args.noise_snr, noise_fraction=args.noise_fraction,
                                  workers=args.workers, progress=not args.no_progress)
    print(f"wrote {manifest}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from desta.data.fetch import fetch, status
    from desta.data.sources import get_source

    if args.list:
        for row in status(args.root):
            state = (f"  [{len(row['unpacked'])}/{len(row['packages'])} unpacked"
                     + (f", prepared: {row['prepared']}" if row["prepare"] else "") + "]"
                     if args.root else "")
            print(f"{row['name']:<17} {row['licence']}{state}\n"
                  f"    packages: {' '.join(row['packages'])}\n"
                  f"    recipes:  {' '.join(row['recipes'])}"
                  + (f"; prepare: {row['prepare']}" if row["prepare"] else ""))
        return 0
    if not args.root:
        raise ConfigError("desta data fetch: --root DIR is required (unless --list)")
    sources = [get_source(name) for name in dict.fromkeys(args.source)] if args.source else None
    report = fetch(args.root, sources, prepare=not args.no_prepare,
                   progress=not args.no_progress, apt_sources=args.apt_sources,
                   apt_options=args.apt_option or ())
    print(f"{len(report.packages)} package(s) in {report.root}: {len(report.downloaded)} "
          f"downloaded ({report.bytes_downloaded / 1e6:.1f} MB), {len(report.unpacked)} "
          f"unpacked, {len(report.skipped)} already done"
          + (f"; prepared {', '.join(report.prepared)}" if report.prepared else "")
          + f" ({report.seconds:.0f} s). Record: {report.root}/.desta-fetch/sources.json")
    return 0


def _parse_option(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ConfigError(f"--option {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), value


def _parse_weight(text: str) -> tuple[str, float]:
    key, value = _parse_option(text.replace(":", "=", 1) if "=" not in text else text)
    try:
        return key, float(value)
    except ValueError:
        raise ConfigError(f"--kind-weight {text!r}: the weight must be a number") from None


def _cmd_manifest(args: argparse.Namespace) -> int:
    from desta.data.manifest import build_manifest

    options = dict(_parse_option(o) for o in args.option or [])
    report = build_manifest(args.recipe, args.root, args.out, split=args.split,
                            limit=args.limit, acoustics=not args.no_acoustics,
                            progress=not args.no_progress, **options)
    print(f"wrote {report.written} record(s) to {report.manifest}"
          + (f"; {report.failed} unreadable clip(s) listed in {report.failures}"
             if report.failed else ""))
    print(f"audio paths are relative to {args.root}: pass --data-root {args.root} to "
          "`desta data generate` to check them")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from desta.data.backends import SamplingParams, make_backend
    from desta.data.generate import GenerateConfig, run_generation
    from desta.data.summary import summarize
    from desta.threads import configure_threads

    configure_threads(args.threads)
    config = GenerateConfig(
        manifest=Path(args.manifest), out_dir=Path(args.out), num_shards=args.num_shards,
        shard_index=args.shard_index, seed=args.seed,
        instruction_files=tuple(args.instructions or ()), system_prompt=args.system_prompt,
        data_root=Path(args.data_root) if args.data_root else None, limit=args.limit,
        progress=not args.no_progress,
        kind_weights=dict(_parse_weight(w) for w in args.kind_weight) if args.kind_weight
        else None,
        row_transcript=args.row_transcript, verify_answers=args.verify_answers,
        verify_retries=args.verify_retries,
    )
    params = SamplingParams(max_new_tokens=args.max_new_tokens, do_sample=args.sample,
                            temperature=args.temperature, top_p=args.top_p)
    def backend_with(sampling: SamplingParams):
        return make_backend(args.backend, model=args.model, params=sampling,
                            batch_size=args.batch_size, device=args.device,
                            base_url=args.base_url, api_key=args.api_key,
                            concurrency=args.concurrency, timeout=args.timeout,
                            max_retries=args.max_retries,
                            tensor_parallel_size=args.tensor_parallel_size, seed=args.seed,
                            dtype=args.dtype)

    backend = backend_with(params)
    # Rejected answers are asked again with sampling (a second engine of the same model).
    retry = backend_with(dataclasses.replace(params, do_sample=True,
                                             temperature=args.verify_temperature)) \
        if args.verify_answers and args.verify_retries else None
    pool = None
    if args.only_asking:
        from desta.data.instructions import InstructionPool

        wanted = args.only_asking.strip().lower()
        pool = InstructionPool(i for i in InstructionPool.load(config.instruction_files)
                               if wanted in i.requires)  # an empty pool is a ConfigError
    try:
        report = run_generation(config, backend, pool, retry_backend=retry)
    finally:
        backend.close()
        if retry is not None:
            retry.close()
    summary = summarize(args.out, args.manifest)
    print(f"{report.shard}: {report.written} new row(s), {report.already_done} already done, "
          f"{report.failed} failed (of {report.total}); folder total {summary['rows']} rows, "
          f"{summary['failures']} unresolved failure(s) -> {Path(args.out) / 'summary.json'}")
    return 1 if report.failed else 0


def _cmd_overlap(args: argparse.Namespace) -> int:
    from desta.data.overlap import audio_files, find_overlap, manifest_audio, write_report

    queries: list[Path] = []
    for manifest in args.manifest or []:
        queries += manifest_audio(Path(manifest), Path(args.data_root or Path(manifest).parent))
    queries += audio_files(args.audio) if args.audio else []
    if not queries:
        raise ConfigError("give the clips to check: --manifest (with --data-root) or --audio")
    report = find_overlap(queries, audio_files(args.against), progress=not args.no_progress)
    if args.out:
        write_report(report, Path(args.out))
    print(f"{report['queries']} clip(s) checked against {report['references']}: "
          f"{len(report['matches'])} match(es)")
    for match in report["matches"]:
        print(f"  {match['query']} = {match['reference']} (BER {match['ber']}, "
              f"{match['overlap_s']} s)")
    return 1 if report["matches"] else 0


def _cmd_balance(args: argparse.Namespace) -> int:
    from desta.data.balance import balance_folders

    report = balance_folders(args.rows, args.attribute, args.out, seed=args.seed,
                             instruction_files=tuple(args.instructions or ()),
                             max_words=args.max_words)
    print(f"{report.rows_in} rows in, {report.rows_out} kept -> {report.out} "
          f"(per prompt: {Path(args.out) / 'balance.json'})")
    return 0


def _cmd_real_corpus(args: argparse.Namespace) -> int:
    from desta.data.real_corpus import CorpusPlan, build_real_corpus

    report = build_real_corpus(args.root, args.out, CorpusPlan(seed=args.seed,
                                                               workers=args.workers,
                                                               pitch=args.pitch))
    counts = report.counts
    print(f"train: {counts['train']['clips']} clips ({counts['train']['hours']} h), held-out: "
          f"{counts['heldout']['clips']} clips; manifests in {report.out_dir}")
    return 0


def _cmd_summarize(args: argparse.Namespace) -> int:
    from desta.data.summary import summarize

    print(json.dumps(summarize(args.out, args.manifest), indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``desta data {synth,fetch,manifest,generate,summarize}`` to the main parser."""
    from desta.data.synth import DEFAULT_NOISE_FRACTION, DEFAULT_NOISE_SNRS, DEFAULT_SIZE

    data = subparsers.add_parser("data", help="build training data (synth corpus, manifests, "
                                              "backbone responses)")
    sub = data.add_subparsers(dest="data_command", required=True)

    synth = sub.add_parser("synth", help="build a labelled corpus locally (espeak-ng speech, "
                                         "synthesised sounds and music)")
    synth.add_argument("--out", required=True, help="output folder (audio/ + manifest.jsonl)")
    synth.add_argument("--size", type=int, default=DEFAULT_SIZE, help="number of clips")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--noise-snr", type=float, nargs="*", default=list(DEFAULT_NOISE_SNRS),
                       help="SNRs (dB) for noise mixed into speech; none given = no noise")
    synth.add_argument("--noise-fraction", type=float, default=DEFAULT_NOISE_FRACTION,
                       help="share of speech clips that get noise")
    synth.add_argument("--workers", type=int, default=None, help="processes (default: 2)")
    synth.add_argument("--no-progress", action="store_true")
    synth.set_defaults(func=_cmd_synth)

    from desta.data.fetch import APT_SOURCES_ENV

    fetch = sub.add_parser(
        "fetch", help="download and unpack the real-audio Debian packages into a data root "
                      "(no root, no installation; resumable)")
    fetch.add_argument("--root", default=None, help="data root (the packages unpack to "
                                                    "ROOT/usr/share/...); required unless --list")
    fetch.add_argument("--source", action="extend", nargs="+", metavar="NAME",
                       help="only these sources (repeatable; default: all; see --list)")
    fetch.add_argument("--list", action="store_true",
                       help="list the sources (with --root: what ROOT holds) and exit")
    fetch.add_argument("--no-prepare", action="store_true",
                       help="download and unpack only; skip the sources' prepare steps")
    fetch.add_argument("--apt-sources", default=None, metavar="FILE",
                       help="apt sources list to use instead of the system's, e.g. a mirror "
                            "(one-line .list or deb822 .sources; default: "
                            f"${APT_SOURCES_ENV})")
    fetch.add_argument("--apt-option", action="append", metavar="KEY=VALUE",
                       help="apt configuration item passed as -o (repeatable), e.g. "
                            "Acquire::http::Proxy=http://HOST:PORT")
    fetch.add_argument("--no-progress", action="store_true")
    fetch.set_defaults(func=_cmd_fetch)

    man = sub.add_parser("manifest", help="run a dataset recipe and write a ClipRecord manifest")
    man.add_argument("recipe", help="recipe name, e.g. librispeech, esc50, nsynth")
    man.add_argument("--root", required=True, help="folder the dataset was extracted to")
    man.add_argument("--out", required=True, help="manifest JSONL to write")
    man.add_argument("--split", default=None)
    man.add_argument("--limit", type=int, default=None)
    man.add_argument("--option", action="append", metavar="KEY=VALUE",
                     help="recipe-specific option (repeatable)")
    man.add_argument("--no-acoustics", action="store_true",
                     help="do not measure Pitch/Volume/Speaking speed for speech clips")
    man.add_argument("--no-progress", action="store_true")
    man.set_defaults(func=_cmd_manifest)

    gen = sub.add_parser("generate", help="backbone responses for a manifest -> training rows")
    gen.add_argument("--manifest", required=True)
    gen.add_argument("--out", required=True, help="output folder (shard-I-of-K.jsonl, ...)")
    gen.add_argument("--backend", choices=("transformers", "vllm", "openai"),
                     default="transformers")
    gen.add_argument("--model", default="embedded",
                     help="LLM: 'embedded' (SmolLM2-135M-Instruct), hub id or local dir; for "
                          "openai the served model name (default: the endpoint's first)")
    gen.add_argument("--base-url", default=None, help="openai: e.g. http://host:8000/v1")
    gen.add_argument("--api-key", default=None, help="openai: key (default 'EMPTY')")
    gen.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight")
    gen.add_argument("--timeout", type=float, default=120.0, help="openai: seconds per request")
    gen.add_argument("--max-retries", type=int, default=4, help="openai: retries per request")
    gen.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs")
    gen.add_argument("--device", default=None, help="transformers: cpu, cuda, ...")
    gen.add_argument("--threads", type=int, default=None,
                     help="torch CPU threads (default: $OMP_NUM_THREADS if set, else 1: see "
                          "docs/data/generation.md)")
    gen.add_argument("--num-shards", type=int, default=1)
    gen.add_argument("--shard-index", type=int, default=0)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--batch-size", type=int, default=None,
                     help="items per generate call / write (default: transformers 8, vllm "
                          "256, openai 4 x concurrency)")
    gen.add_argument("--max-new-tokens", type=int, default=512)
    gen.add_argument("--sample", action="store_true", help="sample instead of greedy")
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--instructions", action="append",
                     help="extra instruction pool JSONL (repeatable)")
    gen.add_argument("--kind-weight", action="append", metavar="KIND=WEIGHT",
                     help="draw prompt kinds with these weights (repeatable), e.g. "
                          "--kind-weight attribute=1 for open questions about labelled "
                          "attributes; default: every applicable prompt equally likely")
    gen.add_argument("--row-transcript", choices=("given", "model"), default="given",
                     help="transcript the rows give the model: the record's ('given') or "
                          "none, so the model transcribes the clip as at inference ('model')")
    gen.add_argument("--only-asking", metavar="ATTRIBUTE", default=None,
                     help="draw only prompts that ask about this attribute (e.g. Gender)")
    gen.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                     help="transformers: weight dtype (bfloat16 ~3x faster on AVX-512 BF16 "
                          "CPUs; answers differ from float32)")
    gen.add_argument("--verify-answers", action="store_true",
                     help="drop answers that contradict the clip's labels (gender, language, "
                          "sound, instrument), after --verify-retries sampled retries")
    gen.add_argument("--verify-retries", type=int, default=3)
    gen.add_argument("--verify-temperature", type=float, default=0.8,
                     help="sampling temperature of the retries")
    gen.add_argument("--system-prompt", default=None,
                     help="system message for the backbone (default: none)")
    gen.add_argument("--data-root", default=None,
                     help="folder the manifest's audio paths are relative to; given, every "
                          "clip is checked to exist")
    gen.add_argument("--limit", type=int, default=None, help="first N records of the shard")
    gen.add_argument("--no-progress", action="store_true")
    gen.set_defaults(func=_cmd_generate)

    over = sub.add_parser("overlap", help="find clips of a manifest (or audio files) that are "
                                          "recordings of an evaluation set (fingerprints)")
    over.add_argument("--manifest", action="append", help="ClipRecord manifest (repeatable)")
    over.add_argument("--data-root", default=None, help="root of the manifests' audio paths")
    over.add_argument("--audio", action="append", help="audio files or folders (repeatable)")
    over.add_argument("--against", action="append", required=True,
                      help="evaluation audio: files or folders (repeatable)")
    over.add_argument("--out", default=None, help="write the JSON report here")
    over.add_argument("--no-progress", action="store_true")
    over.set_defaults(func=_cmd_overlap)

    bal = sub.add_parser("balance", help="per prompt asking about an attribute, keep as many "
                                         "rows of each label (no prompt predicts its answer)")
    bal.add_argument("--rows", nargs="+", required=True, help="rows: JSONL files or folders")
    bal.add_argument("--attribute", required=True, help="e.g. Gender")
    bal.add_argument("--out", required=True, help="folder for balanced.jsonl + balance.json")
    bal.add_argument("--seed", type=int, default=0)
    bal.add_argument("--max-words", type=int, default=None,
                     help="first drop rows asking about the attribute whose answer is longer "
                          "than this many words (a cut after balancing unbalances again)")
    bal.add_argument("--instructions", action="append",
                     help="extra instruction pool JSONL the rows' prompts came from")
    bal.set_defaults(func=_cmd_balance)

    real = sub.add_parser("real-corpus", help="select, split by speaker and augment the "
                                              "real-audio corpus of a fetch root")
    real.add_argument("--root", required=True, help="the data root `desta data fetch` filled")
    real.add_argument("--out", default=None,
                      help="output folder inside the root (default ROOT/desta-corpus)")
    real.add_argument("--seed", type=int, default=0)
    real.add_argument("--workers", type=int, default=2)
    real.add_argument("--pitch", action="store_true",
                      help="also measure Pitch (pYIN, ~1 s per speech clip)")
    real.set_defaults(func=_cmd_real_corpus)

    summ = sub.add_parser("summarize", help="(re)write summary.json, failures.jsonl and "
                                            "response_lengths.png of an output folder")
    summ.add_argument("--out", required=True)
    summ.add_argument("--manifest", default=None, help="for per-domain counts (default: the "
                                                       "one in generation.json)")
    summ.set_defaults(func=_cmd_summarize)
