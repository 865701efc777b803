"""Does an answer agree with the clip's labels? Keyword readers for open answers about gender,
language, sound and instrument, used twice: to keep self-generated targets that contradict the
seed description out of the training rows (`desta data generate --verify-answers`), and to score
the hearing probe (`desta eval hearing`).

A small backbone often misreads its seed description (SmolLM2-135M answers "The voice belongs
to a male." for `Gender: Female` about half the time): such a target teaches the connector
nothing but noise. The reader takes the *first* gender word / language name / instrument of
the answer, which is how these answers state their claim ("The speaker is a woman.").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_FEMALE = frozenset(("female", "woman", "women", "girl", "lady", "feminine"))
_MALE = frozenset(("male", "man", "men", "boy", "gentleman", "masculine"))
_SHE, _HE = frozenset(("she", "her", "hers")), frozenset(("he", "his", "him"))

# Names a listener would use for a labelled sound (the label itself always counts).
SOUND_SYNONYMS: dict[str, tuple[str, ...]] = {
    "cat": ("cat", "kitten", "meow", "miaow", "purr"),
    "chicken": ("chicken", "hen", "cluck", "rooster", "poultry"),
    "cow": ("cow", "moo", "cattle", "bull", "calf"),
    "dog": ("dog", "bark", "puppy", "woof", "barking"),
    "duck": ("duck", "quack"),
    "horse": ("horse", "neigh", "whinny", "pony"),
    "owl": ("owl", "hoot"),
    "pig": ("pig", "oink", "hog", "piglet", "grunt"),
    "sheep": ("sheep", "baa", "lamb", "bleat"),
}
# Instrument words -> NSynth family (plus percussion); the longest name at a position wins
# ("bass guitar" is bass, "guitar" alone is guitar).
INSTRUMENT_FAMILIES: dict[str, tuple[str, ...]] = {
    "string": ("violin", "viola", "cello", "violoncello", "double bass", "contrabass", "fiddle",
               "harp", "string", "strings"),
    "keyboard": ("piano", "keyboard", "harpsichord", "clavinet", "celesta", "electric piano"),
    "guitar": ("guitar",),
    "bass": ("bass guitar", "electric bass", "synth bass", "acoustic bass", "bass"),
    "brass": ("trumpet", "trombone", "tuba", "french horn", "horn", "brass", "cornet", "bugle"),
    "flute": ("flute", "piccolo", "recorder", "pan flute", "panpipe", "ocarina", "whistle"),
    "reed": ("clarinet", "oboe", "bassoon", "saxophone", "sax", "accordion", "harmonica",
             "reed"),
    "organ": ("organ",),
    "mallet": ("xylophone", "marimba", "vibraphone", "glockenspiel", "mallet", "bells"),
    "synth_lead": ("synthesizer", "synth", "lead"),
    "vocal": ("choir", "voice", "vocal", "vocals", "singer", "singing"),
    "percussion": ("drum", "drums", "percussion", "cymbal", "snare", "hi-hat", "tom", "conga",
                   "bongo", "tambourine", "cowbell", "triangle", "maracas", "clap", "gong"),
}
_FAMILY_OF = {word: family for family, words in INSTRUMENT_FAMILIES.items() for word in words}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower())


def first_gender(answer: str, *, pronouns: bool = True) -> str | None:
    """"Female" / "Male" from the first gender word of an answer (with `pronouns`, "she" / "he"
    count too: right for an answer to a gender question, not for one quoting a transcript);
    None when there is none."""
    female = _FEMALE | _SHE if pronouns else _FEMALE
    male = _MALE | _HE if pronouns else _MALE
    for word in _words(answer):
        if word in female:
            return "Female"
        if word in male:
            return "Male"
    return None


def first_language(answer: str, names: Iterable[str]) -> str | None:
    """The language name (of `names`) the answer mentions first; None when it names none."""
    text = answer.lower()
    found = []
    for name in names:
        match = re.search(rf"\b{re.escape(name.lower())}\b", text)
        if match:
            found.append((match.start(), -len(name), name))
    return min(found)[2] if found else None


def names_sound(answer: str, label: str) -> bool:
    """Whether the answer names the labelled sound (or a listener's synonym of it)."""
    text, words = answer.lower(), set(_words(answer))
    options = SOUND_SYNONYMS.get(label.lower(), (label.lower(),))
    return any(o in words or (" " in o and o in text) for o in options) or label.lower() in text


def first_family(answer: str) -> str | None:
    """The family of the first instrument the answer names."""
    text = answer.lower()
    best: tuple[int, int, str] | None = None
    for word, family in _FAMILY_OF.items():
        match = re.search(rf"\b{re.escape(word)}s?\b", text)
        if match and (best is None or (match.start(), -len(word)) < best[:2]):
            best = (match.start(), -len(word), family)
    return best[2] if best else None


def language_names() -> list[str]:
    from desta.data.recipes.languages import LANGUAGE_NAMES

    return sorted(set(LANGUAGE_NAMES.values()))


def contradiction(attributes: Mapping[str, object], answer: str,
                  asked: Iterable[str] = ()) -> str | None:
    """Why `answer` disagrees with the clip's labelled `attributes`, or None.

    Any answer that names a gender or a language must name the labelled one. For the attributes
    in `asked` (the prompt's ``requires``, lower case) the answer must also state the label:
    gender, language, audio category, instrument (checked by family) and family.
    """
    asked = {a.lower() for a in asked}
    gender = attributes.get("Gender")
    said = first_gender(answer, pronouns="gender" in asked)
    if gender and (said or "gender" in asked) and said != gender:
        return f"says gender {said}, label {gender}"
    language = attributes.get("Language")
    named = first_language(answer, language_names())
    if language and (named or "language" in asked) and named != language:
        return f"says language {named}, label {language}"
    sound = attributes.get("Audio category")
    if sound and "audio category" in asked and not names_sound(answer, str(sound)):
        return f"does not name the sound {sound}"
    family = attributes.get("Family")
    if family and asked & {"instrument", "family"} and first_family(answer) != family:
        return f"names instrument family {first_family(answer)}, label {family}"
    return None
