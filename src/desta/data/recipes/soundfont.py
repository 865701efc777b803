"""Sampled real instruments from the FluidR3 General MIDI SoundFont (fluid-soundfont-gm),
rendered note by note and as short phrases.

Package layout (a ``dpkg -x`` tree, or ``/`` where the package is installed)::

    usr/share/sounds/sf2/FluidR3_GM.sf2

:func:`prepare` renders, for each program of :data:`PROGRAMS` (about 40, spread over the
NSynth families, plus three GM drum kits), single notes at pitches within the instrument's
real range and at NSynth's velocities, and short seeded phrases (scale runs, arpeggios,
simple melodies; drum grooves for the kits), with TinySoundFont (the ``tinysoundfont``
wheel: no fluidsynth binary). Output, 16 kHz mono FLAC + one JSON line per clip::

    desta-prepared/soundfont/labels.jsonl
    desta-prepared/soundfont/000-040-violin/note-067-100.flac
    desta-prepared/soundfont/000-040-violin/phrase-03-arpeggio.flac
    desta-prepared/soundfont/128-000-drum-kit/note-038-127.flac     (a snare hit)

Every clip is a pure function of its program and plan entry (seeded by name, not by order),
so the same options give byte-identical files, and a larger ``clips_per_program`` only adds
files. The ``soundfont_instruments`` recipe reads ``labels.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from desta.audio.io import RESAMPLE_QUALITY, SAMPLE_RATE
from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.metadata import AudioCheck, iter_lines, malformed
from desta.data.recipes.paths import require_file, resolve_under
from desta.data.recipes.prepared import missing_prepared, prepared_dir

__all__ = ["DRUM_KEYS", "PROGRAMS", "Program", "prepare", "soundfont_instruments"]

logger = logging.getLogger(__name__)

SF2_PATH = "usr/share/sounds/sf2/FluidR3_GM.sf2"
SOURCE = "soundfont"  # desta.data.sources entry
LABELS_FILE = "labels.jsonl"
PACKAGE = "fluid-soundfont-gm"

RENDER_RATE = 48_000  # rendered at 48 kHz then resampled (3:1) so high notes do not alias
GAIN_DB = -3.0  # FluidR3 drum hits at velocity 127 peak just above full scale at 0 dB
PEAK_LIMIT = 0.98  # a clip louder than this is scaled down to it (logged)
SILENCE_PEAK = 1e-3  # -60 dBFS: the preset has no sample for this key
VELOCITIES = (25, 50, 75, 100, 127)  # NSynth's velocities
NOTE_SHARE = 0.6  # of each program's clips; the rest are phrases
TAIL_SECONDS = 1.0  # release after the last note-off
DRUM_BANK = 128  # GM percussion: bank 128 on channel 10
FLUSH_FRAMES = 2400  # 50 ms rendered and dropped between clips
FADE_SECONDS = 0.05  # fade-out at each clip's end


@dataclass(frozen=True)
class Program:
    """One SoundFont preset and how a listener would name it."""

    bank: int
    number: int  # GM program, 0-based (drum kits: the bank-128 preset)
    gm_name: str
    instrument: str
    family: str  # NSynth family, or percussion for the drum kits
    source: str  # acoustic / electronic (sampled synthesizers and electric instruments)
    low: int = 0  # playable MIDI range (real instrument's), unused for drum kits
    high: int = 127

    @property
    def drums(self) -> bool:
        return self.bank == DRUM_BANK

    @property
    def folder(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.instrument.lower()).strip("-")
        return f"{self.bank:03d}-{self.number:03d}-{slug}"


def _p(number: int, gm_name: str, instrument: str, family: str, source: str, low: int,
       high: int) -> Program:
    return Program(0, number, gm_name, instrument, family, source, low, high)


PROGRAMS: tuple[Program, ...] = (
    _p(0, "Acoustic Grand Piano", "piano", "keyboard", "acoustic", 21, 108),
    _p(4, "Electric Piano 1", "electric piano", "keyboard", "electronic", 28, 100),
    _p(6, "Harpsichord", "harpsichord", "keyboard", "acoustic", 29, 89),
    _p(9, "Glockenspiel", "glockenspiel", "mallet", "acoustic", 79, 108),
    _p(11, "Vibraphone", "vibraphone", "mallet", "acoustic", 53, 89),
    _p(12, "Marimba", "marimba", "mallet", "acoustic", 45, 96),
    _p(13, "Xylophone", "xylophone", "mallet", "acoustic", 65, 108),
    _p(16, "Drawbar Organ", "electric organ", "organ", "electronic", 36, 96),
    _p(19, "Church Organ", "pipe organ", "organ", "acoustic", 24, 96),
    _p(21, "Accordion", "accordion", "reed", "acoustic", 53, 89),
    _p(24, "Acoustic Guitar (nylon)", "classical guitar", "guitar", "acoustic", 40, 83),
    _p(25, "Acoustic Guitar (steel)", "acoustic guitar", "guitar", "acoustic", 40, 83),
    _p(27, "Electric Guitar (clean)", "electric guitar", "guitar", "electronic", 40, 86),
    _p(30, "Distortion Guitar", "distorted electric guitar", "guitar", "electronic", 40, 86),
    _p(32, "Acoustic Bass", "acoustic bass", "bass", "acoustic", 28, 55),
    _p(33, "Electric Bass (finger)", "electric bass", "bass", "electronic", 28, 60),
    _p(38, "Synth Bass 1", "synth bass", "bass", "electronic", 24, 60),
    _p(40, "Violin", "violin", "string", "acoustic", 55, 100),
    _p(41, "Viola", "viola", "string", "acoustic", 48, 88),
    _p(42, "Cello", "cello", "string", "acoustic", 36, 76),
    _p(43, "Contrabass", "double bass", "string", "acoustic", 28, 60),
    _p(46, "Orchestral Harp", "harp", "string", "acoustic", 24, 103),
    _p(52, "Choir Aahs", "choir", "vocal", "acoustic", 48, 79),
    _p(53, "Voice Oohs", "voice", "vocal", "acoustic", 48, 79),
    _p(56, "Trumpet", "trumpet", "brass", "acoustic", 54, 84),
    _p(57, "Trombone", "trombone", "brass", "acoustic", 40, 72),
    _p(58, "Tuba", "tuba", "brass", "acoustic", 28, 58),
    _p(60, "French Horn", "french horn", "brass", "acoustic", 34, 77),
    _p(65, "Alto Sax", "saxophone", "reed", "acoustic", 49, 81),
    _p(68, "Oboe", "oboe", "reed", "acoustic", 58, 91),
    _p(70, "Bassoon", "bassoon", "reed", "acoustic", 34, 75),
    _p(71, "Clarinet", "clarinet", "reed", "acoustic", 50, 91),
    _p(72, "Piccolo", "piccolo", "flute", "acoustic", 74, 102),
    _p(73, "Flute", "flute", "flute", "acoustic", 60, 96),
    _p(75, "Pan Flute", "pan flute", "flute", "acoustic", 60, 96),
    _p(80, "Lead 1 (square)", "square-wave synth lead", "synth_lead", "electronic", 36, 96),
    _p(81, "Lead 2 (sawtooth)", "sawtooth synth lead", "synth_lead", "electronic", 36, 96),
    Program(DRUM_BANK, 0, "Standard Kit", "drum kit", "percussion", "acoustic"),
    Program(DRUM_BANK, 40, "Brush Kit", "brush drum kit", "percussion", "acoustic"),
    Program(DRUM_BANK, 25, "TR-808 Kit", "drum machine", "percussion", "electronic"),
)

# GM percussion keys rendered as single hits, with the name a listener would use.
DRUM_KEYS: dict[int, str] = {
    36: "bass drum", 37: "side stick", 38: "snare drum", 39: "hand clap", 41: "floor tom",
    42: "closed hi-hat", 44: "pedal hi-hat", 45: "tom", 46: "open hi-hat", 48: "tom",
    49: "crash cymbal", 51: "ride cymbal", 54: "tambourine", 56: "cowbell", 60: "bongo",
    63: "conga", 70: "maracas", 75: "claves", 76: "wood block", 81: "triangle",
}

_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
           "major pentatonic": (0, 2, 4, 7, 9)}
_CHORDS = {"major": (0, 4, 7), "minor": (0, 3, 7), "dominant seventh": (0, 4, 7, 10)}
# Drum grooves on a 16-step bar: key -> steps. Brushes get a swing ride pattern.
_GROOVES = {
    "rock beat": {36: (0, 8), 38: (4, 12), 42: (0, 2, 4, 6, 8, 10, 12, 14)},
    "four on the floor": {36: (0, 4, 8, 12), 38: (4, 12), 46: (2, 6, 10, 14)},
    "half-time groove": {36: (0, 10), 38: (8,), 42: (0, 4, 8, 12)},
    "tom fill": {45: (0, 1, 2, 3), 48: (4, 5, 6, 7), 41: (8, 9, 10, 11), 49: (12,),
                 36: (12,)},
    "swing ride": {51: (0, 4, 7, 8, 12, 15), 44: (4, 12), 38: (4, 12)},
}


# ---------------------------------------------------------------------------------------------
# the plan: what each clip plays (a pure function of program + index)


@dataclass(frozen=True)
class _Event:
    start: float  # seconds
    length: float  # seconds held
    key: int
    velocity: int


@dataclass(frozen=True)
class _Clip:
    program: Program
    name: str  # file stem: note-060-100, phrase-03-arpeggio
    kind: str  # note | phrase
    events: tuple[_Event, ...]
    seconds: float
    label: dict[str, Any]  # what labels.jsonl says about it beyond the program


def _rng(*parts: object) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, the same on every run and platform.
    return random.Random(":".join(str(part) for part in parts))


def _note_clips(program: Program, count: int) -> list[_Clip]:
    keys = sorted(DRUM_KEYS) if program.drums else range(program.low, program.high + 1)
    grid = [(key, velocity) for key in keys for velocity in VELOCITIES]
    _rng("notes", program.bank, program.number).shuffle(grid)  # a prefix is an even spread
    clips = []
    for key, velocity in grid[:count]:
        hold = 0.2 if program.drums else _rng("hold", program.bank, program.number, key,
                                              velocity).choice((1.5, 2.0, 2.5, 3.0))
        seconds = 2.0 if program.drums else hold + TAIL_SECONDS
        label: dict[str, Any] = {"pitch": key, "velocity": velocity}
        if program.drums:
            label["drum"] = DRUM_KEYS[key]
        clips.append(_Clip(program, f"note-{key:03d}-{velocity:03d}", "note",
                           (_Event(0.0, hold, key, velocity),), seconds, label))
    return clips


def _fit(pattern: list[int], program: Program, rng: random.Random) -> list[int] | None:
    """Transpose `pattern` (semitones from 0) to a random tonic that keeps it in range."""
    span = max(pattern)
    if span > program.high - program.low:
        return None
    tonic = rng.randint(program.low, program.high - span)
    return [tonic + step for step in pattern]


def _pitched_phrase(program: Program, index: int) -> tuple[str, list[_Event], dict[str, Any]]:
    rng = _rng("phrase", program.bank, program.number, index)
    kind = ("scale run", "arpeggio", "melody")[index % 3]
    tempo = rng.randrange(80, 161, 4)
    beat = 60.0 / tempo
    base_velocity = rng.choice((64, 80, 96, 112))
    for octaves in (2, 1):  # narrow instruments get one-octave patterns
        if kind == "arpeggio":
            chord_name = rng.choice(sorted(_CHORDS))
            chord = _CHORDS[chord_name]
            up = [12 * o + step for o in range(octaves) for step in chord]
            up.append(12 * octaves)
            steps = up + up[-2::-1] if rng.random() < 0.5 else up
            lengths = [beat / 2] * len(steps)
            mode = chord_name
        else:
            mode = rng.choice(sorted(_SCALES))
            scale = _SCALES[mode]
            ladder = [12 * o + step for o in range(octaves) for step in scale]
            ladder.append(12 * octaves)
            if kind == "scale run":
                steps = ladder if rng.random() < 0.5 else ladder[::-1]
                lengths = [beat / 2] * len(steps)
            else:  # a random walk on the scale, ending on the tonic
                position, steps = 0, []
                for _ in range(rng.randint(5, 9)):
                    steps.append(ladder[position])
                    position = min(max(position + rng.choice((-2, -1, -1, 1, 1, 2)), 0),
                                   len(ladder) - 1)
                steps.append(ladder[0])
                lengths = [beat * rng.choice((0.5, 1.0, 1.0, 1.5)) for _ in steps[:-1]]
                lengths.append(beat * 2)
        pitches = _fit(steps, program, rng)
        if pitches is not None:
            break
    assert pitches is not None, f"{program.gm_name}: PROGRAMS range narrower than an octave"
    events, start = [], 0.0
    for pitch, length in zip(pitches, lengths):
        if start + length + TAIL_SECONDS > 6.0:
            break  # keep clips within 6 s
        velocity = min(127, base_velocity + rng.randint(-10, 10))
        events.append(_Event(round(start, 4), round(length * 0.9, 4), pitch, velocity))
        start += length
    tonic = pitches[steps.index(0)] % 12
    label = {"pattern": kind, "key": f"{_NOTE_NAMES[tonic]} {mode}", "tempo": tempo}
    return kind, events, label


def _drum_phrase(program: Program, index: int) -> tuple[str, list[_Event], dict[str, Any]]:
    rng = _rng("phrase", program.bank, program.number, index)
    names = ["swing ride"] if program.instrument == "brush drum kit" else [
        name for name in _GROOVES if name != "swing ride"]
    groove = rng.choice(names)
    tempo = rng.randrange(80, 141, 4)
    step = 60.0 / tempo / 4
    bars = 2 if 32 * step + TAIL_SECONDS <= 6.0 else 1
    events = [
        _Event(round((bar * 16 + hit) * step, 4), 0.1, key,
               min(127, (112 if hit % 4 == 0 else 88) + rng.randint(-8, 8)))
        for bar in range(bars) for key, hits in _GROOVES[groove].items() for hit in hits
    ]
    return groove, sorted(events, key=lambda e: (e.start, e.key)), {"pattern": groove,
                                                                     "tempo": tempo}


def _phrase_clips(program: Program, count: int) -> list[_Clip]:
    clips = []
    for index in range(count):
        make = _drum_phrase if program.drums else _pitched_phrase
        kind, events, label = make(program, index)
        end = max(event.start + event.length for event in events)
        seconds = round(max(2.0, end + TAIL_SECONDS), 3)
        label["notes"] = [event.key for event in events]
        slug = re.sub(r"[^a-z0-9]+", "-", kind)
        clips.append(_Clip(program, f"phrase-{index:02d}-{slug}", "phrase", tuple(events),
                           seconds, label))
    return clips


def _plan(clips_per_program: int) -> list[_Clip]:
    """Every clip :func:`prepare` renders for `clips_per_program`, in render order."""
    notes = round(clips_per_program * NOTE_SHARE)
    return [clip for program in PROGRAMS
            for clip in _note_clips(program, notes)
            + _phrase_clips(program, clips_per_program - notes)]


# ---------------------------------------------------------------------------------------------
# rendering


def _load_synth(sf2: Path) -> tuple[Any, int]:
    try:
        import tinysoundfont
    except ImportError:
        raise DatasetError(
            "soundfont: the `tinysoundfont` package is missing; install it with `pip install "
            "--no-deps tinysoundfont` (its pyaudio dependency is only for live playback)"
        ) from None
    synth = tinysoundfont.Synth(gain=GAIN_DB, samplerate=RENDER_RATE)
    try:
        sfid = synth.sfload(str(sf2))
    except Exception as exc:  # the binding raises a bare Exception for a bad file
        raise DatasetError(f"{sf2}: not a readable SoundFont ({exc}); the {PACKAGE} package "
                           f"may be damaged, fetch it again") from None
    return synth, sfid


def _render(synth: Any, clip: _Clip) -> np.ndarray:
    """The clip as float32 mono at 16 kHz, from a silent synthesizer."""
    channel = 9 if clip.program.drums else 0
    # End the previous clip's voices (a quick release, finished within the discarded block),
    # so a clip sounds the same whatever was rendered before it.
    synth.sounds_off()
    synth.generate(FLUSH_FRAMES)
    synth.control_change(channel, 121, 0)  # reset controllers
    changes = sorted(
        [(round(e.start * RENDER_RATE), 1, e.key, e.velocity) for e in clip.events]
        + [(round((e.start + e.length) * RENDER_RATE), 0, e.key, 0) for e in clip.events])
    total = round(clip.seconds * RENDER_RATE)
    chunks, cursor = [], 0
    for frame, on, key, velocity in changes:  # offs sort before ons at the same frame
        if frame > cursor:
            chunks.append(np.frombuffer(synth.generate(frame - cursor), np.float32))
            cursor = frame
        if on:
            synth.noteon(channel, key, velocity)
        else:
            synth.noteoff(channel, key)
    chunks.append(np.frombuffer(synth.generate(total - cursor), np.float32))
    stereo = np.concatenate(chunks).reshape(-1, 2)
    mono = stereo.mean(axis=1, dtype=np.float32)
    fade = round(FADE_SECONDS * RENDER_RATE)  # a ringing note cut at the clip's end clicks
    mono[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return soxr.resample(mono, RENDER_RATE, SAMPLE_RATE, quality=RESAMPLE_QUALITY
                         ).astype(np.float32)


def _write_flac(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        sf.write(tmp, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _label_line(clip: _Clip) -> dict[str, Any]:
    program = clip.program
    return {
        "file": f"{program.folder}/{clip.name}.flac", "kind": clip.kind,
        "bank": program.bank, "program": program.number, "gm_name": program.gm_name,
        "instrument": program.instrument, "family": program.family, "source": program.source,
        "duration": clip.seconds, **clip.label,
    }


def prepare(root: Path, *, progress: bool = True, clips_per_program: int = 25) -> None:
    """Render ``clips_per_program`` clips (60 % single notes, 40 % phrases) for each of the
    40 programs of :data:`PROGRAMS` from ``<root>/usr/share/sounds/sf2/FluidR3_GM.sf2`` into
    ``<root>/desta-prepared/soundfont/`` (the default gives 1000 clips), then write
    ``labels.jsonl`` listing every clip on disk.

    Idempotent: clips already rendered are kept; files are written under a temporary name
    and renamed. Notes the preset has no sample for (silent renders) are left out and
    counted. A program missing from the SoundFont does not stop the others: the missing
    ones are raised together, after the rest is rendered.
    """
    from tqdm import tqdm

    if not isinstance(clips_per_program, int) or clips_per_program < 1:
        raise DatasetError(f"soundfont: clips_per_program must be a positive integer, got "
                           f"{clips_per_program!r}")
    root = Path(root)
    sf2 = require_file(root / SF2_PATH, "soundfont", f"SoundFont of {PACKAGE}")
    out = prepared_dir(root, SOURCE)
    synth, sfid = _load_synth(sf2)
    absent = [p for p in PROGRAMS if synth.sfpreset_name(sfid, p.bank, p.number) is None]
    clips = [clip for clip in _plan(clips_per_program) if clip.program not in absent]
    lines, rendered, silent, limited, started = [], 0, 0, 0, time.perf_counter()
    current: Program | None = None
    for clip in tqdm(clips, desc="soundfont: render", unit="clip", disable=not progress):
        path = out / clip.program.folder / f"{clip.name}.flac"
        if not path.is_file():
            if clip.program is not current:
                current = clip.program
                synth.program_select(9 if current.drums else 0, sfid, current.bank,
                                     current.number, is_drums=current.drums)
            audio = _render(synth, clip)
            peak = float(np.abs(audio).max())
            if peak < SILENCE_PEAK:
                silent += 1
                continue
            if peak > PEAK_LIMIT:
                audio *= PEAK_LIMIT / peak
                limited += 1
            _write_flac(path, audio)
            rendered += 1
        lines.append(_label_line(clip))
    seconds = time.perf_counter() - started
    labels = out / LABELS_FILE
    out.mkdir(parents=True, exist_ok=True)
    tmp = labels.with_name(f".{labels.name}.tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                   encoding="utf-8")
    os.replace(tmp, labels)
    logger.info("soundfont: %d clip(s) rendered in %.1f s (%d kept from before, %d silent "
                "left out, %d scaled down to the peak limit); %s lists %d", rendered, seconds,
                len(lines) - rendered, silent, limited, labels, len(lines))
    if absent:
        names = ", ".join(f"{p.gm_name} (bank {p.bank}, program {p.number})" for p in absent)
        raise DatasetError(f"{sf2}: has no preset for {names}; the other programs were "
                           f"rendered")


# ---------------------------------------------------------------------------------------------
# the recipe

_REQUIRED = {"file": str, "kind": str, "bank": int, "program": int, "gm_name": str,
             "instrument": str, "family": str, "source": str, "duration": (int, float)}


def _attributes(row: dict[str, Any]) -> dict[str, str]:
    attributes = {"Instrument": row.get("drum") or row["instrument"], "Family": row["family"],
                  "Source": row["source"]}
    if row["kind"] == "note" and "drum" not in row:
        attributes["MIDI Note"] = f"{row['pitch']:03d}"  # zero-padded like NSynth
        attributes["Velocity"] = str(row["velocity"])
    return attributes


def _check_row(row: Any, path: Path, number: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise malformed(path, number, "expected a JSON object")
    for key, kind in _REQUIRED.items():
        if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
            raise malformed(path, number, f"field {key!r} is missing or not a "
                                          f"{getattr(kind, '__name__', 'number')}")
    if row["kind"] not in ("note", "phrase"):
        raise malformed(path, number, f"kind {row['kind']!r} is not 'note' or 'phrase'")
    if row["kind"] == "note":
        for key in ("pitch", "velocity"):
            if not isinstance(row.get(key), int) or not 0 <= row[key] <= 127:
                raise malformed(path, number, f"note field {key!r} is missing or not 0-127")
    return row


@register_recipe("soundfont_instruments")
def soundfont_instruments(root: Path, *, split: str | None = None, missing_audio: str = "skip"
                          ) -> Iterator[dict[str, Any]]:
    """FluidR3 clips rendered by :func:`prepare` (domain ``music``). Attributes: ``Instrument``
    (a listener's name: ``violin``, ``piano``; the drum for single drum hits), ``Family``
    (NSynth's, or ``percussion``), ``Source`` (acoustic/electronic), and for pitched single
    notes ``MIDI Note`` (3 digits, as NSynth) and ``Velocity``. ``meta.kind`` is ``note`` or
    ``phrase``; ``meta`` also keeps the GM program and name, the pattern, key, tempo and
    notes of a phrase. No splits.
    """
    prepared = prepared_dir(root, SOURCE)
    labels = prepared / LABELS_FILE
    if not labels.is_file():
        raise missing_prepared(root, SOURCE)
    check = AudioCheck("soundfont_instruments", missing_audio)
    try:
        for number, line in iter_lines(labels, "soundfont_instruments", "clip list"):
            if not line.strip():
                continue
            try:
                row = _check_row(json.loads(line), labels, number)
            except json.JSONDecodeError as exc:
                raise malformed(labels, number, f"not valid JSON ({exc.msg})") from None
            source = f"{labels}:{number}"
            audio = resolve_under(prepared, row["file"], source=source)
            if not check.exists(audio, source):
                continue
            # row["source"] (acoustic/electronic) is the Source attribute; meta.source is
            # the package, as in every recipe
            meta = {**{k: v for k, v in row.items() if k not in ("file", "duration", "source")},
                    "source": PACKAGE}
            yield make_record(
                id=f"soundfont_instruments/{row['file'].removesuffix('.flac')}", audio=audio,
                dataset="soundfont_instruments", domain="music", attributes=_attributes(row),
                duration=float(row["duration"]), meta=meta,
            )
        check.finish()
    finally:
        check.report()
