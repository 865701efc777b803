"""The benchmark registry: every benchmark `desta eval` knows, by name.

A benchmark is one module of `desta.evaluation` that builds a `BenchmarkSpec` and calls
`register(spec)` when it is imported. Nothing else names it: `get_spec`, `benchmark_names` and
`all_specs` import every module of the package once (`pkgutil`), so the runner, the command
line and the report find a new benchmark by looking it up here. The dependencies run one way:
benchmark modules import `registry` and `records`; the runner, the CLI and the report import
`registry`; no benchmark module imports the runner, and nothing here imports a benchmark.

Adding a benchmark touches one file, its own module. For example
`src/desta/evaluation/hearing.py`:

    from desta.evaluation.records import BenchmarkItem, read_jsonl, require_fields
    from desta.evaluation.registry import (BenchmarkSpec, CliOption, ScoreContext,
                                           audio_question_messages, register)

    def load(data: Path, subset: str | None) -> list[BenchmarkItem]: ...
        # the benchmark's files -> items with unique ids (a resumed run skips ids it has)
    def result_row(item: BenchmarkItem, text: str) -> dict[str, Any]: ...
        # one prediction row; it must carry `id` = item.id and the answer under
        # `response_key` ("response" by default)
    def score(rows: list[dict[str, Any]], ctx: ScoreContext) -> dict[str, Any]: ...
        # a JSON-able dict; `summary` ({row label: number or None}) is what the report
        # tabulates and charts, `chance` ({row label: number}) is drawn beside it, `note`
        # (a sentence) is printed; ctx has the judge, the backbone rows and the options

    register(BenchmarkSpec(
        name="hearing", description="held-out hearing probe",
        load=load, messages=audio_question_messages, result_row=result_row, score=score,
        backbone_messages=text_ceiling_messages,   # optional: `--backbone-run` answers the
                                                   # items text-only (e.g. a text ceiling);
                                                   # the scorer gets those rows in
                                                   # ctx.backbone_rows
        cli_options=(CliOption("--hearing-threshold", type=float, default=0.5,
                               help="..."),),      # optional: reaches ctx.options
    ))

Keep module-level code light: discovery imports every module of the package, so import heavy
libraries (torch, transformers, the judge client) inside the functions that use them. A
name registered twice, by two modules, is an error.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desta.errors import DestaError
from desta.evaluation.records import BenchmarkItem

if TYPE_CHECKING:
    from desta.evaluation.judges import OpenAIJudge

logger = logging.getLogger(__name__)

Messages = list[dict[str, Any]]
Row = dict[str, Any]
# (what a predictions file holds: a list of rows or one JSON object, the file's path) -> rows
OfficialReader = Callable[[Any, Path], list[Row]]


@dataclass
class ScoreContext:
    """What a scorer may use besides the rows: the judge, the backbone's rows (a
    `--backbone-run` or `--backbone-predictions`) and the options (`--subset` as `subset`, each
    spec's `cli_options` by their `dest`)."""

    judge: OpenAIJudge | None = None
    backbone_rows: list[Row] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Published:
    """A published number the report puts beside ours: which system, its value, the source."""

    system: str
    value: float
    source: str
    note: str | None = None


@dataclass(frozen=True)
class CliOption:
    """A command-line option of one benchmark (`argparse.add_argument` arguments); its value
    reaches the scorer as `ctx.options[dest]`."""

    flag: str
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    choices: Sequence[Any] | None = None

    @property
    def dest(self) -> str:
        """The option's name in `ScoreContext.options` (`--prediction-key` -> `prediction_key`)."""
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class BenchmarkSpec:
    """How the runner handles one benchmark.

    `load(data, subset)` reads the benchmark's files into items (ids unique); `messages(item)`
    is the conversation the model answers; `result_row(item, text)` the prediction row (it
    carries the item's `id`); `score(rows, ctx)` the scores (a JSON-able dict, see the module
    docstring); `response_key` the row field holding the model's raw answer;
    `system_prompt` the system turn every conversation gets unless `--system-prompt` says
    otherwise (None: the conversation as `messages` builds it).

    Another system's files: `official_rows(content, path)` turns what one of the benchmark's
    own files holds into rows (the subset from the file name, the official field names); with
    `--data`, a row whose `id` is not an item id is joined by `row_key(row)`, looked up among
    the keys `join_keys(item)` gives each item (e.g. AIR-Bench's `uniq_id`).
    `backbone_messages(item)` is the text-only conversation of `--backbone-run`;
    `published` / `published_notes` what the report prints beside our numbers.
    """

    name: str
    description: str
    load: Callable[[Path, str | None], list[BenchmarkItem]]
    messages: Callable[[BenchmarkItem], Messages]
    result_row: Callable[[BenchmarkItem, str], Row]
    score: Callable[[list[Row], ScoreContext], dict[str, Any]]
    response_key: str = "response"
    max_new_tokens: int = 512
    system_prompt: str | None = None
    official_rows: OfficialReader | None = None
    row_key: Callable[[Row], str | None] | None = None
    join_keys: Callable[[BenchmarkItem], Iterable[str]] | None = None
    backbone_messages: Callable[[BenchmarkItem], Messages] | None = None
    cli_options: tuple[CliOption, ...] = ()
    published: Mapping[str, Sequence[Published]] = field(default_factory=dict)
    published_notes: tuple[str, ...] = ()


_SPECS: dict[str, BenchmarkSpec] = {}
_discovered = False


def register(spec: BenchmarkSpec) -> BenchmarkSpec:
    """Add `spec` to the registry (called by the benchmark's own module when imported)."""
    if spec.name in _SPECS and _SPECS[spec.name] is not spec:
        raise DestaError(f"benchmark {spec.name!r} is registered twice; names must be unique")
    _SPECS[spec.name] = spec
    return spec


def _discover() -> None:
    """Import every module of `desta.evaluation` once, so each benchmark registers itself."""
    global _discovered
    if _discovered:
        return
    package = __name__.rpartition(".")[0]  # desta.evaluation, found without importing it
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{package}.{module.name}")
    _discovered = True


def all_specs() -> dict[str, BenchmarkSpec]:
    """Every registered benchmark, by name, in name order."""
    _discover()
    return dict(sorted(_SPECS.items()))


def benchmark_names() -> tuple[str, ...]:
    """The names `desta eval` accepts."""
    return tuple(all_specs())


def get_spec(name: str) -> BenchmarkSpec:
    """The spec of benchmark `name`, or a `DestaError` listing the known ones."""
    specs = all_specs()
    if name not in specs:
        raise DestaError(f"unknown benchmark {name!r}; choose one of {', '.join(specs)}")
    return specs[name]


# ---------------------------------------------------------------------------------------------
# conversations shared by several benchmarks
# ---------------------------------------------------------------------------------------------


def audio_question_messages(item: BenchmarkItem, system: str | None = None) -> Messages:
    """The plain audio-question conversation: the clip(s) first, then the question, in one
    user turn (`<|AUDIO|>` once per clip, no transcript given: the model runs its own ASR)."""
    locators = "".join("<|AUDIO|>" for _ in item.audio_paths)
    messages: Messages = [{"role": "system", "content": system}] if system else []
    messages.append({
        "role": "user",
        "content": f"{locators}\n{item.prompt}" if locators else item.prompt,
        "audios": [{"audio": str(p), "text": None} for p in item.audio_paths],
    })
    return messages


def with_system_prompt(messages: Messages, system: str | None) -> Messages:
    """`messages` with its system turn set to `system` (added, or replacing the one there);
    `None` keeps `messages` as they are, `""` removes the system turn."""
    if system is None:
        return messages
    rest = [m for m in messages if m.get("role") != "system"]
    return [{"role": "system", "content": system}, *rest] if system else rest


# DeSTA2.5-Audio's evaluation prompts (its repository's docs/evaluation_tips.md): "Default" for
# audio questions, "Dialogue-based" for spoken instructions (the audio alone is the user turn)
DEFAULT_SYSTEM = "Focus on the audio clips and instruction."
DIALOGUE_SYSTEM = "You are a voice assistant. Act as if you are a natural language partner"
