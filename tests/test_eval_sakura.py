"""SAKURA: reader, inline options, rule-based matching, scoring, and the LLM judge against a real
loopback HTTP server speaking the OpenAI chat-completions protocol."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from desta.evaluation.judges import JudgeError, JudgeUnreachableError, OpenAIJudge, cache_key
from desta.evaluation.records import BenchmarkDataError, BenchmarkFileNotFoundError
from desta.evaluation.sakura import (
    CHANCE_LEVELS,
    match_option,
    parse_answer,
    parse_options,
    parse_sakura_verdict,
    read_sakura,
    sakura_judge_messages,
    sakura_result_row,
    score_sakura,
)

FIXTURES = Path(__file__).parent / "fixtures" / "eval" / "sakura"


# ---------------------------------------------------------------------------------------------
# a real OpenAI-compatible server on loopback, answering by a deterministic rule
# ---------------------------------------------------------------------------------------------


class ChatServer:
    """`/v1/chat/completions` on 127.0.0.1 in a thread. Verdicts follow rules over the prompt:
    SAKURA prompts -> correct iff the response holds the ground-truth option text; CoT prompts ->
    YES iff the reply mentions "step". Model "flaky" fails its first request with HTTP 500;
    model "broken" always answers HTTP 400. `requests` counts the POSTs received, `bodies`
    keeps their JSON bodies, `max_in_flight` the most requests handled at once."""

    def __init__(self) -> None:
        self.requests = 0
        self.bodies: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.flaky_failed = False
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds each answer takes (to see requests overlap)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    server.bodies.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    self._answer(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, body):
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "not found"}})
                if body["model"] == "broken":
                    return self._send(400, {"error": {"message": "bad model"}})
                if body["model"] == "flaky" and not server.flaky_failed:
                    server.flaky_failed = True
                    return self._send(500, {"error": {"message": "try again"}})
                reply = server.rule(body["messages"])
                self._send(200, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}],
                })

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def rule(messages) -> str:
        user = messages[-1]["content"]
        if "Model generated response: " in user:  # SAKURA's llm_judge.py prompt
            # the last "Ground truth answer:" line is the row's (the ones above are examples)
            truth = re.findall(r"Ground truth answer: \([a-z]\) (.*)", user)[-1].strip()
            response = re.search(r"Model generated response: (.*)\n\n    Carefully", user,
                                 re.S).group(1)
            verdict = "correct" if truth.lower() in response.lower() else "incorrect"
            return f"Explanation: rule-based stand-in.\nJudgement: {verdict}"
        reply = user.split("Model's Response:", 1)[1]  # Speech-IFEval's CoT prompt
        return "It explains.\nResult: YES" if "step" in reply.lower() else "Result: NO"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    with ChatServer() as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# reader
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sakura_root(tmp_path) -> Path:
    """The fixture tracks (real metadata rows) with short real WAV files written beside them."""
    root = tmp_path / "sakura"
    shutil.copytree(FIXTURES, root)
    rng = np.random.default_rng(0)
    for csv_path in root.glob("*/metadata.csv"):
        (csv_path.parent / "audio").mkdir()
        for line in csv_path.read_text().splitlines()[1:]:
            sf.write(csv_path.parent / "audio" / line.split(",")[0],
                     0.1 * rng.standard_normal(1600).astype(np.float32), 16000)
    return root


def test_reader_two_items_per_row(sakura_root):
    items = read_sakura(sakura_root)
    assert len(items) == 3 * 3 * 2  # 3 tracks x 3 rows x (single, multi)
    assert {i.metadata["track"] for i in items} == {"Gender", "Animal", "Emotion"}
    first = items[0]  # official track order: Gender first
    assert first.id == "Gender/en_test_0_common_voice_en_18758345.wav/single"
    assert first.prompt == "What is the speaker's gender in this audio? (a) Male (b) Female"
    assert first.reference == "(b) Female"
    assert first.metadata["options"] == {"a": "Male", "b": "Female"}
    assert first.metadata["answer_letter"] == "b"
    assert first.audio_paths[0] == sakura_root / "Gender" / "audio" / first.metadata["file"]
    multi = items[1]
    assert multi.metadata["hop"] == "multi" and multi.reference == "(b) Rosa Parks"
    assert read_sakura(sakura_root, tracks=["Animal"])[0].metadata["track"] == "Animal"


def test_reader_errors(sakura_root, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkFileNotFoundError, match="no SAKURA track"):
        read_sakura(tmp_path / "empty")
    with pytest.raises(BenchmarkFileNotFoundError, match="root folder not found"):
        read_sakura(tmp_path / "absent")
    with pytest.raises(BenchmarkFileNotFoundError, match="Language"):
        read_sakura(sakura_root, tracks=["Language"])
    (sakura_root / "Animal" / "audio" / "sheep50.wav").unlink()
    with pytest.raises(BenchmarkFileNotFoundError, match="sheep50.wav"):
        read_sakura(sakura_root)
    assert len(read_sakura(sakura_root, check_audio=False)) == 18
    csv_path = sakura_root / "Gender" / "metadata.csv"
    csv_path.write_text(csv_path.read_text().replace("multi_answer", "multi_label"))
    with pytest.raises(BenchmarkDataError, match="multi_answer"):
        read_sakura(sakura_root, tracks=["Gender"], check_audio=False)
    csv_path.write_text(
        "file,attribute_label,single_instruction,single_answer,multi_instruction,multi_answer\n"
        "x.wav,male,Gender? (a) Male (b) Female,(c) Male,Who? (a) X (b) Y,(a) X\n")
    with pytest.raises(BenchmarkDataError, match=r"line 2 \(single-hop\).*\(c\)"):
        read_sakura(sakura_root, tracks=["Gender"], check_audio=False)


def test_parse_options_real_rows():
    emotion = ("What facial expression most aligns with the emotion in the recording? (a) Eyes "
               "gazing downward with trembling lips (b) Raised eyebrows with a scowl (c) Wide-open "
               "eyes with raised eyebrows and slightly parted lips. (d) A wrinkled nose and raised "
               "upper lip")
    assert parse_options(emotion) == {
        "a": "Eyes gazing downward with trembling lips",
        "b": "Raised eyebrows with a scowl",
        "c": "Wide-open eyes with raised eyebrows and slightly parted lips.",
        "d": "A wrinkled nose and raised upper lip",
    }
    assert parse_answer("(b) Raised eyebrows with a scowl") == ("b", "Raised eyebrows with a scowl")
    with pytest.raises(BenchmarkDataError, match="no inline options"):
        parse_options("What is the gender?")
    with pytest.raises(BenchmarkDataError, match="not of the form"):
        parse_answer("Female")


# ---------------------------------------------------------------------------------------------
# rule-based option matching
# ---------------------------------------------------------------------------------------------

GENDER = {"a": "Male", "b": "Female"}
ANIMAL = {"a": "hen", "b": "sheep", "c": "crow", "d": "frog"}


@pytest.mark.parametrize(
    ("response", "options", "expected"),
    [
        ("(b)", GENDER, "b"),
        ("b) Female", GENDER, "b"),
        ("Answer: B", GENDER, "b"),
        ("(B) FEMALE", GENDER, "b"),
        ("The speaker is female.", GENDER, "b"),  # "female" does not also count as "male"
        ("The speaker is male.", GENDER, "a"),
        ("Male or female, hard to say.", GENDER, None),  # two options -> unparsable
        ("(a) Female", GENDER, None),  # letter and text disagree -> ambiguous
        ("", GENDER, None),
        ("I cannot tell from this recording.", GENDER, None),
        ("It sounds like a sheep.", ANIMAL, "b"),  # the article "a" is not option (a)
        ("The answer is a sheep", ANIMAL, "b"),
        ("The answer is (b) sheep.", ANIMAL, "b"),
        ("It's a sheep, not a crow.", ANIMAL, None),  # mentions two options
        ("(a) hen (b) sheep (c) crow (d) frog", ANIMAL, None),
        ("Option C.", ANIMAL, "c"),
        ("I think it is a frog!", ANIMAL, "d"),
        ("Sheeps everywhere", ANIMAL, None),  # not the whole word
    ],
)
def test_match_option(response, options, expected):
    assert match_option(response, options) == expected


def test_match_option_long_texts_and_quotes():
    options = parse_options(
        "Which sentence best reflects the same emotion identified in the audio? (a) I can\u2019t "
        "believe this is happening, I\u2019m so furious! (b) I just can\u2019t stop thinking about "
        "all those bad memories. (c) I\u2019m really scared about what might happen next. (d) I "
        "can\u2019t stop smiling, everything feels so right.")
    assert match_option("I can't stop smiling, everything feels so right", options) == "d"
    # a longer option containing a shorter one counts once
    assert match_option("Fast walking.", {"a": "Walking", "b": "Fast walking"}) == "b"
    assert match_option("Walking.", {"a": "Walking", "b": "Fast walking"}) == "a"


def _rows(sakura_root):
    items = read_sakura(sakura_root)
    by_id = {i.id: i for i in items}
    responses = {
        # Gender: single 2/3 (one unparsable), multi 1/3
        "Gender/en_test_0_common_voice_en_18758345.wav/single": "The speaker is female.",
        "Gender/en_test_0_common_voice_en_19031181.wav/single": "(a) Male",
        "Gender/en_test_0_common_voice_en_19938518.wav/single": "Either male or female.",
        "Gender/en_test_0_common_voice_en_18758345.wav/multi": "Rosa Parks",
        "Gender/en_test_0_common_voice_en_19031181.wav/multi": "Baju Kurung",
        "Gender/en_test_0_common_voice_en_19938518.wav/multi": "",
        # Animal: single 3/3, multi 0/3
        "Animal/sheep27.wav/single": "It is a sheep.",
        "Animal/sheep50.wav/single": "Answer: A",
        "Animal/sheep38.wav/single": "(b)",
        "Animal/sheep27.wav/multi": "(a) Omnivore",
        "Animal/sheep50.wav/multi": "Swimming",
        "Animal/sheep38.wav/multi": "no idea",
    }
    return [sakura_result_row(by_id[i], r) for i, r in responses.items()]


def test_score_rule_per_track_and_hop(sakura_root):
    result = score_sakura(_rows(sakura_root))
    gender, animal = result["tracks"]["Gender"], result["tracks"]["Animal"]
    assert (gender["single"]["correct"], gender["single"]["count"]) == (2, 3)
    assert gender["single"]["unparsable"] == 1
    assert (gender["multi"]["correct"], gender["multi"]["unparsable"]) == (1, 1)
    assert (animal["single"]["correct"], animal["multi"]["correct"]) == (3, 0)
    assert animal["multi"]["unparsable"] == 1
    assert gender["chance"] == 50.0 and animal["chance"] == 25.0 == CHANCE_LEVELS["Emotion"]
    assert result["single"]["accuracy"] == pytest.approx(500 / 6)
    assert result["multi"]["accuracy"] == pytest.approx(100 / 6)
    assert result["total"]["correct"] == 6 and result["total"]["count"] == 12
    # mean of the four cells: (66.67 + 33.33 + 100 + 0) / 4
    assert result["average"] == pytest.approx(50.0)


def test_score_errors(sakura_root):
    with pytest.raises(BenchmarkDataError, match="needs a judge"):
        score_sakura(_rows(sakura_root), method="judge")
    with pytest.raises(BenchmarkDataError, match="'response'"):
        score_sakura([{"track": "Gender", "hop": "single", "instruction": "x", "answer": "(a) x"}])


# ---------------------------------------------------------------------------------------------
# LLM judge
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        # calculate_acc.py: `Judgement` (as llm_judge.py's pattern cuts it) .lower().strip()
        # must be exactly "correct" / "incorrect"; anything else is invalid (counted wrong)
        ("Explanation: picks Paris.\nJudgement: correct", True),
        ("Explanation: picks London.\nJudgement: incorrect", False),
        ("Explanation: x\nJudgement: Correct \n", True),
        ("Explanation: a\n\nb\nJudgement: correct\n\nMore text.", True),
        ('Explanation: x\nJudgement: "correct"', None),  # the prompt's own quotes: invalid
        ("Explanation: x\nJudgement: **Incorrect**", None),
        ("Explanation: x\nJudgement: correct.", None),
        ("Explanation: x\nJudgement: correct\nbecause it names Paris.", None),
        ("Explanation: x\nJudgment: correct", None),  # the pattern wants "Judgement: "
        ("Judgement: correct", None),  # no "Explanation: " before it
        ("I think it is right.", None),
        ("", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_sakura_verdict(reply) is verdict


# llm_judge.py's template as its source has it: a triple-quoted string inside `if __name__`,
# every line indented by four spaces (the blank line before "Now here" too, written `    \n`
# here so the file has no trailing whitespace)
OFFICIAL_USER_TEMPLATE = '''
    You will be given a question with list of possible options, a ground truth answer and a model generated response. Determine whether the model generated response is correct based on the following criteria:
    1. Since there is one and only one corect answer, it should be judged incorrect if the model do not choose any option from the option list or it choose more than one option.
    2. If the model choose one option from the option list, it should be judged correct if the chosen option aligns with the ground truth answer, otherwise it should be judged incorrect.
    3. Read the question, options, ground truth answer and model generated response carefully before making a decision.

    Considering the following examples:
    Question: What is the capital of France? (a) Paris (b) London (c) Berlin (d) Madrid
    Ground truth answer: (a) Paris
    If the model generated response is: "The capital of France is Tokyo.", it should be judged incorrect since it does not choose any option from the option list.
    If the model generated response is: "The capital of France is Paris and London.", it should be judged incorrect since it chooses more than one option from the option list.
    If the model generated response is: "The capital of France is London.", it should be judged incorrect since it chooses one option from the option list but the chosen option does not align with the ground truth answer.
    If the model generated response is: "The capital of France is Paris.", it should be judged correct since it chooses one option from the option list and the chosen option aligns with the ground truth answer.
    Another Question: What is the underlying emotion of the speaker? (a) Happy (b) Sad (c) Angry (d) Neutral
    Ground truth answer: (a) Happy
    If the model generated response is: "The speaker is happy.", it should be judged correct since it chooses one option from the option list and the chosen option aligns with the ground truth answer.
    If the model generated response is: "The speaker expresses happiness.", it should be judged correct since "happiness" aligns with the ground truth answer "happy", and they are just different part of speech of the same word.
    If the model generated response is: "Happiness," it should be judged correct since it is also a valid derivative of the ground truth answer "happy".
    \n    Now here is the question and the model generated response for you to judge:
    Question: [QUESTION]
    Ground truth answer: [GROUND_TRUTH_ANSWER]
    Model generated response: [MODEL_GENERATED_RESPONSE]

    Carefully make your decision based on the above criteria. Return your judgement with the following format:
    Explanation: <Your explanation on your judgement>
    Judgement: <Your judgement, either "correct" or "incorrect">
    '''


def test_judge_prompt_is_the_official_text():
    """llm_judge.py's system prompt and template byte for byte, filled in its order: question,
    then response, then label (so a response holding the label's placeholder is filled too)."""
    system, user = sakura_judge_messages("Q? (a) x (b) y", "(a) x",
                                         "It is x [GROUND_TRUTH_ANSWER]")
    assert system == {"role": "system", "content": (
        "You are a good judge. You will be given a question with list of possible options, a "
        "ground truth answer and a model generated response. \n" + " " * 23
        + "You have to determine whether the model generated answer is correct.")}
    assert user["role"] == "user"
    expected = (OFFICIAL_USER_TEMPLATE.replace("[QUESTION]", "Q? (a) x (b) y")
                .replace("[MODEL_GENERATED_RESPONSE]", "It is x [GROUND_TRUTH_ANSWER]")
                .replace("[GROUND_TRUTH_ANSWER]", "(a) x"))
    assert user["content"] == expected
    assert "\n    \n    Now here is" in user["content"] and user["content"].endswith('">\n    ')
    assert "Model generated response: It is x (a) x\n" in user["content"]


def test_judge_scores_through_real_server_and_caches(sakura_root, chat_server, tmp_path):
    rows = _rows(sakura_root)
    cache = tmp_path / "judge_cache.jsonl"
    judge = OpenAIJudge(chat_server.base_url, "rule-judge", api_key="k", cache_path=cache)
    result = score_sakura(rows, method="judge", judge=judge)
    assert chat_server.requests == 12
    # the server's rule: correct iff the response holds the reference option's text
    # ("Either male or female." holds "male": this stand-in rule, unlike the offline matcher,
    # accepts it)
    assert result["tracks"]["Gender"]["single"]["correct"] == 3
    assert result["tracks"]["Gender"]["multi"]["correct"] == 1  # "Rosa Parks"
    assert result["tracks"]["Animal"]["single"]["correct"] == 1  # only "It is a sheep."
    assert result["tracks"]["Animal"]["multi"]["correct"] == 0
    assert len(cache.read_text().splitlines()) == 12
    # the official judge script's settings
    assert {(b["temperature"], b["top_p"]) for b in chat_server.bodies} == {(0.0, 0.9)}

    # a fresh judge on the same cache file asks nothing again and gives the same verdicts
    again = OpenAIJudge(chat_server.base_url, "rule-judge", cache_path=cache)
    assert score_sakura(rows, method="judge", judge=again)["results"] == result["results"]
    assert chat_server.requests == 12
    # another model name is another cache key
    other = OpenAIJudge(chat_server.base_url, "other-judge", cache_path=cache)
    other.complete(sakura_judge_messages(rows[0]["instruction"], rows[0]["answer"], "Female"))
    assert chat_server.requests == 13
    assert cache_key("a", [{"role": "user", "content": "x"}]) != cache_key(
        "b", [{"role": "user", "content": "x"}])


def test_judge_asks_concurrently_keeps_order_and_caches_every_reply(chat_server, tmp_path):
    """24 distinct prompts (and 24 repeats), 6 at a time: replies come back in prompt order,
    requests overlap, a repeated prompt is asked once, every reply is one whole cache line,
    and samples / sampling settings are cached apart."""
    chat_server.delay = 0.05
    cache = tmp_path / "cache.jsonl"
    judge = OpenAIJudge(chat_server.base_url, "j", cache_path=cache, concurrency=6)
    prompts = [sakura_judge_messages("Gender? (a) Male (b) Female", "(b) Female",
                                     f"{'Female' if i % 3 else 'Male'}, take {i}")
               for i in range(24)]
    replies = judge.complete_many(prompts + prompts)
    assert replies == [ChatServer.rule(m) for m in prompts] * 2
    assert "Judgement: incorrect" in replies[0] and "Judgement: correct" in replies[1]
    assert chat_server.max_in_flight > 1 and chat_server.requests == 24
    lines = [json.loads(line) for line in cache.read_text().splitlines()]
    assert len(lines) == 24 and all(e["sample"] == 0 for e in lines)

    sampled = judge.with_sampling(0.5, top_p=0.95).complete_samples(prompts[:2], 3)
    assert chat_server.requests == 24 + 6  # other settings, other cache keys; 3 samples each
    assert sampled == [[ChatServer.rule(prompts[i])] * 3 for i in range(2)]
    assert judge.sampling == {"temperature": 0.0}  # the original judge is unchanged
    assert judge.complete_many(prompts) == replies[:24] and chat_server.requests == 30
    with pytest.raises(JudgeError, match="at least 1"):
        OpenAIJudge(chat_server.base_url, "j", concurrency=0)


def test_judge_torn_cache_line_is_skipped(chat_server, tmp_path):
    cache = tmp_path / "cache.jsonl"
    messages = sakura_judge_messages("Q? (a) x (b) y", "(a) x", "x")
    OpenAIJudge(chat_server.base_url, "m", cache_path=cache).complete(messages)
    with cache.open("a") as f:
        f.write('{"key": "abc", "rep')  # a run killed mid-write
    judge = OpenAIJudge(chat_server.base_url, "m", cache_path=cache)
    assert judge.cached(messages) == "Explanation: rule-based stand-in.\nJudgement: correct"
    assert chat_server.requests == 1


def test_judge_retries_server_errors_and_reports_refusals(chat_server):
    flaky = OpenAIJudge(chat_server.base_url, "flaky", max_retries=2, backoff=0.01)
    reply = flaky.complete(sakura_judge_messages("Q? (a) x (b) y", "(a) x", "x"))
    assert parse_sakura_verdict(reply) is True
    assert chat_server.requests == 2  # one HTTP 500, then success
    broken = OpenAIJudge(chat_server.base_url, "broken", max_retries=3, backoff=0.01)
    with pytest.raises(JudgeError, match=r"HTTP 400.*'broken'"):
        broken.complete([{"role": "user", "content": "hi"}])
    assert chat_server.requests == 3  # a refusal is not retried


def test_judge_unreachable_names_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    judge = OpenAIJudge(url, "m", max_retries=1, backoff=0.01, timeout=5)
    with pytest.raises(JudgeUnreachableError, match=re.escape(url)):
        judge.complete([{"role": "user", "content": "hi"}])


# ---------------------------------------------------------------------------------------------
# another system's files in the benchmark's own formats (result files, judgement files)
# ---------------------------------------------------------------------------------------------


def _official_result_file(path: Path, track: str, hop: str, entries: dict) -> Path:
    path.write_text(json.dumps({"attribute": track, "type": hop, "results": entries}, indent=4))
    return path


def test_official_result_files_score_like_our_rows(sakura_root, tmp_path):
    """Per-track result files as the benchmark's inference scripts write them score exactly as
    the same answers stored as our rows; labels may be '(x) text' or the option's bare text."""
    from desta.evaluation.runner import evaluate

    rows = _rows(sakura_root)
    folder = tmp_path / "theirs"
    folder.mkdir()
    for track in ("Gender", "Animal"):
        for hop in ("single", "multi"):
            cell = [r for r in rows if r["track"] == track and r["hop"] == hop]
            entries = {}
            for i, r in enumerate(cell):
                clip = r["id"].split("/")[1]
                # every other row gives the label as the bare option text, as some copies do
                label = r["answer"] if i % 2 == 0 else parse_answer(r["answer"])[1].upper()
                entries[clip] = {"instruction": r["instruction"], "response": r["response"],
                                 "label": label}
            _official_result_file(folder / f"{track}_other_model_{hop}.json", track, hop, entries)
    theirs = evaluate("sakura", predictions=folder).scores
    ours = score_sakura(rows)
    assert theirs["tracks"] == ours["tracks"] and theirs["total"] == ours["total"]
    assert sorted(theirs["results"]) == sorted(ours["results"])
    # joined to the benchmark items by id (<Track>/<clip>/<hop>): the same scores
    joined = evaluate("sakura", predictions=folder, data=sakura_root).scores
    assert joined["total"] == ours["total"]


def _judgement_file(path: Path, verdicts: dict[str, str], instruction: str,
                    clip_prefix: str = "") -> Path:
    """A judgement file as llm_judge.py writes it (keys as the result file had them)."""
    entries = {f"{clip_prefix}{clip}": {"Explanation": "x", "Judgement": verdict,
                                        "instruction": instruction,
                                        "model_response": "It is a woman.", "label": "(b) Female"}
               for clip, verdict in verdicts.items()}
    path.write_text(json.dumps({"judge_model": "gpt-4o-2024-11-20", "temperature": 0.0,
                                "top_p": 0.9, "max_tokens": 1024, "results": entries}, indent=4))
    return path


GENDER_Q = "What is the speaker's gender in this audio? (a) Male (b) Female"


def test_official_judgement_files_are_counted_as_calculate_acc_does(tmp_path):
    """The official judge's output: correct iff `Judgement.lower().strip() == "correct"`, as
    calculate_acc.py counts; a quoted "correct" (the form the judge prompt itself shows), a
    trailing period or no verdict at all are invalid, i.e. wrong."""
    from desta.evaluation.runner import evaluate

    verdicts = {"c0.wav": "correct", "c1.wav": "incorrect", "c2.wav": "Correct ",
                "c3.wav": "No extracted judgement", "c4.wav": '"correct"', "c5.wav": "correct.",
                "c6.wav": "INCORRECT"}
    path = _judgement_file(tmp_path / "Gender_other_model_single_judgements.json", verdicts,
                           GENDER_Q)
    scores = evaluate("sakura", predictions=path).scores
    assert scores["method"] == "judgements"
    cell = scores["tracks"]["Gender"]["single"]
    # correct: c0, c2; invalid: c3, c4, c5; all seven count in the denominator
    assert (cell["correct"], cell["count"], cell["unparsable"]) == (2, 7, 3)
    assert dict(scores["results"]) == {
        "Gender/c0.wav/single": True, "Gender/c1.wav/single": False,
        "Gender/c2.wav/single": True, "Gender/c3.wav/single": False,
        "Gender/c4.wav/single": False, "Gender/c5.wav/single": False,
        "Gender/c6.wav/single": False}
    assert cell["accuracy"] == pytest.approx(200 / 7)


def test_judgement_file_named_as_llm_judge_names_it(sakura_root, tmp_path):
    """llm_judge.py names its output after the result file (`<model>_judgements.json`), keys
    may be metadata.json paths (`data/Gender/audio/x.wav`): the track comes from the key, the
    hop from the folder names, and otherwise the rows join --data by clip and instruction."""
    from desta.evaluation.runner import evaluate

    items = {i.id: i for i in read_sakura(sakura_root)}
    multi = items["Gender/en_test_0_common_voice_en_18758345.wav/multi"]
    single = items["Gender/en_test_0_common_voice_en_19031181.wav/single"]
    folder = tmp_path / "results" / "Gender" / "single"
    folder.mkdir(parents=True)
    in_folders = _judgement_file(folder / "qwen2_audio_judgements.json",
                                 {single.metadata["file"]: "correct"}, single.prompt,
                                 clip_prefix="data/Gender/audio/")
    scores = evaluate("sakura", predictions=in_folders).scores
    assert dict(scores["results"]) == {single.id: True}

    flat = _judgement_file(tmp_path / "qwen2_audio_judgements.json",
                           {single.metadata["file"]: '"correct"',
                            multi.metadata["file"]: "correct"}, single.prompt)
    # the second row asks the multi-hop question of its clip
    document = json.loads(flat.read_text())
    document["results"][multi.metadata["file"]]["instruction"] = multi.prompt
    flat.write_text(json.dumps(document))
    with pytest.raises(BenchmarkDataError, match="pass --data"):
        evaluate("sakura", predictions=flat)
    joined = evaluate("sakura", predictions=flat, data=sakura_root).scores
    assert dict(joined["results"]) == {single.id: False, multi.id: True}
    assert joined["tracks"]["Gender"]["single"]["unparsable"] == 1


def test_metadata_json_layout_and_result_keys_by_its_paths(sakura_root, tmp_path):
    """A track folder with only metadata.json (keyed by `data/<Track>/audio/<file>`) reads as
    its CSV does; result files keyed by those paths join --data by id."""
    from desta.evaluation.runner import evaluate

    csv_items = read_sakura(sakura_root)
    for track in ("Gender", "Animal", "Emotion"):
        lines = (sakura_root / track / "metadata.csv").read_text().splitlines()
        import csv as csv_module

        rows = list(csv_module.DictReader(lines))
        metadata = {f"data/{track}/audio/{r['file']}": {k: v for k, v in r.items() if k != "file"}
                    for r in rows}
        (sakura_root / track / "metadata.json").write_text(json.dumps(metadata, indent=4))
        (sakura_root / track / "metadata.csv").unlink()
    json_items = read_sakura(sakura_root)
    assert [(i.id, i.prompt, i.reference, i.audio_paths) for i in json_items] == \
        [(i.id, i.prompt, i.reference, i.audio_paths) for i in csv_items]

    animal = [i for i in json_items if i.metadata["track"] == "Animal" and
              i.metadata["hop"] == "single"]
    entries = {f"data/Animal/audio/{i.metadata['file']}": {
        "instruction": i.prompt, "response": i.reference, "label": i.reference} for i in animal}
    result = _official_result_file(tmp_path / "Animal_model_single.json", "Animal", "single",
                                   entries)
    scores = evaluate("sakura", predictions=result, data=sakura_root).scores
    assert dict(scores["results"]) == {i.id: True for i in animal}
    (sakura_root / "Gender" / "metadata.json").write_text("[]")
    with pytest.raises(BenchmarkDataError, match="keyed by clip path"):
        read_sakura(sakura_root, tracks=["Gender"], check_audio=False)


class VerdictFormsJudge(ChatServer):
    """Answers every SAKURA prompt with a verdict in the form its response asks for."""

    @staticmethod
    def rule(messages) -> str:
        response = re.search(r"Model generated response: (.*)\n\n    Carefully",
                             messages[-1]["content"], re.S).group(1)
        return f"Explanation: as asked.\nJudgement: {response.split('|')[1]}"


def test_rejudging_reads_verdicts_as_the_official_scripts(sakura_root, tmp_path):
    """Re-judging sends llm_judge.py's messages (with the row's label) and reads each reply
    with its pattern and calculate_acc.py's rule: quoted or dotted verdicts are wrong."""
    items = [i for i in read_sakura(sakura_root) if i.metadata["track"] == "Gender"][:4]
    forms = ["correct", '"correct"', "Correct", "correct."]
    rows = [sakura_result_row(i, f"answer|{form}") for i, form in zip(items, forms, strict=True)]
    with VerdictFormsJudge() as server:
        judge = OpenAIJudge(server.base_url, "gpt-4o-2024-11-20", cache_path=tmp_path / "c.jsonl")
        result = score_sakura(rows, method="judge", judge=judge)
        marker = f"Model generated response: {rows[0]['response']}\n"
        sent = [b["messages"] for b in server.bodies if marker in b["messages"][-1]["content"]]
    assert [ok for _, ok in result["results"]] == [True, False, True, False]
    assert sent == [sakura_judge_messages(items[0].prompt, items[0].reference,
                                          rows[0]["response"])]
    assert result["total"]["unparsable"] == 2


def test_official_result_file_errors(tmp_path):
    from desta.evaluation.runner import evaluate

    q = "What is the speaker's gender in this audio? (a) Male (b) Female"
    bad_label = _official_result_file(tmp_path / "a.json", "Gender", "single", {
        "c.wav": {"instruction": q, "response": "male", "label": "robot"}})
    with pytest.raises(BenchmarkDataError, match="label 'robot' is neither"):
        evaluate("sakura", predictions=bad_label)  # the offline rule needs the answer
    bad_hop = _official_result_file(tmp_path / "b.json", "Gender", "double", {
        "c.wav": {"instruction": q, "response": "male", "label": "(a) Male"}})
    with pytest.raises(BenchmarkDataError, match="'type' must be one of"):
        evaluate("sakura", predictions=bad_hop)
    no_response = _official_result_file(tmp_path / "c.json", "Gender", "single", {
        "c.wav": {"instruction": q, "label": "(a) Male"}})
    with pytest.raises(BenchmarkDataError, match="'response'"):
        evaluate("sakura", predictions=no_response)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchmarkFileNotFoundError, match=r"no \*.json"):
        evaluate("sakura", predictions=empty)
