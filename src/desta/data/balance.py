"""Balance self-generated rows so that a prompt never predicts its answer.

A small backbone answers some phrasings one way whatever the seed description says
(SmolLM2-135M says "male" to "Is the speaker male or female?"), so after `--verify-answers`
drops the contradicting answers, the rows left for that prompt are mostly male clips. Trained
on them, the connector learns "this prompt -> male" instead of listening. `balance_rows`
keeps, for every prompt that asks about an attribute, the same number of rows of each label
(a seeded draw from the larger groups); rows whose prompt does not ask about it pass through.

Any filter applied *after* balancing can undo it: the shipped rows were once cut to answers of
at most 10 words after balancing, which left "Is the speaker male or female?" (the hearing
probe's question) with 32 female and 90 male rows; the connector trained on them answered
"male" for half the held-out female clips. So the cut is part of
balancing (`max_words`: applied first), and :func:`prompt_skew` finds prompts that predict their
answer in rows about to be trained on.

    desta data balance --rows rows/ rows-gender/ --attribute Gender --out rows-balanced/
    desta data balance --rows rows.jsonl --attribute Gender --max-words 10 --out short/
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.errors import ConfigError


@dataclass(frozen=True)
class BalanceReport:
    out: Path
    rows_in: int
    rows_out: int
    per_prompt: dict[str, dict[str, dict[str, int]]]  # prompt -> {"before": {...}, "after": ...}


def label_of(seed_description: str, attribute: str) -> str | None:
    """The value of `attribute` in a seed description (``Gender: Female`` -> ``Female``)."""
    match = re.search(rf"(?:\(|, ){re.escape(attribute)}: ([^,()]+)", seed_description)
    return match.group(1).strip() if match else None


def seed_values(seed_description: str | None) -> list[str]:
    """Every attribute value of a seed description (``(Gender: Female, Language: Czech)``)."""
    return [v.strip() for v in re.findall(r"(?:\(|, )[A-Z][\w ]*?: ([^,()]+)",
                                          seed_description or "")]


def response_words(row: dict[str, Any]) -> int:
    return len(str(row.get("response", "")).split())


def _by_prompt_and_label(rows: Sequence[dict[str, Any]], attribute: str, asking: set[str],
                         max_words: int | None = None
                         ) -> tuple[dict[str, dict[str, list[int]]], set[int]]:
    """Indices of the rows asking about `attribute`, per prompt and label, and of those cut
    for a response longer than `max_words`."""
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    too_long: set[int] = set()
    for i, row in enumerate(rows):
        if row.get("prompt") in asking:
            if max_words is not None and response_words(row) > max_words:
                too_long.add(i)
                continue
            label = label_of(str(row.get("seed_description", "")), attribute)
            if label is not None:
                groups[row["prompt"]][label].append(i)
    return groups, too_long


def balance_rows(rows: Sequence[dict[str, Any]], attribute: str, asking: set[str],
                 seed: int = 0, max_words: int | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`rows` with every prompt in `asking` balanced over the labels of `attribute`; returns
    the kept rows (input order) and per-prompt counts before and after. `max_words`: rows
    asking about `attribute` with a longer response are dropped first, then the rest are
    balanced (cutting after balancing would unbalance them again)."""
    if max_words is not None and max_words < 1:
        raise ConfigError(f"max_words must be >= 1, got {max_words}")
    groups, drop = _by_prompt_and_label(rows, attribute, asking, max_words)
    report: dict[str, Any] = {}
    rng = random.Random(seed)
    for prompt in sorted(groups):
        by_label = groups[prompt]
        keep = min(len(v) for v in by_label.values()) if len(by_label) > 1 else 0
        after = {}
        for label in sorted(by_label):
            chosen = set(rng.sample(by_label[label], keep))
            drop |= set(by_label[label]) - chosen
            after[label] = keep
        report[prompt] = {"before": {k: len(v) for k, v in sorted(by_label.items())},
                          "after": after}
    return [r for i, r in enumerate(rows) if i not in drop], report


def prompt_skew(rows: Sequence[dict[str, Any]], attribute: str, asking: set[str], *,
                max_share: float = 0.6, min_rows: int = 20) -> dict[str, dict[str, int]]:
    """Prompts in `asking` whose most common `attribute` label holds more than `max_share` of
    their rows (prompts with at least `min_rows` labelled rows; two or more labels seen in
    all of `rows`): {prompt: label counts}. Trained on, such a prompt teaches its label."""
    groups, _ = _by_prompt_and_label(rows, attribute, asking)
    counts = {p: {label: len(ix) for label, ix in sorted(by_label.items())}
              for p, by_label in sorted(groups.items())}
    if len({label for c in counts.values() for label in c}) < 2:
        return {}
    return {p: c for p, c in counts.items()
            if sum(c.values()) >= min_rows and max(c.values()) / sum(c.values()) > max_share}


def balance_folders(paths: Sequence[str | Path], attribute: str, out: str | Path, *,
                    seed: int = 0, instruction_files: Sequence[str] = (),
                    max_words: int | None = None) -> BalanceReport:
    """Read rows, balance them over `attribute` (the prompts of the pool whose `requires`
    name it) and write ``out/balanced.jsonl`` plus ``out/balance.json``."""
    from desta.data.instructions import InstructionPool

    wanted = attribute.strip().lower()
    asking = {i.text for i in InstructionPool.load(instruction_files) if wanted in i.requires}
    if not asking:
        raise ConfigError(f"no prompt of the pool asks about {attribute!r}")
    rows = _read_plain(paths)
    kept, per_prompt = balance_rows(rows, attribute, asking, seed, max_words=max_words)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "balanced.jsonl"
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept),
                   encoding="utf-8")
    os.replace(tmp, target)
    summary = {"attribute": attribute, "rows_in": len(rows), "rows_out": len(kept),
               "max_words": max_words,
               "labels_asked_after": dict(sum((Counter(v["after"]) for v in per_prompt.values()),
                                              Counter())),
               "per_prompt": per_prompt}
    (out / "balance.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return BalanceReport(target, len(rows), len(kept), per_prompt)


def _read_plain(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every row as written (all fields kept), from files or folders of them."""
    from desta.training.data import manifest_files

    rows = []
    for path in manifest_files(list(paths)):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ConfigError(f"{path}:{number}: not valid JSON ({err.msg})") from None
    return rows
