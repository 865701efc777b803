"""The hearing probe: open questions about held-out real clips, scored by keyword, beside chance
and beside the backbone's own text ceiling.

`--data` is a ClipRecord manifest (``desta data real-corpus`` writes ``heldout.jsonl``: clips of
speakers and recordings that never appear in training). Each clip gets the questions its labels
can check:

- **gender** (clips with a stated Gender): the first gender word of the answer
  (woman/female/girl... vs man/male/boy...) must be the label; chance 50 %;

(accuracies are balanced: the mean over labels of each label's accuracy, so chance is 1/k
whatever the mix of labels; the per-label and plain accuracies are in the scores file)
- **language** (speech with a Language, at least 1 s long): the first language name the answer
  mentions must be the label; chance 1/k over the k languages of the held-out clips;
- **sound** (sound clips): a name of the labelled sound (synonyms allowed: "bark" for dog) must
  appear; chance 1/k over the held-out sound labels;
- **instrument family** (instrument clips): the first instrument named must belong to the
  labelled family (violin -> string); chance 1/k over the families;
- **English WER** (English speech with a transcript): "Transcribe the speech exactly.", WER
  after Whisper's basic normaliser, beside the WER of the ASR transcript the model was given.

`--backbone-run` answers the same questions from the clip's seed description as text (the
conversation the backbone wrote the training targets from): the **text ceiling**. The score
reports audio / ceiling per task. A second benchmark, `sakura-text`, is the same ceiling for
SAKURA: the backbone answers SAKURA's questions from a seed description of the clip's label.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from desta.data.answer_check import (
    first_family,
    first_gender,
    first_language,
    language_names,
    names_sound,
)
from desta.evaluation.records import BenchmarkDataError, BenchmarkItem, read_jsonl
from desta.evaluation.registry import (
    DEFAULT_SYSTEM,
    BenchmarkSpec,
    Messages,
    ScoreContext,
    audio_question_messages,
    register,
)

# The plain form of each question (the same wording the instruction pool uses): SmolLM2-135M
# reads its seed description far worse for some phrasings ("Tell me the gender of the person
# speaking." 8 % vs "Is the speaker male or female?" 62 % on 24 clips), and the text ceiling
# should measure the backbone, not a wording it stumbles on.
QUESTIONS = {
    "gender": "Is the speaker male or female?",
    "language": "What language is spoken in this recording?",
    "sound": "What sound is this?",
    "instrument": "Which instrument is playing?",
    "transcript": "Transcribe the speech exactly.",
}
TASK_LABELS = {"gender": "gender", "language": "language", "sound": "sound",
               "instrument": "instrument family", "transcript": "English WER"}
MIN_LANGUAGE_SECONDS = 1.0

# ---- items ------------------------------------------------------------------------------------
def load(data: Path, subset: str | None) -> list[BenchmarkItem]:
    """Questions for every clip of a ClipRecord manifest (`subset`: one task)."""
    from desta.data.manifest import manifest_audio_root
    from desta.data.seed import ClipRecord, seed_description

    data = Path(data)
    manifest = data / "heldout.jsonl" if data.is_dir() else data
    root = manifest_audio_root(manifest)
    items: list[BenchmarkItem] = []
    for line, raw in read_jsonl(manifest, "hearing manifest"):
        try:
            rec = ClipRecord.from_dict(raw)
        except Exception as err:  # ManifestError: name the line
            raise BenchmarkDataError(f"{manifest}:{line}: {err}") from None
        seed = seed_description(rec)
        base = {"seed_description": seed, "dataset": rec.dataset,
                "speaker": rec.meta.get("speaker"), "clip": rec.id}
        tasks: list[tuple[str, str]] = []
        if rec.domain == "speech":
            if rec.attributes.get("Gender"):
                tasks.append(("gender", str(rec.attributes["Gender"])))
            if rec.attributes.get("Language") and (rec.duration or 0) >= MIN_LANGUAGE_SECONDS:
                tasks.append(("language", str(rec.attributes["Language"])))
            if rec.meta.get("language") == "en" and rec.transcript:
                tasks.append(("transcript", rec.transcript))
        elif rec.domain == "sound" and rec.attributes.get("Audio category"):
            tasks.append(("sound", str(rec.attributes["Audio category"])))
        elif rec.domain == "music" and rec.attributes.get("Family"):
            tasks.append(("instrument", str(rec.attributes["Family"])))
        for task, label in tasks:
            if subset and subset != task:
                continue
            items.append(BenchmarkItem(
                benchmark="hearing", id=f"{task}:{rec.id}", audio_paths=[root / rec.audio],
                prompt=QUESTIONS[task], reference=label, metadata={"task": task, **base}))
    if not items:
        raise BenchmarkDataError(f"{manifest}: no clip has a label the hearing probe can check "
                                 f"(tasks: {', '.join(QUESTIONS)})")
    missing = [i.audio_paths[0] for i in items if not i.audio_paths[0].is_file()]
    if missing:
        raise BenchmarkDataError(f"{len(missing)} audio file(s) of {manifest} are missing, e.g. "
                                 f"{missing[0]} (audio paths are relative to {root})")
    return items


def messages(item: BenchmarkItem) -> Messages:
    return audio_question_messages(item)


def text_ceiling_messages(item: BenchmarkItem) -> Messages:
    """The backbone's text-only view: the seed description in place of the audio, exactly
    as the training targets were written (desta.data.generate.BACKBONE_TEMPLATE)."""
    from desta.data.generate import backbone_messages

    return backbone_messages(item.metadata["seed_description"], item.prompt)


def result_row(item: BenchmarkItem, text: str) -> dict[str, Any]:
    return {"id": item.id, "task": item.metadata["task"], "reference": item.reference,
            "speaker": item.metadata["speaker"], "response": text}


# ---- scoring -----------------------------------------------------------------------------------
def judge_row(row: dict[str, Any], languages: list[str]) -> float | None:
    """1/0 for a keyword task, None for the WER task (scored as a whole)."""
    task, ref, answer = row["task"], row["reference"], row.get("response") or ""
    if task == "gender":
        return float(first_gender(answer) == ref)
    if task == "language":
        return float(first_language(answer, languages) == ref)
    if task == "sound":
        return float(names_sound(answer, ref))
    if task == "instrument":
        return float(first_family(answer) == ref)
    return None


def _task_scores(rows: list[dict[str, Any]], languages: list[str]) -> dict[str, Any]:
    import jiwer

    from desta.evaluation.text import whisper_basic_normalise as norm

    out: dict[str, Any] = {}
    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    for task, task_rows in by_task.items():
        if task == "transcript":
            refs = [norm(r["reference"]) or "-" for r in task_rows]
            hyps = [norm(r.get("response") or "") for r in task_rows]
            out[task] = {"wer": 100 * jiwer.wer(refs, hyps), "n": len(task_rows)}
            continue
        hits = [judge_row(r, languages) for r in task_rows]
        per_label = Counter()
        label_hits = Counter()
        for r, h in zip(task_rows, hits):
            per_label[r["reference"]] += 1
            label_hits[r["reference"]] += h or 0
        labels = {k: 100 * label_hits[k] / n for k, n in sorted(per_label.items())}
        # Balanced (mean over labels): its chance level is exactly 1/k, whatever the mix.
        out[task] = {"accuracy": sum(labels.values()) / len(labels),
                     "micro_accuracy": 100 * sum(hits) / len(hits), "n": len(task_rows),
                     "per_label": {k: round(v, 2) for k, v in labels.items()}}
    return out


def score(rows: list[dict[str, Any]], ctx: ScoreContext) -> dict[str, Any]:
    languages = sorted({r["reference"] for r in rows if r["task"] == "language"})
    candidates = sorted(set(language_names()) | set(languages))
    audio = _task_scores(rows, candidates)
    ceiling = _task_scores(ctx.backbone_rows, candidates) if ctx.backbone_rows else {}
    labels = {t: sorted({r["reference"] for r in rows if r["task"] == t}) for t in QUESTIONS}
    chance = {TASK_LABELS[t]: 100 / len(v) for t, v in labels.items() if v and t != "transcript"}
    summary: dict[str, float | None] = {}
    for task, label in TASK_LABELS.items():
        if task not in audio:
            continue
        key = "wer" if task == "transcript" else "accuracy"
        summary[label] = audio[task][key]
        if task in ceiling:
            summary[f"{label} (text ceiling)"] = ceiling[task][key]
            if key == "accuracy" and ceiling[task][key]:
                summary[f"{label} (audio / ceiling %)"] = \
                    100 * audio[task][key] / ceiling[task][key]
    return {"summary": summary, "chance": chance, "audio": audio, "text_ceiling": ceiling,
            "labels": labels,
            "note": "Keyword scoring of open answers on held-out speakers and recordings; "
                    "the text ceiling is the backbone answering from the seed description."}


SPEC = register(BenchmarkSpec(
    "hearing", "held-out real clips: gender, language, sound, instrument family, English WER "
               "(open questions, keyword scoring; --backbone-run adds the text ceiling)",
    load, messages, result_row, score, max_new_tokens=64,
    backbone_messages=text_ceiling_messages,
))


# ---- SAKURA's text ceiling ---------------------------------------------------------------------
_SAKURA_ATTRIBUTE = {"Gender": "Gender", "Language": "Language", "Emotion": "Emotion",
                     "Animal": "Audio category"}


def sakura_seed(item: BenchmarkItem) -> str:
    """A seed description of a SAKURA clip from its label (all clips are 5 s)."""
    track = item.metadata["track"]
    label = str(item.metadata["attribute_label"]).strip()
    if track != "Animal":
        label = label.capitalize()
    return f"[00:00-00:05] ({_SAKURA_ATTRIBUTE[track]}: {label}, Duration: 5s)"


def sakura_text_messages(item: BenchmarkItem) -> Messages:
    from desta.data.generate import backbone_messages

    return backbone_messages(sakura_seed(item), item.prompt)


def _sakura() -> BenchmarkSpec:
    from desta.evaluation import sakura

    return sakura.SPEC


def load_sakura(data: Path, subset: str | None) -> list[BenchmarkItem]:
    """SAKURA's own items (its loader), for a text-only run."""
    return _sakura().load(data, subset)


def sakura_text_row(item: BenchmarkItem, text: str) -> dict[str, Any]:
    return _sakura().result_row(item, text)


def score_sakura_text(rows: list[dict[str, Any]], ctx: ScoreContext) -> dict[str, Any]:
    return _sakura().score(rows, ctx)


register(BenchmarkSpec(
    "sakura-text", "SAKURA answered by the backbone from a seed description of each clip's "
                   "label, no audio (the text ceiling a connector is measured against)",
    load_sakura, sakura_text_messages, sakura_text_row, score_sakura_text, max_new_tokens=128,
    system_prompt=DEFAULT_SYSTEM,  # what SAKURA's audio runs get
))
