"""The real-audio corpus the embedded model is trained on: recipes -> selection -> speaker split
-> augmentation -> finished manifests.

Input: a data root filled by ``desta data fetch`` (Debian packages of recorded speech, animal
and household sounds, and instruments; docs/data/real-audio.md). Output, under
``<root>/desta-corpus/``:

- ``train.jsonl``: ClipRecords to generate training rows from;
- ``heldout.jsonl``: clips of speakers (and sound recordings) that never appear in training,
  for the hearing probe (``desta eval hearing``);
- ``audio/``: augmented copies of the few real sound recordings;
- ``corpus.json``: counts per source, language, gender and category, and the split.

The split is by speaker. Held-out speakers are chosen so that each language with a second
sentence-level speaker keeps one in held-out, and both stated genders are held out from the
same recording conditions (the two Dutch Fish Fillets voices). Sound recordings: GCompris'
farm animals are held out (Tux Paint has its own recordings of the same animals). Instruments:
a fixed share of the rendered SoundFont clips of every program.

Everything is seeded and deterministic: the same root and plan give byte-identical manifests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from desta.data.seed import ClipRecord
from desta.errors import ConfigError, DestaError

logger = logging.getLogger(__name__)

CORPUS_DIR = "desta-corpus"

# Speakers whose clips are held out. Each language listed keeps other speakers in training:
# nl (Tux Paint, KLettres), fr (Tux Paint, Armelle, KLettres, KTuberling), es (Tux Paint,
# Allison, KLettres), it (Carlo, KLettres), ru (Tux Paint, KLettres, KTuberling), en
# (Allison, KLettres, KTuberling), cs (the two fish, KLettres).
HELDOUT_SPEAKERS = (
    "fillets:nl:small_fish", "fillets:nl:big_fish", "asterisk:june", "asterisk:july_jimenez",
    "asterisk:menardi", "asterisk:ivrvoiceru", "tuxpaint:en", "tuxpaint:en_GB",
)
# Fish Fillets' other Czech characters (statue, gods, parrot, vikings...) are voiced by other
# actors than the two fish: held out as Czech speakers.
_FILLETS_TRAIN_CHARACTERS = ("small_fish", "big_fish", "robodog", "both_fish")
HELDOUT_SOUND_ACTIVITIES = ("explore_farm_animals",)

SPEECH_RECIPES = ("fillets", "asterisk", "asterisk_prompts", "tuxpaint", "klettres",
                  "ktuberling", "gcin", "zeroad_voices")
SOUND_RECIPES = ("tuxpaint_sounds", "gcompris_sounds", "zeroad_animals")
MUSIC_RECIPES = ("soundfont_instruments",)


@dataclass(frozen=True)
class CorpusPlan:
    """How many clips to take, and how to augment: every knob in one place."""

    seed: int = 0
    # Training clips per speaker, by recipe (sentence-level sources get more).
    speaker_caps: dict[str, int] = field(default_factory=lambda: {
        "fillets": 300, "asterisk": 220, "asterisk_prompts": 150, "tuxpaint": 110,
        "klettres": 25, "ktuberling": 15, "gcin": 40, "zeroad_voices": 40})
    heldout_per_speaker: int = 100
    # The hearing probe's subset of held-out (probe.jsonl): clips of >= 1 s, at most this many
    # per speaker and per language, and per instrument family; every held-out sound.
    probe_per_speaker: int = 32
    probe_per_language: int = 60
    probe_per_family: int = 5
    # Augmented copies of each training sound recording (crop, gain, noise).
    sound_copies: int = 5
    # A telephone-band copy (through 8 kHz and back) of each training speech clip with a stated
    # gender: held-out has an 8 kHz voice (Menardi) and no gendered training voice is 8 kHz
    # (with them the shipped connector's held-out gender went from 66 to 70 %).
    narrowband_gender: bool = True
    # Share of each SoundFont program's clips held out.
    instrument_heldout: float = 0.15
    # Longer recordings (world music) are cut into segments of at most this many seconds.
    max_seconds: float = 10.0
    # pYIN Pitch costs ~1 s per speech clip on one core (80 CPU-minutes for this corpus);
    # off by default, Volume and Speaking speed are still measured.
    pitch: bool = False
    workers: int = 2


@dataclass
class CorpusReport:
    out_dir: Path
    train: Path
    heldout: Path
    counts: dict[str, Any]


def stable_rank(key: str, seed: int) -> int:
    """A stable pseudo-random order (sha256 of seed + key)."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{key}".encode()).digest()[:8], "big")


def heldout_speaker(speaker: str | None) -> bool:
    if not speaker:
        return False
    if speaker in HELDOUT_SPEAKERS:
        return True
    if speaker.startswith("fillets:cs:"):
        return speaker.split(":")[2] not in _FILLETS_TRAIN_CHARACTERS
    return False


def _recipe_records(root: Path, names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    from desta.data.recipes import get_recipe

    for name in names:
        yield from get_recipe(name)(root)


def select_speech(records: list[dict[str, Any]], plan: CorpusPlan
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held-out) speech records: capped per speaker in a seeded order."""
    by_speaker: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        speaker = rec["meta"].get("speaker") or f"{rec['dataset']}:unknown"
        by_speaker.setdefault(speaker, []).append(rec)
    train, heldout = [], []
    for speaker in sorted(by_speaker):
        recs = sorted(by_speaker[speaker], key=lambda r: stable_rank(r["id"], plan.seed))
        if heldout_speaker(speaker):
            heldout += recs[: plan.heldout_per_speaker]
        else:
            cap = plan.speaker_caps.get(recs[0]["dataset"], 100)
            train += recs[:cap]
    return train, heldout


def split_sounds(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    train, heldout = [], []
    for rec in records:
        (heldout if rec["meta"].get("activity") in HELDOUT_SOUND_ACTIVITIES else train).append(rec)
    return train, heldout


def split_instruments(records: list[dict[str, Any]], plan: CorpusPlan
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A fixed share of each program's clips held out (notes and phrases alike)."""
    by_program: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_program.setdefault(rec["id"].rsplit("/", 1)[0], []).append(rec)
    train, heldout = [], []
    for program in sorted(by_program):
        recs = sorted(by_program[program], key=lambda r: stable_rank(r["id"], plan.seed))
        n = max(1, round(plan.instrument_heldout * len(recs)))
        heldout += recs[:n]
        train += recs[n:]
    return train, heldout


# ---- audio the corpus writes: sound augmentation, long-recording segments --------------------
def _write_flac(path: Path, wave: np.ndarray) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, wave, 16_000, format="FLAC")
    os.replace(tmp, path)


def augment_sound(rec: dict[str, Any], out_dir: Path, copies: int, seed: int
                  ) -> list[dict[str, Any]]:
    """`copies` variants of one recording: a random crop (when longer than 2 s), a gain of
    -6..+6 dB, and for half of them white noise at 15-35 dB SNR (stated as Noise Level)."""
    from desta.audio.io import load_audio
    from desta.data.attributes import mix_at_snr, noise_level

    wave = load_audio(rec["audio"])
    out = []
    for k in range(copies):
        rng = np.random.default_rng(stable_rank(f"{rec['id']}#{k}", seed) % 2**63)
        clip = wave
        if len(wave) > 2 * 16_000:
            length = int(rng.uniform(0.6, 1.0) * len(wave))
            start = int(rng.integers(0, len(wave) - length + 1))
            clip = wave[start:start + length]
        clip = (clip * 10 ** (rng.uniform(-6, 6) / 20)).astype(np.float32)
        attributes = dict(rec["attributes"])
        if k % 2 == 1:
            snr = float(rng.uniform(15, 35))
            noise = rng.standard_normal(len(clip)).astype(np.float32)
            clip = mix_at_snr(clip, noise, snr, rng)
            attributes["Noise Level"] = noise_level(snr)
        peak = float(np.abs(clip).max())
        if peak > 0.99:
            clip = clip * (0.99 / peak)
        name = rec["id"].replace("/", "__")
        path = out_dir / "audio" / "sound" / f"{name}__aug{k}.flac"
        if not path.is_file():
            _write_flac(path, clip.astype(np.float32))
        out.append({**rec, "id": f"{rec['id']}#aug{k}", "audio": path, "attributes": attributes,
                    "duration": None, "meta": {**rec["meta"], "augmented_from": rec["id"]}})
    return out


NARROWBAND_RATE = 8_000


def narrowband_copy(rec: dict[str, Any], out_dir: Path) -> dict[str, Any] | None:
    """The clip as an 8 kHz recording would give it (resampled to 8 kHz, anti-aliased, and back
    to 16 kHz): nothing above 4 kHz. Labels and transcript are the original's. None (logged)
    when the clip cannot be read: the original is then left out later, with its reason."""
    from scipy.signal import resample_poly

    from desta.audio.io import load_audio

    name = rec["id"].replace("/", "__")
    path = out_dir / "audio" / "narrowband" / f"{name}__8k.flac"
    if not path.is_file():
        try:
            wave = load_audio(rec["audio"])
        except DestaError as err:
            logger.warning("no narrowband copy of %s: %s", rec["id"], err)
            return None
        low = resample_poly(wave, NARROWBAND_RATE, 16_000)
        back = resample_poly(low, 16_000, NARROWBAND_RATE)[: len(wave)].astype(np.float32)
        peak = float(np.abs(back).max()) if len(back) else 0.0
        _write_flac(path, back * (0.99 / peak) if peak > 0.99 else back)
    return {**rec, "id": f"{rec['id']}#8k", "audio": path, "duration": None,
            "meta": {**rec["meta"], "augmented_from": rec["id"],
                     "augmentation": f"narrowband ({NARROWBAND_RATE} Hz)"}}


def segment_long(rec: dict[str, Any], out_dir: Path, max_seconds: float) -> list[dict[str, Any]]:
    """Recordings longer than `max_seconds` (world music pieces) cut into segments."""
    import soundfile as sf

    from desta.audio.io import load_audio

    if sf.info(str(rec["audio"])).duration <= max_seconds:
        return [rec]
    wave = load_audio(rec["audio"], max_seconds=None)
    step = int(max_seconds * 16_000)
    out = []
    for k, start in enumerate(range(0, len(wave) - step // 2, step)):
        path = out_dir / "audio" / "segments" / f"{rec['id'].replace('/', '__')}__{k:02d}.flac"
        if not path.is_file():
            _write_flac(path, wave[start:start + step])
        out.append({**rec, "id": f"{rec['id']}#seg{k:02d}", "audio": path, "duration": None,
                    "meta": {**rec["meta"], "segment_of": rec["id"], "segment": k}})
    return out


# ---- finishing records (duration, Pitch/Volume/Speaking speed) in worker processes ----------
def _complete(args: tuple[dict[str, Any], str, bool]) -> tuple[str, str | None]:
    from desta.data.manifest import complete_record

    raw, root, pitch = args
    try:
        return complete_record(raw, Path(root), pitch=pitch).to_json(), None
    except DestaError as err:
        return "", f"{raw['id']}: {err}"


def complete_all(raws: list[dict[str, Any]], root: Path, workers: int, desc: str,
                 pitch: bool = True) -> list[ClipRecord]:
    """Finish every record (in `workers` processes, order kept); unreadable clips are
    logged and left out, never silently mislabelled."""
    from tqdm.auto import tqdm

    jobs = [(raw, str(root), pitch) for raw in raws]
    done: list[ClipRecord] = []
    failed = 0
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as pool:
        for line, error in tqdm(pool.map(_complete, jobs, chunksize=8), total=len(jobs),
                                desc=desc, unit="clip"):
            if error:
                failed += 1
                logger.warning("left out: %s", error)
            else:
                done.append(ClipRecord.from_json(line))
    if failed:
        logger.warning("%s: %d unreadable clip(s) left out", desc, failed)
    return done


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


# ---- the whole build -------------------------------------------------------------------------
def build_real_corpus(root: str | Path, out_dir: str | Path | None = None,
                      plan: CorpusPlan | None = None) -> CorpusReport:
    """Select, split, augment and finish the real-audio corpus under `root` (a fetch root)."""
    plan = plan or CorpusPlan()
    root = Path(root).expanduser().absolute()
    out = Path(out_dir).expanduser().absolute() if out_dir else root / CORPUS_DIR
    try:
        out.relative_to(root)
    except ValueError:
        raise ConfigError(f"the corpus folder {out} must be inside the data root {root}, so "
                          "every manifest path is relative to the root") from None
    out.mkdir(parents=True, exist_ok=True)
    speech = list(_recipe_records(root, SPEECH_RECIPES))
    speech_train, speech_held = select_speech(speech, plan)
    sound_train, sound_held = split_sounds(
        [r for r in _recipe_records(root, SOUND_RECIPES) if r["domain"] == "sound"])
    gcompris_music = [r for r in _recipe_records(root, ("gcompris_sounds",))
                      if r["domain"] == "music"]
    inst_train, inst_held = split_instruments(list(_recipe_records(root, MUSIC_RECIPES)), plan)

    sound_train = [v for r in sound_train for v in (r, *augment_sound(r, out, plan.sound_copies,
                                                                      plan.seed))]
    if plan.narrowband_gender:
        copies = [narrowband_copy(r, out) for r in speech_train
                  if r.get("attributes", {}).get("Gender")]
        speech_train += [c for c in copies if c is not None]
    music_train = inst_train + [s for r in gcompris_music
                                for s in segment_long(r, out, plan.max_seconds)]

    train = hearable(complete_all(speech_train + sound_train + music_train, root, plan.workers,
                                  "train", plan.pitch))
    heldout = hearable(complete_all(speech_held + sound_held + inst_held, root, plan.workers,
                                    "held-out", plan.pitch))
    train_path, held_path = out / "train.jsonl", out / "heldout.jsonl"
    probe = probe_subset(heldout, plan)
    # A second row for every clip with a stated gender, asked only gender questions (the
    # general pool asks about gender in ~12 % of those rows): `train-gender.jsonl`.
    gender_round = [dataclasses.replace(r, id=f"{r.id}#gender") for r in train
                    if r.attributes.get("Gender")]
    for path, records in ((train_path, train), (held_path, heldout),
                          (out / "train-gender.jsonl", gender_round),
                          (out / "probe.jsonl", probe),
                          (out / "validation.jsonl", validation_subset(heldout, plan))):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, path)
    counts = {"data_root": os.path.relpath(root, out), "plan": asdict(plan),
              "train": summarise(train), "heldout": summarise(heldout),
              "probe": summarise(probe),
              "heldout_speakers": sorted({r.meta.get("speaker") for r in heldout
                                          if r.domain == "speech"})}
    overlap = {r.meta.get("speaker") for r in train if r.domain == "speech"} & \
        set(counts["heldout_speakers"])
    if overlap:
        raise ConfigError(f"speakers in both train and held-out: {sorted(overlap)}")
    (out / "corpus.json").write_text(json.dumps(counts, indent=2, ensure_ascii=False) + "\n")
    return CorpusReport(out, train_path, held_path, counts)


def probe_subset(heldout: list[ClipRecord], plan: CorpusPlan) -> list[ClipRecord]:
    """The clips the hearing probe asks about: a seeded, capped subset of held-out, so that one
    probe run takes minutes on a CPU and no speaker or language dominates."""
    per_speaker: Counter[str] = Counter()
    per_language: Counter[str] = Counter()
    per_family: Counter[str] = Counter()
    out = []
    for rec in sorted(heldout, key=lambda r: stable_rank(r.id, plan.seed)):
        if rec.domain == "speech":
            speaker, language = rec.meta.get("speaker", ""), str(rec.attributes.get("Language"))
            if ((rec.duration or 0) < 1.0 or per_speaker[speaker] >= plan.probe_per_speaker
                    or per_language[language] >= plan.probe_per_language):
                continue
            per_speaker[speaker] += 1
            per_language[language] += 1
        elif rec.domain == "music":
            family = str(rec.attributes.get("Family"))
            if per_family[family] >= plan.probe_per_family:
                continue
            per_family[family] += 1
        out.append(rec)
    return sorted(out, key=lambda r: r.id)


def validation_subset(heldout: list[ClipRecord], plan: CorpusPlan) -> list[ClipRecord]:
    """Held-out clips to generate validation rows for (the trainer's held-out loss): from each
    speaker (or, without one, dataset) a quarter of its clips, at least 2 and at most 20."""
    import random

    shuffled = list(heldout)
    random.Random(plan.seed).shuffle(shuffled)
    groups: dict[str, list[ClipRecord]] = {}
    for rec in shuffled:
        groups.setdefault(rec.meta.get("speaker") or rec.dataset, []).append(rec)
    return [r for key in sorted(groups) for r in
            groups[key][: max(2, min(20, len(groups[key]) // 4))]]


def hearable(records: list[ClipRecord]) -> list[ClipRecord]:
    """Seed descriptions say what the embedded model can hear. Its ASR (Whisper tiny.en) is
    English-only: for other languages it has no transcript to give the LLM, so a seed
    description holding the words would teach the connector to make words up. Non-English
    speech keeps its transcript in ``meta["transcript"]`` (for a multilingual encoder, put it
    back), describes language, voice and delivery only, and its training rows give the model
    the transcript " " (``meta["row_transcript"]``), as the gated English ASR does."""
    out = []
    for rec in records:
        if rec.domain == "speech" and rec.meta.get("language") != "en":
            meta = {**rec.meta, "row_transcript": " "}
            if rec.transcript:
                meta["transcript"] = rec.transcript
            rec = dataclasses.replace(rec, transcript=None, meta=meta)
        out.append(rec)
    return out


def summarise(records: list[ClipRecord]) -> dict[str, Any]:
    """Counts and hours per domain, dataset, language, gender and sound/instrument class."""
    out: dict[str, Any] = {"clips": len(records),
                           "hours": round(sum(r.duration or 0 for r in records) / 3600, 3)}
    for name, key in (("domain", lambda r: r.domain), ("dataset", lambda r: r.dataset),
                      ("language", lambda r: r.attributes.get("Language")),
                      ("gender", lambda r: r.attributes.get("Gender")),
                      ("category", lambda r: r.meta.get("category")),
                      ("family", lambda r: r.attributes.get("Family"))):
        counter = Counter(key(r) for r in records)
        counter.pop(None, None)
        out[name] = dict(sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0]))))
    out["speakers"] = len({r.meta.get("speaker") for r in records if r.domain == "speech"})
    return out
