"""The instruction pool: prompts the backbone answers about a clip's seed description.

DeSTA2 asked every clip the same question ("What can you hear from the audio?"); DeSTA2.5
samples a prompt per clip from a diverse pool. The pool is data: JSONL files with one
``{"id", "text", "domain", "kind"}`` object per line, plus an optional ``"requires"`` list of
attribute names (``["Gender"]``; ``"transcript"`` for the spoken words): such a prompt asks
about something specific and is drawn only for clips whose metadata has it, so the backbone is
never asked about a voice's gender (and the model never taught to refuse it) when the seed
description does not say. The packaged pool lives in
``desta/data/instruction_pool/*.jsonl``; users add their own files with the same fields.

Sampling is matched to the clip's domain (prompts for that domain plus domain-agnostic
``any`` prompts) and reproducible: with an integer seed and a key (the clip id) the choice
depends only on ``(seed, key)``, never on how many clips were sampled before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from desta.errors import ConfigError

logger = logging.getLogger(__name__)

INSTRUCTION_DOMAINS: tuple[str, ...] = ("speech", "sound", "music", "any")
INSTRUCTION_KINDS: tuple[str, ...] = (
    "describe",  # open description of the clip
    "question",  # a specific question about content, speaker, source, ...
    "classification",  # pick a label, often from given options
    "reasoning",  # infer something not stated, explain why
    "creative",  # write a poem/story/ad... from the clip
    "format",  # answer under an explicit output-format constraint
    "transcription",  # write down the spoken words
    "attribute",  # one labelled attribute, open-ended (gender, language, sound, instrument)
)
_FIELDS = ("id", "text", "domain", "kind")
_OPTIONAL = ("requires",)
TRANSCRIPT = "transcript"  # the name `requires` uses for the clip's spoken words
_PACKAGED_DIR = "instruction_pool"


@dataclass(frozen=True)
class Instruction:
    """One prompt of the pool."""

    id: str
    text: str
    domain: str
    kind: str
    requires: tuple[str, ...] = ()  # attribute names the clip must have (lower case)

    def applies_to(self, available: frozenset[str] | None) -> bool:
        """Whether a clip with these (lower-case) attribute names can be asked this prompt;
        None means unknown metadata: every prompt applies."""
        return available is None or all(name in available for name in self.requires)


def _parse_line(line: str, where: str) -> Instruction:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc.msg}); each line must be one object "
                          f"with fields {list(_FIELDS)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_FIELDS) - set(_OPTIONAL))
    missing = [k for k in _FIELDS if k not in data]
    if unknown or missing:
        raise ConfigError(f"{where}: fields must be {list(_FIELDS)} (optionally "
                          f"{list(_OPTIONAL)}); missing {missing}, unknown {unknown}")
    for key in _FIELDS:
        if not isinstance(data[key], str) or not data[key].strip():
            raise ConfigError(f"{where}: field {key!r} must be a non-empty string")
    if data["domain"] not in INSTRUCTION_DOMAINS:
        raise ConfigError(f"{where}: field 'domain' must be one of {list(INSTRUCTION_DOMAINS)}, "
                          f"got {data['domain']!r}")
    if data["kind"] not in INSTRUCTION_KINDS:
        raise ConfigError(f"{where}: field 'kind' must be one of {list(INSTRUCTION_KINDS)}, "
                          f"got {data['kind']!r}")
    requires = data.get("requires", [])
    if (not isinstance(requires, list)
            or not all(isinstance(r, str) and r.strip() for r in requires)):
        raise ConfigError(f"{where}: field 'requires' must be a list of attribute names, "
                          f"got {requires!r}")
    return Instruction(id=data["id"].strip(), text=data["text"].strip(),
                       domain=data["domain"], kind=data["kind"],
                       requires=tuple(r.strip().lower() for r in requires))


def _read_jsonl(text: str, source: str) -> list[tuple[Instruction, str]]:
    """(instruction, "file:line") pairs; blank lines are skipped."""
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            where = f"{source}:{lineno}"
            out.append((_parse_line(line, where), where))
    return out


def _derive_rng(seed: int, key: str | None) -> np.random.Generator:
    """A generator that depends only on (seed, key): stable across runs and call orders."""
    if key is None:
        return np.random.default_rng(seed)
    # Python's hash() is salted per process; sha256 is stable.
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    words = np.frombuffer(digest, dtype=np.uint32).tolist()
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *words]))


class InstructionPool:
    """A validated set of prompts, sampled per clip by domain (and optionally by kind)."""

    def __init__(self, instructions: Iterable[Instruction]) -> None:
        self._items: list[Instruction] = list(instructions)
        if not self._items:
            raise ConfigError("the instruction pool is empty: add at least one prompt")
        ids: set[str] = set()
        for item in self._items:
            if item.id in ids:
                raise ConfigError(f"duplicate instruction id {item.id!r}")
            ids.add(item.id)
        self._by_domain: dict[str, list[Instruction]] = {
            d: [i for i in self._items if i.domain in (d, "any")] for d in INSTRUCTION_DOMAINS
        }
        self._by_domain["any"] = [i for i in self._items if i.domain == "any"]

    # ---- loading ------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        paths: Sequence[str | os.PathLike[str]] = (),
        *,
        include_packaged: bool = True,
    ) -> InstructionPool:
        """The packaged pool (unless ``include_packaged=False``) plus user JSONL files.

        Every line is validated; errors name the file and line. Ids must be unique across
        all files (a user prompt cannot silently replace a packaged one).
        """
        entries: list[tuple[Instruction, str]] = []
        if include_packaged:
            root = resources.files("desta.data").joinpath(_PACKAGED_DIR)
            files = sorted((p for p in root.iterdir() if p.name.endswith(".jsonl")),
                           key=lambda p: p.name)
            if not files:
                raise ConfigError(f"no packaged instruction pool found in {root}; "
                                  "reinstall desta")
            for f in files:
                entries.extend(_read_jsonl(f.read_text(encoding="utf-8"),
                                           f"{_PACKAGED_DIR}/{f.name}"))
        for path in paths:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"instruction pool file {path} does not exist")
            entries.extend(_read_jsonl(path.read_text(encoding="utf-8"), str(path)))
        first_seen: dict[str, str] = {}
        for item, where in entries:
            if item.id in first_seen:
                raise ConfigError(f"{where}: duplicate instruction id {item.id!r} "
                                  f"(already defined at {first_seen[item.id]}); ids must be unique")
            first_seen[item.id] = where
        pool = cls(item for item, _ in entries)
        logger.debug("instruction pool: %d prompts from %d file(s)",
                     len(pool), len(paths) + int(include_packaged))
        return pool

    # ---- access -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self._items)

    def candidates(self, domain: str) -> list[Instruction]:
        """Prompts usable for a clip of ``domain``: that domain's plus the ``any`` ones."""
        if domain not in INSTRUCTION_DOMAINS:
            raise ConfigError(f"unknown domain {domain!r}; use one of {list(INSTRUCTION_DOMAINS)}")
        return list(self._by_domain[domain])

    def sample(
        self,
        domain: str,
        rng_or_seed: np.random.Generator | int,
        key: str | None = None,
        *,
        kind_weights: Mapping[str, float] | None = None,
        available: Iterable[str] | None = None,
    ) -> Instruction:
        """Draw one prompt for a clip of ``domain``.

        ``available``: the clip's attribute names (any case; ``"transcript"`` when it has
        spoken words); prompts whose ``requires`` are not all there are left out. None keeps
        every prompt.

        With an int seed and a ``key`` (the clip id) the result depends only on
        ``(seed, key)``. With a ``numpy.random.Generator`` it is drawn from that generator
        (reproducible for a fixed order of calls); ``key`` is then ignored.

        Without ``kind_weights`` every candidate is equally likely. With them a kind is
        drawn first (probability proportional to its weight, among kinds that have
        candidates; kinds not named get weight 0), then a prompt uniformly within it.
        """
        names = None if available is None else frozenset(a.lower() for a in available)
        items = [i for i in self.candidates(domain) if i.applies_to(names)]
        if not items:
            raise ConfigError(f"no prompt of the pool applies to a {domain} clip with "
                              f"attributes {sorted(names or ())}")
        if isinstance(rng_or_seed, np.random.Generator):
            rng = rng_or_seed
        elif isinstance(rng_or_seed, int | np.integer) and not isinstance(rng_or_seed, bool):
            rng = _derive_rng(int(rng_or_seed), key)
        else:
            raise ConfigError(f"rng_or_seed must be an int seed or a numpy Generator, "
                              f"got {type(rng_or_seed).__name__}")
        if kind_weights is None:
            return items[int(rng.integers(len(items)))]
        by_kind: dict[str, list[Instruction]] = {}
        for item in items:
            by_kind.setdefault(item.kind, []).append(item)
        kinds, weights = [], []
        for kind, weight in kind_weights.items():
            if kind not in INSTRUCTION_KINDS:
                raise ConfigError(f"kind_weights: unknown kind {kind!r}; "
                                  f"use any of {list(INSTRUCTION_KINDS)}")
            if not isinstance(weight, int | float) or weight < 0 or weight != weight:
                raise ConfigError(f"kind_weights[{kind!r}] must be a number >= 0, got {weight!r}")
            if weight > 0 and kind in by_kind:
                kinds.append(kind)
                weights.append(float(weight))
        if not kinds:
            raise ConfigError(f"kind_weights {dict(kind_weights)} leave no prompt for domain "
                              f"{domain!r}; its kinds are {sorted(by_kind)}")
        p = np.asarray(weights) / sum(weights)
        chosen = by_kind[kinds[int(rng.choice(len(kinds), p=p))]]
        return chosen[int(rng.integers(len(chosen)))]

    def stats(self) -> dict[str, dict[str, int]]:
        """Counts per domain and kind, e.g. for a report: ``{"speech": {"question": 60}}``."""
        out: dict[str, dict[str, int]] = {}
        for item in self._items:
            out.setdefault(item.domain, {}).setdefault(item.kind, 0)
            out[item.domain][item.kind] += 1
        return out


def pool_to_jsonl(instructions: Iterable[Instruction]) -> str:
    """Serialise prompts in the pool file format (one JSON object per line)."""
    def line(i: Instruction) -> dict[str, object]:
        out: dict[str, object] = {"id": i.id, "text": i.text, "domain": i.domain,
                                  "kind": i.kind}
        if i.requires:
            out["requires"] = list(i.requires)
        return out

    return "".join(json.dumps(line(i), ensure_ascii=False) + "\n" for i in instructions)
