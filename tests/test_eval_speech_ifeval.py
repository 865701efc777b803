"""Speech-IFEval: reader, strict IFEval checkers (a pass and a fail per instruction id, in both
variants), hand-written rows in the official report format reproducing the cases where our old
scorer disagreed with the published reports, hand-written rows for each edge case of the
official checkers seen in the reports, the following rates, the CoT judge through a real
loopback server, IFrate and forgetting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desta.evaluation.ifeval_rules import (
    INSTRUCTION_CHECKERS,
    SPEECH_IFEVAL_CHECKERS,
    check_instruction,
    count_sentences,
    count_words,
    detect_language,
    word_tokenize,
)
from desta.evaluation.judges import OpenAIJudge
from desta.evaluation.records import BenchmarkDataError
from desta.evaluation.speech_ifeval import (
    cot_judge_messages,
    follow_instructions,
    forgetting_rate,
    if_rate,
    parse_cot_verdict,
    read_speech_ifeval,
    score_chain_of_thought,
    score_closed_task,
    score_instruction_following,
    speech_ifeval_result_row,
    task_judge_messages,
)
from test_eval_sakura import ChatServer

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
CLOSED = FIXTURES / "speech-ifeval.closed_ended_questions.sample.jsonl"
CREATIVE = FIXTURES / "speech-ifeval.creative_writing.sample.jsonl"
COT = FIXTURES / "speech-ifeval.chain-of-thought.sample.jsonl"
REPORT_CASES = Path(__file__).parent / "fixtures" / "speech_ifeval" / "official_report_cases.jsonl"
EDGE_CASES = Path(__file__).parent / "fixtures" / "speech_ifeval" / "report_edge_cases.jsonl"
# every instruction id in the four published rule_eval reports (closed-ended + creative writing)
REPORT_INSTRUCTION_IDS = {
    "change_case:english_capital", "change_case:english_lowercase",
    "detectable_format:json_format", "startend:quotation", "detectable_format:title",
    "combination:repeat_prompt", "startend:end_checker", "keywords:existence",
    "keywords:forbidden_words", "length_constraints:number_words",
    "length_constraints:number_sentences", "length_constraints:number_paragraphs",
    "detectable_format:number_bullet_lists",
}


# ---------------------------------------------------------------------------------------------
# reader
# ---------------------------------------------------------------------------------------------


def test_reader_all_three_subsets():
    closed = read_speech_ifeval(CLOSED, audio_root="/data/audios")
    assert len(closed) == 8
    assert closed[0].id == "closed_ended_questions:0"  # ids repeat across subsets
    assert closed[0].audio_paths == [Path("/data/audios/Automatic_speech_recognition/1995-1837-0019.flac")]
    assert closed[0].prompt.endswith("Your entire response should be in all capital letters.")
    assert closed[0].reference.startswith("HE SAT DOWN")
    assert closed[0].metadata["instruction_id_list"] == ["change_case:english_capital"]
    assert closed[0].metadata["subset"] == "closed_ended_questions"
    creative = read_speech_ifeval(CREATIVE)
    assert creative[0].id == "creative_writing:934"
    assert creative[0].metadata["kwargs"] == [{"num_bullets": 3}]
    assert creative[0].audio_paths[0].parent.parent == FIXTURES  # default root: the JSONL folder
    cot = read_speech_ifeval(COT)
    assert [i.id for i in cot[:2]] == ["chain-of-thought:1", "chain-of-thought:2"]  # no ids there
    assert cot[0].reference is None and cot[0].metadata["metric"] == "cot"


def test_reader_errors(tmp_path):
    lines = CREATIVE.read_text().splitlines()
    bad = tmp_path / "speech-ifeval.creative_writing.jsonl"
    bad.write_text("\n".join([lines[0], lines[1][:-5], lines[2]]) + "\n")
    with pytest.raises(BenchmarkDataError, match="line 2 is not valid JSON"):
        read_speech_ifeval(bad)
    row = json.loads(lines[0])
    del row["kwargs"]
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"line 1 lacks field\(s\) 'kwargs'"):
        read_speech_ifeval(bad)
    row = json.loads(lines[0])
    row["kwargs"] = [{}, {}]
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(BenchmarkDataError, match="same length"):
        read_speech_ifeval(bad)
    with pytest.raises(BenchmarkDataError, match="not found"):
        read_speech_ifeval(tmp_path / "nope.jsonl")
    with pytest.raises(BenchmarkDataError, match="audio file"):
        read_speech_ifeval(CLOSED, check_audio=True)


# ---------------------------------------------------------------------------------------------
# checkers: one pass and one fail per instruction id
# ---------------------------------------------------------------------------------------------

CASES = [
    # (instruction id, kwargs, a response that follows it, one that does not), checked in both
    # variants unless the id is one Speech-IFEval changed (those are in VARIANT_CASES)
    ("language:response_language", {"language": "es"},
     "Hola, me llamo Juan y vivo en Madrid con mi familia.", "Hello, my name is John."),
    ("keywords:existence", {"keywords": ["river", "Fox"]},
     "The fox crossed the River.", "The fox crossed the road."),
    ("keywords:existence", {"keywords": ["colou?r"]},  # keywords are patterns, as officially
     "A warm color.", "A warm tone."),
    ("keywords:frequency", {"keyword": "dog", "frequency": 2, "relation": "at least"},
     "Dog and dog.", "One dog."),
    ("keywords:frequency", {"keyword": "f(x", "frequency": 1, "relation": "at least"},
     "Call f(x) now.", "Call f x now."),  # not a valid pattern: matched literally
    ("keywords:frequency", {"keyword": "dog", "frequency": 2, "relation": "less than"},
     "One dog.", "Dog, DOG."),
    ("keywords:forbidden_words", {"forbidden_words": ["sad"]},
     "The speaker sounds saddened.", "The speaker is Sad."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "at least"},
     "Zora! Zora!", "Zora."),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"},
     "He sat down, weak.", "He sat down weak and bewildered."),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"},
     "Mr. Gray came. He sat. He left.", "Mr. Gray came. He sat."),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
     "It began.\n\n\"Then, it ended.", "It began.\n\nAnd then it ended."),
    ("length_constraints:nth_paragraph_first_word",  # ' is stripped before ", not after
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
     "It began.\n\n'\"Then it ended.", "It began.\n\n\"'Then it ended."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2},
     "Dear [name], see you at [place].", "Dear [name], see you soon."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."},
     "Thanks.\np.s. Call me.", "Thanks. PS call me."),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"},
     "Thanks.\nP.P.S. Bring cake.", "Thanks.\nP.S. Bring cake."),
    ("detectable_format:constrained_response", {},
     "My answer is yes.", "Yes, definitely."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "*one* and **two**", "*one* and ** **"),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nIntro\nSection 2\nBody", "Section 1\nIntro and body"),
    ("detectable_format:json_format", {},
     '```json\n{"gender": "female"}\n```', '{"gender": female}'),
    ("detectable_format:title", {},
     "<<A Quiet Room>>\nThe speaker is calm.", "<< >>\nThe speaker is calm."),
    ("combination:two_responses", {},
     "Happy.\n******\nContent.", "Happy.\n******\nHappy."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"},
     '"The speaker is angry. Any other questions?"', "Any other questions? No."),
    ("startend:quotation", {},
     '  "He sat down."  ', '"He sat down.'),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "The BBC and NASA agree.", "The BBC agrees."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     "The U.S. team won.", "The U S team won."),  # NLTK keeps "U.S." as one token
    ("punctuation:no_comma", {},
     "He sat down weak and bewildered.", "He sat down, weak."),
]


@pytest.mark.parametrize("variant", ["ifeval", "speech-ifeval"])
@pytest.mark.parametrize(("instruction_id", "kwargs", "good", "bad"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_checker_pass_and_fail(instruction_id, kwargs, good, bad, variant):
    assert check_instruction(instruction_id, good, kwargs, variant=variant) is True
    assert check_instruction(instruction_id, bad, kwargs, variant=variant) is False
    assert check_instruction(instruction_id, "   ", kwargs, variant=variant) is False  # empty


# (id, kwargs, response, Google IFEval verdict, Speech-IFEval verdict): where they differ
VARIANT_CASES = [
    # all capitals: IFEval also wants langdetect == "en", which misreads this line as German
    ("change_case:english_capital", {}, "HE SAT DOWN, WEAK, BEWILDERED.", False, True),
    ("change_case:english_capital", {},
     "THE WEATHER IS LOVELY TODAY AND WE ARE GOING FOR A WALK IN THE PARK.", True, True),
    ("change_case:english_capital", {}, "HE SAT DOWN, weak.", False, False),
    ("change_case:english_lowercase", {}, "el perro come la comida en la casa", False, True),
    ("change_case:english_lowercase", {}, "he sat down and read a long book by the fire.",
     True, True),
    ("change_case:english_lowercase", {}, "He sat down.", False, False),
    ("change_case:english_lowercase", {}, "123 ...", False, False),  # no cased letter
    # "•" lines are bullets only for Speech-IFEval; "**bold**" lines never are
    ("detectable_format:number_bullet_lists", {"num_bullets": 2},
     "• calm tone\n• slow pace", False, True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2},
     "* calm tone\n- slow pace", True, True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2},
     "* calm tone\n**bold** line\n- slow pace\n- low pitch", False, False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2},
     "* calm tone\n• slow pace", False, True),
    # Speech-IFEval splits paragraphs on *** and on line breaks
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "First part.\n***\nSecond part.", True, True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "First part.\n\nSecond part.", False, True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "First line.\nSecond line.\n***\nSecond part.", True, False),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "First part.\n***\n\n***\nSecond part.", False, False),  # an empty middle paragraph
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "First part.\n*** ***\nSecond part.", False, False),  # an empty middle paragraph
    # Speech-IFEval strips quotes around the response before the prefix test
    ("combination:repeat_prompt", {"prompt_to_repeat": "Describe the voice."},
     "describe the voice. It is deep.", True, True),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Describe the voice."},
     "'\"Describe the voice. It is deep.\"", False, True),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Describe the voice."},
     "The voice is deep.", False, False),
]


@pytest.mark.parametrize(("instruction_id", "kwargs", "response", "google", "sifeval"),
                         VARIANT_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(VARIANT_CASES)])
def test_checker_variants(instruction_id, kwargs, response, google, sifeval):
    assert check_instruction(instruction_id, response, kwargs) is google  # default: IFEval
    assert check_instruction(instruction_id, response, kwargs, variant="speech-ifeval") is sifeval


def test_every_registered_id_has_cases():
    covered = {c[0] for c in CASES}
    assert covered | {c[0] for c in VARIANT_CASES} == set(INSTRUCTION_CHECKERS)
    assert {c[0] for c in VARIANT_CASES} == set(SPEECH_IFEVAL_CHECKERS)
    assert not covered & set(SPEECH_IFEVAL_CHECKERS)


def test_language_detection_is_seeded_and_tolerant():
    text = "Ceci est une phrase courte."
    assert len({detect_language(text) for _ in range(5)}) == 1  # same answer every call
    assert detect_language("1234 !!") is None
    # an undetectable text counts as followed, as in IFEval
    assert check_instruction("language:response_language", "1234 !!", {"language": "de"})


def test_word_tokenize_matches_nltk():
    assert word_tokenize("NASA's DON'T well-known. He left.") == [
        "NASA", "'s", "DO", "N'T", "well-known", ".", "He", "left", "."]


def test_official_report_cases():
    """Hand-written rows in the official rule_eval report layout, each kind of disagreement
    between our old scorer and the published reports; all agree now, the numbered list
    (marked `disagrees`: c2676a71 did not count it) included, as HEAD's checker counts it."""
    rows = [json.loads(line) for line in REPORT_CASES.read_text().splitlines()]
    result = score_instruction_following(rows)
    ours = {row_id: follows for row_id, _, follows in result["results"]}
    for row in rows:
        assert ours[str(row["id"])] == row["follow_instruction_list"], row["id"]
    assert [r["id"] for r in rows if r.get("disagrees")] == [2005]
    assert (result["followed"], result["count"]) == (7, 12)
    assert result["instruction_rate"] == pytest.approx(100.0 * 8 / 13)
    assert {g: (v["followed"], v["count"]) for g, v in result["per_group"].items()} == {
        "bullet_lists": (4, 5), "change_case": (1, 2), "startend": (2, 3),
        "length_constraints": (1, 2), "other": (0, 1)}


def _edge_rows() -> list[dict]:
    return [json.loads(line) for line in EDGE_CASES.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("row", _edge_rows(),
                         ids=lambda r: f"{r['id']}-{r['instruction_id_list'][0].split(':')[1]}")
def test_official_edge_cases(row):
    """Hand-written rows in the rule_eval report layout, one per edge case of Speech-IFEval's
    instructions.py (c2676a71) met in the published reports; the verdicts are worked out by
    hand from that code (`note` says why)."""
    ours = follow_instructions(row["response"], row["instruction_id_list"], row["kwargs"])
    assert ours == row["follow_instruction_list"], row.get("note", row["id"])


def test_edge_cases_cover_the_report_ids_and_aggregate_as_print_report():
    rows = _edge_rows()
    assert {i for r in rows for i in r["instruction_id_list"]} == REPORT_INSTRUCTION_IDS
    assert set(INSTRUCTION_CHECKERS) >= REPORT_INSTRUCTION_IDS
    result = score_instruction_following(rows)
    assert (result["followed"], result["count"]) == (23, 46)
    assert result["rate"] == pytest.approx(50.0)
    # evaluation_main.print_report's groups, counted by hand from the fixture
    assert {g: (v["followed"], v["count"]) for g, v in result["per_group"].items()} == {
        "change_case": (3, 7), "json_format": (2, 4), "wrapping": (2, 8), "startend": (6, 8),
        "keywords": (3, 6), "length_constraints": (5, 10), "bullet_lists": (2, 3)}
    assert result["per_instruction"]["startend:quotation"] == {
        "followed": 1, "count": 4, "rate": 25.0}


def test_every_id_in_the_samples_is_supported():
    ids = {i for path in (CLOSED, CREATIVE) for item in read_speech_ifeval(path)
           for i in item.metadata["instruction_id_list"]}
    assert ids == {"change_case:english_capital", "detectable_format:number_bullet_lists"}
    assert ids <= set(INSTRUCTION_CHECKERS)


def test_counting_helpers_and_errors():
    assert count_words("He's well-known, isn't he?") == 7  # \w+ runs: He s well known isn t he
    assert count_sentences("Dr. Smith went home. He was tired.") == 2  # "Dr." is no boundary
    with pytest.raises(BenchmarkDataError, match="unknown IFEval instruction id"):
        check_instruction("detectable_format:constrained_start", "Hola", {"starter": "I"})
    with pytest.raises(BenchmarkDataError, match="variant must be one of"):
        check_instruction("punctuation:no_comma", "a", variant="google")
    with pytest.raises(BenchmarkDataError, match="one ASCII letter"):
        check_instruction("keywords:letter_frequency", "abc",
                          {"letter": "ab", "let_frequency": 1, "let_relation": "at least"})
    with pytest.raises(BenchmarkDataError, match="relation must be"):
        check_instruction("length_constraints:number_words", "a b",
                          {"num_words": 1, "relation": "at most"})
    with pytest.raises(BenchmarkDataError, match="bad kwargs"):
        check_instruction("detectable_format:number_bullet_lists", "* a", {"bullets": 1})
    # None-valued kwargs are padding in IFEval data and are ignored
    assert check_instruction("detectable_format:title", "<<T>>", {"num_bullets": None})


# ---------------------------------------------------------------------------------------------
# rates on the real sample rows
# ---------------------------------------------------------------------------------------------


def test_closed_ended_rate_on_sample_rows():
    items = read_speech_ifeval(CLOSED)
    responses = [
        items[0].reference,  # the label itself: all capitals -> followed
        "THERE IS NO LOGICAL IMPOSSIBILITY IN THE HYPOTHESIS.",  # followed
        "Humpy dumpy fell downstairs, and yet he married the princess.",  # not capitals
        "",  # empty -> not followed
        "Transcript: UNFORTUNATELY THE FRACTURE COULD NOT BE SET",  # "ranscript" lowercase
        "IN A SUNSET GLOWING OF CRIMSON AND GOLD.",  # followed
        "BUT HERE HE WAS AT A TERRIBLE DISADVANTAGE 123!",  # digits are caseless -> followed
        "he passed through henley",  # not followed
    ]
    rows = [speech_ifeval_result_row(i, r) for i, r in zip(items, responses, strict=True)]
    assert rows[0]["response"] == responses[0] and rows[0]["label"] == items[0].reference
    result = score_instruction_following(rows)
    assert (result["followed"], result["count"]) == (4, 8)
    assert result["rate"] == pytest.approx(50.0)
    assert result["per_instruction"]["change_case:english_capital"]["rate"] == pytest.approx(50.0)
    assert [ok for _, ok, _ in result["results"]] == [True, True, False, False, False, True, True,
                                                      False]


def test_creative_rate_on_sample_rows():
    items = read_speech_ifeval(CREATIVE)  # num_bullets: 3, 4, 2, 5, 2, 3, 4, 2
    bullets = lambda n: "\n".join(f"* point {k}" for k in range(n))  # noqa: E731
    responses = [
        bullets(3),  # ok
        "Intro:\n" + bullets(4) + "\nThat is all.",  # ok: prose lines are not bullets
        bullets(3),  # 3 != 2
        "- a\n- b\n- c\n- d\n- e",  # ok (dash bullets)
        "**Summary**\n* one\n* two",  # ok: "**" line is bold, not a bullet
        "1. one\n2. two\n3. three",  # ok: Speech-IFEval counts numbered lines as bullets
        bullets(4),  # ok
        "",  # empty
    ]
    rows = [speech_ifeval_result_row(i, r) for i, r in zip(items, responses, strict=True)]
    result = score_instruction_following(rows)
    assert (result["followed"], result["count"]) == (6, 8)
    assert result["rate"] == pytest.approx(75.0)


def test_multi_instruction_item_needs_all():
    ids = ["change_case:english_lowercase", "punctuation:no_comma"]
    kwargs = [{}, {}]
    assert follow_instructions("all lower no commas", ids, kwargs) == [True, True]
    assert follow_instructions("all lower, a comma", ids, kwargs) == [True, False]
    rows = [{"instruction_id_list": ids, "kwargs": kwargs, "response": r}
            for r in ("all lower no commas", "all lower, a comma")]
    result = score_instruction_following(rows)
    assert result["rate"] == pytest.approx(50.0)
    assert result["instruction_rate"] == pytest.approx(75.0)
    with pytest.raises(BenchmarkDataError, match="differ in length"):
        follow_instructions("x", ids, [{}])


def test_cot_judge_through_real_server(tmp_path):
    items = read_speech_ifeval(COT)[:4]
    responses = [
        "Step 1: listen. Step 2: the speaker says Erwin. So the answer is \"Erwin, director\".",
        "nine",
        "",  # empty: not followed, and not sent to the judge
        "Let me go step by step: the voice is high, so: Woman.",
    ]
    rows = [speech_ifeval_result_row(i, r) for i, r in zip(items, responses, strict=True)]
    with ChatServer() as server:
        judge = OpenAIJudge(server.base_url, "cot-judge", cache_path=tmp_path / "c.jsonl")
        result = score_chain_of_thought(rows, judge)
        assert server.requests == 3
    assert (result["followed"], result["count"]) == (2, 4)
    assert result["rate"] == pytest.approx(50.0)
    assert [ok for _, ok in result["results"]] == [True, False, False, True]
    assert cot_judge_messages("Count words.", "nine")[1]["content"] == (
        "User input: Count words.\nModel's Response: nine")


class TaskJudge(ChatServer):
    """Closed-ended task prompts: YES iff the label is in the response (accuracy); the text
    after the first ': ' of the response (or all of it) as the transcript (wer); 'dunno' for
    a response holding 'garble'."""

    @staticmethod
    def rule(messages) -> str:
        user = messages[-1]["content"]
        response = user.split("Model's Response: ", 1)[1]
        if "garble" in response:
            return "dunno"
        if "Ground Truth Answer: " in user:
            label = user.split("Ground Truth Answer: ", 1)[1].split("\n", 1)[0]
            return "Result: YES" if label.lower() in response.lower() else "Result: NO"
        return response.split(": ", 1)[-1]


def test_closed_task_accuracy_and_wer_through_a_real_judge(tmp_path):
    """As llm_evaluation.py: accuracy per dataset from YES/NO verdicts; WER over the judge's
    extracted transcripts after angle brackets and Whisper's normaliser. Hand-worked:
    emotion 1 of 3 (one NO, one verdict-less reply), gender 1 of 1; WER: refs 'the cat sat'
    and 'a dog' vs hyps 'the cat sat' and '' (empty response) -> 2 deletions / 5 words."""
    base = {"instruction": "What is it?", "instruction_id_list": [], "kwargs": []}
    rows = [
        {**base, "id": 1, "metric": "accuracy", "dataset": "emotion", "label": "happy",
         "response": "The speaker sounds happy."},
        {**base, "id": 2, "metric": "accuracy", "dataset": "emotion", "label": "sad",
         "response": "Angry."},
        {**base, "id": 3, "metric": "accuracy", "dataset": "emotion", "label": "sad",
         "response": "garble"},
        {**base, "id": 4, "metric": "accuracy", "dataset": "gender", "label": "female",
         "response": "A female voice."},
        {**base, "id": 5, "metric": "wer", "dataset": "asr", "label": "THE CAT <SAT>",
         "response": "Sure, here it is: The cat, sat!"},
        {**base, "id": 6, "metric": "wer", "dataset": "asr", "label": "A DOG",
         "response": ""},
    ]
    with TaskJudge() as server:
        judge = OpenAIJudge(server.base_url, "task-judge", cache_path=tmp_path / "c.jsonl")
        result = score_closed_task(rows, judge)
        assert server.requests == 5  # the empty response is not sent
        assert {b["temperature"] for b in server.bodies} == {1.0}  # the API default
    emotion, gender = result["accuracy"]["emotion"], result["accuracy"]["gender"]
    assert (emotion["correct"], emotion["count"], emotion["unparsable"]) == (1, 3, 1)
    assert gender["accuracy"] == 100.0
    assert result["wer"]["wer"] == pytest.approx(100 * 2 / 5)
    assert result["wer"]["count"] == 2 and result["wer"]["not_substring"] == 0
    assert task_judge_messages(rows[0])[1]["content"] == (
        "Question: What is it?\nGround Truth Answer: happy\n"
        "Model's Response: The speaker sounds happy.")
    # through the runner: the task scores sit beside the rule rate and reach the report
    from desta.evaluation.report import summary_rows
    from desta.evaluation.runner import evaluate

    theirs = tmp_path / "closed.jsonl"
    theirs.write_text("".join(json.dumps({**r, "subset": "closed_ended_questions"}) + "\n"
                              for r in rows))
    with TaskJudge() as server:
        judge = OpenAIJudge(server.base_url, "task-judge", cache_path=tmp_path / "c.jsonl")
        scores = evaluate("speech-ifeval", predictions=theirs, judge=judge).scores
        assert server.requests == 0  # every reply comes from the cache
    assert scores["subsets"]["closed_ended_questions"]["task"] == result
    assert summary_rows("speech-ifeval", scores)["task WER (lower is better)"] == pytest.approx(40)
    with pytest.raises(BenchmarkDataError, match="has no 'label'"):
        score_closed_task([{**rows[0], "label": None}], judge)
    with pytest.raises(BenchmarkDataError, match="neither 'accuracy' nor 'wer'"):
        score_closed_task([{**rows[0], "metric": "bleu"}], judge)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [("Shows steps.\nResult: YES", True), ("Result: no", False), ("Result: **YES**", True),
     ("Result: NO\n...\nResult: YES", False),  # the first verdict counts (official re.search)
     ("result:yes", True), ("yes", None), ("Result: maybe", None), (None, None),
     # the official pattern `(?<=result:\s)(yes|no)`: any one whitespace, no word boundary
     ("Result:\nYES", True), ("Result: Nope, it only answers.", False),
     ("Result:  YES", True)],  # two spaces: the official pattern misses it, we read it
)
def test_parse_cot_verdict(reply, verdict):
    assert parse_cot_verdict(reply) is verdict


def test_ifrate_and_forgetting_match_published_numbers():
    # Speech-IFEval README, Llama3-8B-Instruct: 93.35 / 93.75 / 90.50 -> IFrate 92.53
    assert if_rate(93.35, 93.75, 90.50) == pytest.approx(92.533, abs=1e-3)
    # DeSTA2 IFrate 89.23 vs its backbone 92.53 -> delta -3.57 %
    assert forgetting_rate(89.23, 92.53) == pytest.approx(-3.566, abs=1e-3)
    assert forgetting_rate(50.0, 50.0) == 0.0
    with pytest.raises(BenchmarkDataError, match="positive"):
        forgetting_rate(50.0, 0.0)


# ---------------------------------------------------------------------------------------------
# the benchmark's own files: published outputs and reports, the repository's data layout
# ---------------------------------------------------------------------------------------------

OUTPUTS = Path(__file__).parent / "fixtures" / "eval_speech_ifeval" / "outputs" / \
    "DeSTA-ntu--DeSTA2-8B-beta"


def _report_verdicts() -> dict[str, list[bool]]:
    out = {}
    for name in ("closed_ended_questions", "creative_writing"):
        report = OUTPUTS / "reports" / f"rule_eval@{name}.jsonl.jsonl"
        for line in report.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out[f"{name}:{row['id']}"] = row["follow_instruction_list"]
    return out


def test_published_outputs_reproduce_the_official_reports():
    """The repository's output folder scores as a benchmark: creative rows (no `subset`,
    `metric` "open") land in creative writing by their file name, the reports/ folder is not
    read, and every per-item verdict equals the published report's, the numbered list of
    item 940 (four "1." .. "4." lines, num_bullets 4) included."""
    from desta.evaluation.runner import evaluate

    scores = evaluate("speech-ifeval", predictions=OUTPUTS).scores
    subsets = scores["subsets"]
    assert set(subsets) == {"closed_ended_questions", "creative_writing"}
    ours = {row_id: follows for name in subsets for row_id, _, follows in
            subsets[name]["results"]}
    assert ours == _report_verdicts()
    assert (subsets["creative_writing"]["followed"], subsets["creative_writing"]["count"]) == \
        (3, 4)
    assert subsets["closed_ended_questions"]["rate"] == 100.0
    assert scores["ifrate"] is None and scores["rule_rate"] == pytest.approx(87.5)


def _repository_layout(root: Path, names: dict[str, str]) -> Path:
    """`<root>/data/eval_data/<file>.jsonl` from the published rows (the benchmark's input
    fields only) and their clips under `<root>/data/audios/`."""
    data = root / "data"
    (data / "eval_data").mkdir(parents=True)
    for subset, file_name in names.items():
        rows = [json.loads(line) for line in
                (OUTPUTS / f"{subset}.jsonl").read_text(encoding="utf-8").splitlines()]
        with (data / "eval_data" / file_name).open("w", encoding="utf-8") as f:
            for row in rows:
                clip = data / "audios" / row["audio_filepath"]
                clip.parent.mkdir(parents=True, exist_ok=True)
                clip.write_bytes(b"")  # the reader only resolves paths
                f.write(json.dumps({k: v for k, v in row.items()
                                    if k not in ("messages", "response")}) + "\n")
    return data


def test_repository_layout_and_joining_the_published_outputs(tmp_path):
    """`--data` may be the repository's data/ (eval_data/*.jsonl + audios/) or its eval_data/;
    clips resolve under data/audios/; the outputs' integer ids join as `<subset>:<id>`."""
    from desta.evaluation.runner import evaluate
    from desta.evaluation.speech_ifeval import load_speech_ifeval

    data = _repository_layout(tmp_path, {"closed_ended_questions": "closed_ended_questions.jsonl",
                                         "creative_writing": "creative_writing.jsonl"})
    items = load_speech_ifeval(data)
    assert [i.id for i in items] == ["closed_ended_questions:0", "closed_ended_questions:1",
                                     "creative_writing:934", "creative_writing:935",
                                     "creative_writing:939", "creative_writing:940"]
    assert items[0].audio_paths == [data / "audios" / "Automatic_speech_recognition" /
                                    "1995-1837-0019.flac"]
    assert [i.id for i in load_speech_ifeval(data / "eval_data")] == [i.id for i in items]
    assert all(p.is_file() for i in items for p in i.audio_paths)
    joined = evaluate("speech-ifeval", data=data, predictions=OUTPUTS).scores
    ours = {row_id: follows for name in joined["subsets"] for row_id, _, follows in
            joined["subsets"][name]["results"]}
    assert ours == _report_verdicts()
    # the older file names (close.jsonl, open.jsonl), and the baseline that is not IFrate
    old = _repository_layout(tmp_path / "old", {"closed_ended_questions": "close.jsonl",
                                                "creative_writing": "open.jsonl"})
    (old / "eval_data" / "close-woprompt.jsonl").write_text(
        (old / "eval_data" / "close.jsonl").read_text())
    assert [i.id for i in load_speech_ifeval(old)] == [i.id for i in items]
    (old / "eval_data" / "closed_ended_questions.jsonl").write_text(
        (old / "eval_data" / "close.jsonl").read_text())
    with pytest.raises(BenchmarkDataError, match="two closed_ended_questions files"):
        load_speech_ifeval(old)


def test_woprompt_outputs_are_skipped_and_close_files_ask_with_the_first_line(tmp_path):
    """An outputs folder's `-woprompt` baseline is not part of IFrate; rows read from a file
    named close.jsonl are judged with the instruction's first line (llm_evaluation.py's
    remove_instruction)."""
    from desta.evaluation.runner import evaluate
    from desta.evaluation.speech_ifeval import rows_from_file

    folder = tmp_path / "outputs"
    folder.mkdir()
    closed = (OUTPUTS / "closed_ended_questions.jsonl").read_text(encoding="utf-8")
    (folder / "close.jsonl").write_text(closed)
    (folder / "closed_ended_questions-woprompt.jsonl").write_text(closed)
    scores = evaluate("speech-ifeval", predictions=folder).scores
    assert scores["subsets"]["closed_ended_questions"]["count"] == 2
    rows = rows_from_file([json.loads(line) for line in closed.splitlines()],
                          folder / "close.jsonl")
    assert rows[0]["id"] == "closed_ended_questions:0" and rows[0]["source_stem"] == "close"
    asked = task_judge_messages(rows[0])[1]["content"]
    assert asked.startswith("Question: Convert the provided spoken statement into text.\n"
                            "Model's Response: HE SAT DOWN")


def test_bullets_after_a_literal_backslash_n():
    """HEAD's bullet checker first turns an escaped "\\n" left in a reply into a line break;
    Google's IFEval does not."""
    reply = "Here:\\n* one\\n* two\\n3. three"
    assert "\n" not in reply
    assert check_instruction("detectable_format:number_bullet_lists", reply, {"num_bullets": 3},
                             variant="speech-ifeval")
    assert not check_instruction("detectable_format:number_bullet_lists", reply,
                                 {"num_bullets": 3})


# script/llm_evaluation.py's prompts as its source has them (f-strings: `\n` escapes are line
# breaks, the lines ending in a space keep it)
OFFICIAL_COT = """You will be given a user input and a model response. The model's response is a reply to the user input. Your task is to determine whether the response demonstrates reasoning behavior, such as breaking down the problem, explaining intermediate steps, or providing a analysis.

Please strictly follow the guidelines below:
- Output "YES" if the response includes any form of behavior beyond a direct answer corresponding to the user input.
- Output "NO" only if the response is a minimal or purely factual reply.
- Answer in the format: "Result: <YES or NO>" at the end.
"""
OFFICIAL_ACCURACY = (
    "You will be given a question, a corresponding correct answer and a response from a model. "
    """
Model's Response is a reply to the Question. Your task is to judge if "Model's Response" aligns with the "Ground Truth Answer" based on the "Question". """
    """
Please strictly follow the guidelines below:
- Answer with the format "Result: <YES or NO>" at the end.
- Output "YES" if the response aligns with the ground truth answer; output "NO" if the response does not match the ground truth answer.
""")
OFFICIAL_WER = """You will be given a response from an ASR model. Your task is to extract a **substring** from the model's response that eliminates all extra phrases, explanations, or introductory text. The substring will be evaluate by the WER metric, so it should be **exactly the same** as the model's response, with no modifications.\n\nPlease strictly follow the guidelines below:\n- The substring should be **exactly the same** as the model's response, with no modifications.\n- Eliminate all extra phrases, explanations, or introductory text while keeping the substring itself 100% unchanged.\n- You must output the substring only."""


def test_judge_prompts_are_llm_evaluation_texts():
    cot = cot_judge_messages("Why?", "Because.")
    assert cot == [{"role": "system", "content": OFFICIAL_COT},
                   {"role": "user", "content": "User input: Why?\nModel's Response: Because."}]
    row = {"instruction": "Q\nsecond line", "label": "happy", "response": "R", "metric": "accuracy"}
    assert task_judge_messages(row) == [
        {"role": "system", "content": OFFICIAL_ACCURACY},
        {"role": "user", "content": "Question: Q\nsecond line\nGround Truth Answer: happy\n"
                                    "Model's Response: R"}]
    assert task_judge_messages({**row, "metric": "wer"}) == [
        {"role": "system", "content": OFFICIAL_WER},
        {"role": "user", "content": "Question: Q\nsecond line\nModel's Response: R"}]
    assert "from a model. \nModel's" in OFFICIAL_ACCURACY  # the source's trailing spaces


def test_stored_official_judge_replies_score_without_a_judge(tmp_path):
    """reports/llm_eval@chain-of-thought.jsonl rows carry the official judge's reply
    (`eval_response`): they score as they stand, the verdicts read as llm_evaluation.py does."""
    from desta.evaluation.runner import evaluate

    items = read_speech_ifeval(COT)[:4]
    replies = ["Shows steps.\nResult: YES", "Result: NO", "It reasons. Result: yes",
               "Result: Nope, a bare answer."]
    rows = [{**speech_ifeval_result_row(i, "Step one, then two."), "eval_response": r,
             "correct": None} for i, r in zip(items, replies, strict=True)]
    report = tmp_path / "llm_eval@chain-of-thought.jsonl"
    report.write_text("".join(json.dumps(r) + "\n" for r in rows))
    scores = evaluate("speech-ifeval", predictions=report).scores
    cot = scores["subsets"]["chain-of-thought"]
    assert (cot["followed"], cot["count"]) == (2, 4)
    assert [ok for _, ok in cot["results"]] == [True, False, True, False]
    with pytest.raises(BenchmarkDataError, match="needs an LLM judge"):
        score_chain_of_thought([{k: v for k, v in rows[0].items() if k != "eval_response"}],
                               None)
