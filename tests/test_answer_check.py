"""Keyword readers of open answers (gender, language, sound, instrument family) and the
contradiction check that keeps self-generated targets consistent with the clip's labels."""

from __future__ import annotations

import pytest

from desta.data.answer_check import (
    contradiction,
    first_family,
    first_gender,
    first_language,
    language_names,
    names_sound,
)


@pytest.mark.parametrize(("answer", "gender"), [
    ("The speaker is a woman.", "Female"),
    ("A female voice, calm and clear.", "Female"),  # "female" is not read as "male"
    ("The voice belongs to a male.", "Male"),
    ("It sounds like a man; he speaks slowly.", "Male"),
    ("She says hello.", "Female"),
    ("The gender of the speaker is unknown.", None),
    ("Mannequin and manual", None),  # no word-internal matches
])
def test_first_gender(answer, gender):
    assert first_gender(answer) == gender


def test_pronouns_count_only_when_asked():
    assert first_gender("The clip says: he will call back.", pronouns=False) is None
    # A describe answer quoting a transcript with "he" does not contradict a female label...
    assert contradiction({"Gender": "Female"}, "The recording says he will call back.") is None
    # ...but an answer to a gender question that says "he" does.
    assert contradiction({"Gender": "Female"}, "He is speaking.", asked=["gender"])


def test_first_language_takes_the_first_name_mentioned():
    names = language_names()
    assert first_language("This is Czech, not Slovak.", names) == "Czech"
    assert first_language("The speaker uses Spanish and some English.", names) == "Spanish"
    assert first_language("Mandarin Chinese, spoken slowly.", names) == "Mandarin Chinese"
    assert first_language("No idea.", names) is None


def test_sounds_and_instruments():
    assert names_sound("I hear a dog barking loudly.", "dog")
    assert names_sound("It goes moo.", "cow")
    assert not names_sound("A cat meows.", "dog")
    assert names_sound("A washing machine spinning.", "washing machine")
    assert first_family("A violin plays a slow melody.") == "string"
    assert first_family("A bass guitar line, then a piano.") == "bass"
    assert first_family("Guitar chords.") == "guitar"
    assert first_family("Some drums and a trumpet.") == "percussion"
    assert first_family("A quiet room.") is None


def test_contradiction_rules():
    labels = {"Language": "Spanish", "Gender": "Female"}
    assert contradiction(labels, "A woman speaking Spanish.") is None
    assert "says gender Male" in contradiction(labels, "A man speaking Spanish.")
    assert "says language English" in contradiction(labels, "This is English.")
    # Not naming a language is fine unless the prompt asks for it.
    assert contradiction(labels, "The speaker sounds calm.") is None
    assert "says language None" in contradiction(labels, "The speaker sounds calm.",
                                                 asked=["language"])
    assert contradiction({"Audio category": "horse"}, "A horse neighs.",
                         asked=["audio category"]) is None
    assert contradiction({"Audio category": "horse"}, "Rain on a roof.",
                         asked=["audio category"])
    assert contradiction({"Instrument": "cello", "Family": "string"}, "A cello.",
                         asked=["instrument"]) is None
    assert contradiction({"Instrument": "cello", "Family": "string"}, "A flute.",
                         asked=["instrument"])
