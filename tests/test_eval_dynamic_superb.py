"""Dynamic-SUPERB: the readers on the layouts the official preprocessing writes (phase-1 instance
folders with `_pair` clips, phase-2 task groups with `_pair2.wav` clips and `instance.json`
metrics), the official exact-match rule, and every metric hand-worked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from desta.evaluation.dynamic_superb import (
    METRICS,
    canonical_metric,
    exact_match,
    f1_score,
    normalise_answer,
    normalised_match,
    parse_number,
    read_dynamic_superb,
    score_dynamic_superb,
    score_task,
)
from desta.evaluation.judges import OpenAIJudge
from desta.evaluation.records import BenchmarkDataError, BenchmarkFileNotFoundError
from desta.evaluation.registry import audio_question_messages
from desta.evaluation.runner import evaluate
from test_eval_sakura import ChatServer

EMO = "EmotionRecognition_MultimodalEmotionlinesDataset"
SV = "SpeakerVerification_LibriSpeech-TestClean"


def _wav(path):
    sf.write(path, np.zeros(800, dtype=np.float32), 16000)


def _write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4))


@pytest.fixture
def phase1_root(tmp_path):
    """Two phase-1 instances as `process_instance.py` saves them: clips `<instance>_<file>`,
    metadata keyed by that name keeping the HF fields (`file` is the original name), the second
    clip of a two-clip row as `<instance>_<stem>_pair<suffix>`; one instance.json (phase-1
    format: `metrics` is a list)."""
    root = tmp_path / "phase1"
    emo, sv = root / EMO, root / SV
    emo.mkdir(parents=True)
    sv.mkdir()
    for name in ("0026_dia382_utt0.wav", "0027_dia12_utt3.wav"):
        _wav(emo / f"{EMO}_{name}")
    for stem in ("0046_3575-170457-0038", "0047_1089-134686-0000"):
        _wav(sv / f"{SV}_{stem}.flac")
        _wav(sv / f"{SV}_{stem}_pair.flac")
    _write_json(emo / "metadata.json", {
        f"{EMO}_0026_dia382_utt0.wav": {
            "file": "0026_dia382_utt0.wav", "instruction": "Recognize the emotion. The answer "
            "could be anger, disgust, sadness, joy, neutral, surprise, or fear.", "label": "joy"},
        f"{EMO}_0027_dia12_utt3.wav": {
            "file": "0027_dia12_utt3.wav", "instruction": "Recognize the emotion.",
            "label": "neutral"}})
    _write_json(sv / "metadata.json", {
        f"{SV}_0046_3575-170457-0038.flac": {
            "file": "0046_3575-170457-0038.flac", "file2": "3575-170457-0050.flac",
            "instruction": "Are the two utterances from the same speaker? Answer yes or no.",
            "label": "yes"},
        f"{SV}_0047_1089-134686-0000.flac": {
            "file": "0047_1089-134686-0000.flac", "file2": "2300-131720-0000.flac",
            "instruction": "Same speaker? Answer yes or no.", "label": "no"}})
    _write_json(sv / "instance.json", {
        "name": SV, "description": "", "keywords": "", "metrics": ["accuracy"],
        "path": f"DynamicSuperb/{SV}", "version": "61e77087c83b2b0b4e8ba713365db8be7806bdd4"})
    return root


@pytest.fixture
def phase2_root(tmp_path):
    """Phase-2 as the organisers' `preprocess.py` saves it (`<group>/<task>/<task>_<stem>.wav`,
    extra clips `_pair2.wav`), with the repository's instance.json files in a separate
    `benchmark_tasks/` tree under the same root (matched by `name` or the HF `path`)."""
    root = tmp_path / "phase2"
    text = root / "DynamicSUPERB_TextGeneration_Tasks"
    tasks = {
        "SuperbSV_VoxCeleb1-Test": (["accuracy"], {
            "id10270-5r0dWxy17C8-00001": ("Same speaker? Answer yes or no.", "yes", True),
            "id10271-1gtz-CUIygI-00002": ("Same speaker? Answer yes or no.", "no", True)}),
        "AudioDurationPrediction_NTUML2021": (["MAE"], {
            "a1": ("How long is the audio in seconds?", "3.5", False),
            "a2": ("How long is the audio in seconds?", "2", False)}),
        "SuperbASR_LibriSpeech-TestClean": (["WER"], {
            "1089-134686-0000": ("Transcribe the audio.", "HE HOPED THERE WOULD BE STEW", False)}),
    }
    for task, (metrics, rows) in tasks.items():
        meta = {}
        for stem, (instruction, label, pair) in rows.items():
            key = f"{task}_{stem}.wav"
            (text / task).mkdir(parents=True, exist_ok=True)
            _wav(text / task / key)
            if pair:
                _wav(text / task / f"{task}_{stem}_pair2.wav")
            meta[key] = {"file": f"{stem}.flac", "instruction": instruction, "label": label}
        _write_json(text / task / "metadata.json", meta)
        # the repository names the instance differently from the HF dataset: match by `path`
        folder = root / "benchmark_tasks" / task.split("_")[0] / f"{task}-Instance"
        _write_json(folder / "instance.json", {
            "name": f"{task}-Instance", "metrics": metrics,
            "path": f"DynamicSuperb/{task}", "version": "0" * 40})
    # an audio-generation task (reference answers are audio): skipped by the reader
    enhance = root / "DynamicSUPERB_AudioGeneration_Tasks" / "SuperbSE_VoiceBankDEMAND-Test"
    enhance.mkdir(parents=True)
    _write_json(enhance / "metadata.json", {"SuperbSE_VoiceBankDEMAND-Test_p232_001.wav": {
        "file": "p232_001.wav", "instruction": "Enhance the speech."}})
    return root


# ---------------------------------------------------------------------------------------------
# matching rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prediction, label, official, normalised", [
    ("joy", "joy", True, True),
    ("Joy", "joy", True, True),                     # the official rule lower-cases both
    ("YES", "yes", True, True),
    ("Joy.", "joy", False, True),                   # punctuation: wrong officially
    (" joy\n", "joy", False, True),                 # no stripping in the official rule
    ("The answer is joy.", "joy", False, False),    # extra words: wrong by both rules
    ("joyful", "joy", False, False),
    ("", "joy", False, False),                      # empty answer
    ("...", "joy", False, False),
    ("Same speaker", "same_speaker", False, True),  # "_" is punctuation to the normaliser
])
def test_exact_match_rules(prediction, label, official, normalised):
    assert exact_match(prediction, label) is official
    assert normalised_match(prediction, label) is normalised


def test_normalise():
    assert normalise_answer("  It's  A—B,\tc! ") == "it s a b c"


@pytest.mark.parametrize("text, value", [
    ("32 years", 32.0), ("about 3.5 seconds", 3.5), ("unknown", None), ("", None),
    ("twenty-five", 25.0), ("It is thirty.", 30.0), ("minus two point five", -2.5),
    ("one hundred and five", 105.0), ("1,200 ms", 1200.0), ("-1.5e2 dB", -150.0),
    ("No one knows, maybe 3", 3.0), ("which one?", None), ("five and six", 5.0),
    ("around 7 or eight", 7.0), ("ninety-nine point nine", 99.9), ("\u22124 dB", -4.0),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


# ---------------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------------


def test_phase1_reader_uses_saved_names_and_pairs(phase1_root):
    items = read_dynamic_superb(phase1_root)
    assert [i.id for i in items] == [
        f"{EMO}/{EMO}_0026_dia382_utt0.wav", f"{EMO}/{EMO}_0027_dia12_utt3.wav",
        f"{SV}/{SV}_0046_3575-170457-0038.flac", f"{SV}/{SV}_0047_1089-134686-0000.flac"]
    emo, sv = items[0], items[2]
    assert [p.name for p in emo.audio_paths] == [f"{EMO}_0026_dia382_utt0.wav"]
    assert emo.reference == "joy" and emo.metadata["metrics"] == ["accuracy"]
    assert emo.metadata["file"] == "0026_dia382_utt0.wav"  # the HF field is kept
    assert [p.name for p in sv.audio_paths] == [
        f"{SV}_0046_3575-170457-0038.flac", f"{SV}_0046_3575-170457-0038_pair.flac"]
    messages = audio_question_messages(sv)
    assert messages[0]["content"].startswith("<|AUDIO|><|AUDIO|>\nAre the two utterances")
    assert len(messages[0]["audios"]) == 2


def test_phase1_reader_errors(phase1_root, tmp_path):
    (phase1_root / SV / f"{SV}_0047_1089-134686-0000_pair.flac").unlink()
    with pytest.raises(BenchmarkFileNotFoundError, match=r"two-clip row .*_pair\.flac"):
        read_dynamic_superb(phase1_root)
    (phase1_root / EMO / f"{EMO}_0027_dia12_utt3.wav").unlink()
    with pytest.raises(BenchmarkFileNotFoundError, match="0027_dia12_utt3.wav does not exist"):
        read_dynamic_superb(phase1_root / EMO)
    _write_json(tmp_path / "lst" / "X" / "metadata.json", [{"file": "a.wav"}])
    with pytest.raises(BenchmarkDataError, match="keyed by clip file name"):
        read_dynamic_superb(tmp_path / "lst")


def test_phase_and_folder_errors(tmp_path):
    with pytest.raises(BenchmarkDataError, match="phase1 or phase2"):
        read_dynamic_superb(tmp_path, "phase3")
    with pytest.raises(BenchmarkFileNotFoundError, match="expected <instance>/metadata.json"):
        read_dynamic_superb(tmp_path, "phase-2")
    with pytest.raises(BenchmarkFileNotFoundError, match="folder not found"):
        read_dynamic_superb(tmp_path / "nope")


def test_phase2_reader(phase2_root):
    items = read_dynamic_superb(phase2_root, "phase2")
    by_task = {i.metadata["instance"]: i for i in items}
    assert set(by_task) == {"SuperbSV_VoxCeleb1-Test", "AudioDurationPrediction_NTUML2021",
                            "SuperbASR_LibriSpeech-TestClean"}
    sv = [i for i in items if i.metadata["instance"] == "SuperbSV_VoxCeleb1-Test"][0]
    assert [p.name for p in sv.audio_paths] == [
        "SuperbSV_VoxCeleb1-Test_id10270-5r0dWxy17C8-00001.wav",
        "SuperbSV_VoxCeleb1-Test_id10270-5r0dWxy17C8-00001_pair2.wav"]
    assert by_task["AudioDurationPrediction_NTUML2021"].metadata["metrics"] == ["mae"]
    assert by_task["SuperbASR_LibriSpeech-TestClean"].metadata["metrics"] == ["wer"]
    assert all(i.metadata["phase"] == "phase2" for i in items)


def test_phase2_metric_errors(phase2_root):
    info = (phase2_root / "benchmark_tasks" / "SuperbASR" / "SuperbASR_LibriSpeech-TestClean"
            "-Instance" / "instance.json")
    info.write_text(json.dumps({"name": "x", "metrics": ["EER"],
                                "path": "DynamicSuperb/SuperbASR_LibriSpeech-TestClean"}))
    with pytest.raises(BenchmarkDataError, match=r"'EER' is not supported; supported: accuracy"):
        read_dynamic_superb(phase2_root, "phase2")
    info.unlink()
    with pytest.raises(BenchmarkDataError, match="no instance.json names its metric"):
        read_dynamic_superb(phase2_root, "phase2")


def test_canonical_metric_names():
    assert [canonical_metric(n) for n in ("MSE", "LCC", "SRCC", "KTAU", "F1_weighted", "BLEU",
                                          "LLM-C", "MedAE", "PER")] == [
        "mse", "pearson", "spearman", "kendall", "f1_weighted", "bleu", "llm_classification",
        "medae", "per"]
    with pytest.raises(BenchmarkDataError) as err:
        canonical_metric("PESQ")
    assert all(m in str(err.value) for m in METRICS)


# ---------------------------------------------------------------------------------------------
# metrics, hand-worked
# ---------------------------------------------------------------------------------------------


def test_regression_by_hand():
    """labels 30, 40, 50, 60; answers '32 years', 'about thirty-five', 'unknown', '' (the last
    two hold no number: left out). Errors +2, -5: MAE 3.5, MSE 14.5, RMSE sqrt(14.5),
    median |e| 3.5."""
    rows = [{"label": "30", "response": "32 years"},
            {"label": "40", "response": "about thirty-five"},
            {"label": "50", "response": "unknown"}, {"label": "60", "response": ""}]
    mae = score_task("mae", rows)
    assert mae["value"] == 3.5 and mae["scores"]["mae"]["unparsable"] == 2
    assert mae["higher_is_better"] is False
    assert score_task(["MSE"], rows)["value"] == 14.5
    assert score_task("rmse", rows)["value"] == pytest.approx(14.5 ** 0.5)
    assert score_task("medae", rows)["value"] == 3.5
    with pytest.raises(BenchmarkDataError, match="holds no number"):
        score_task("mae", [{"label": "old", "response": "3"}])


def test_correlations_by_hand():
    """x = 1, 2, 3; y = 1, 3, 2: Pearson = Spearman = 1/2 (deviations -1,0,1 / -1,1,0:
    covariance 1 over variances 2, 2); Kendall (2 concordant - 1 discordant) / 3 = 1/3."""
    rows = [{"label": "1", "response": "1"}, {"label": "2", "response": "three"},
            {"label": "3", "response": "2.0"}]
    result = score_task(["MSE", "LCC", "SRCC", "KTAU"], rows)
    assert result["metric"] == "mse" and result["value"] == pytest.approx(2 / 3)
    assert result["scores"]["pearson"]["value"] == pytest.approx(0.5)
    assert result["scores"]["spearman"]["value"] == pytest.approx(0.5)
    assert result["scores"]["kendall"]["value"] == pytest.approx(1 / 3)
    constant = [{"label": "1", "response": "2"}, {"label": "2", "response": "2"}]
    assert score_task("pearson", constant)["value"] is None  # undefined for a constant


def test_sequence_metrics_by_hand():
    """WER: 'The cat sat.' vs 'the cat sat' (0 errors after Whisper's basic normaliser) and
    'A dog, barking!' vs '' (3 deletions): 3 / 6 = 50 %. A reference that normalises to nothing
    is left out. CER 'abc' vs 'abd' = 1/3. PER over phones 'AH0 B K' vs 'AH0 P K' = 1/3."""
    rows = [{"label": "The cat sat.", "response": "the cat sat"},
            {"label": "A dog, barking!", "response": ""},
            {"label": "[noise]", "response": "uh"}]
    wer = score_task("wer", rows)
    assert wer["value"] == pytest.approx(50.0)
    assert wer["scores"]["wer"]["empty_references"] == 1
    assert score_task("cer", [{"label": "abc", "response": "abd"}])["value"] == \
        pytest.approx(100 / 3)
    assert score_task("per", [{"label": "AH0 B K", "response": "ah0 p k"}])["value"] == \
        pytest.approx(100 / 3)


def test_bleu_by_hand():
    """Hypothesis 'the cat is on the' against 'the cat is on the mat': every n-gram precision is
    1, brevity penalty exp(1 - 6/5) -> BLEU 81.87 (with hypothesis and reference swapped it
    would be (1/3)^(1/4) = 75.98)."""
    rows = [{"label": "the cat is on the mat", "response": "the cat is on the"}]
    assert score_task("bleu", rows)["value"] == pytest.approx(100 * np.exp(-0.2), abs=0.01)
    assert score_task("bleu", [{"label": "a b c d", "response": ""}])["value"] == 0.0


def test_f1_by_hand():
    """labels a a b c, answers a b b x. a: tp 1 fp 0 fn 1 -> 2/3; b: tp 1 fp 1 fn 0 -> 2/3;
    c: 0. Macro (2/3 + 2/3 + 0) / 3 = 44.44 %; weighted (2 * 2/3 + 2/3 + 0) / 4 = 50 %."""
    labels, answers = ["a", "a", "b", "c"], ["a", "b", "B", "x"]
    assert f1_score(labels, answers, "macro") == pytest.approx(400 / 9)
    assert f1_score(labels, answers, "weighted") == pytest.approx(50.0)
    rows = [{"label": t, "response": p} for t, p in zip(labels, answers, strict=True)]
    assert score_task("F1_weighted", rows)["value"] == pytest.approx(50.0)


class YesIfLabelJudge(ChatServer):
    """The organisers' prompt: `Result: YES` iff the label is in the answer."""

    @staticmethod
    def rule(messages) -> str:
        user = messages[-1]["content"]
        label = user.split("Ground Truth Answer: ", 1)[1].split("\n", 1)[0]
        answer = user.split("Model's Response: ", 1)[1]
        verdict = "YES" if label.lower() in answer.lower() else "NO"
        return f"The answer {'matches' if verdict == 'YES' else 'differs'}.\nResult: {verdict}"


def test_llm_classification_and_judge_beside_accuracy(tmp_path):
    rows = [{"instance": "T", "metrics": ["accuracy"], "phase": "phase2",
             "instruction": "Same speaker?", "label": "yes", "response": "Yes, it is."},
            {"instance": "T", "metrics": ["accuracy"], "phase": "phase2",
             "instruction": "Same speaker?", "label": "no", "response": "yes"},
            {"instance": "T", "metrics": ["accuracy"], "phase": "phase2",
             "instruction": "Same speaker?", "label": "no", "response": ""}]  # not asked
    with YesIfLabelJudge() as server:
        judge = OpenAIJudge(server.base_url, "j", cache_path=tmp_path / "c.jsonl")
        result = score_dynamic_superb(rows, judge)
        assert server.requests == 2
        judged = score_task("llm_classification", rows, judge)
    task = result["instances"]["T"]
    assert task["metric"] == "accuracy" and task["value"] == 0.0  # official rule: none exact
    assert task["scores"]["llm_classification"]["value"] == pytest.approx(100 / 3)
    assert judged["value"] == pytest.approx(100 / 3)
    assert result["summary"]["classification accuracy (mean over tasks)"] == 0.0
    assert result["summary"]["classification accuracy, LLM judge (mean over tasks)"] == \
        pytest.approx(100 / 3)
    with pytest.raises(BenchmarkDataError, match="needs a judge"):
        score_task("llm_classification", rows)


def test_mixed_rows_are_refused():
    row = {"instance": "T", "metrics": ["accuracy"], "label": "a", "response": "a"}
    with pytest.raises(BenchmarkDataError, match="mixes metrics"):
        score_dynamic_superb([row, {**row, "metrics": ["wer"]}])
    with pytest.raises(BenchmarkDataError, match="mix Dynamic-SUPERB phases"):
        score_dynamic_superb([{**row, "phase": "phase1"}, {**row, "phase": "phase2"}])
    with pytest.raises(BenchmarkDataError, match="lacks field"):
        score_dynamic_superb([{"instance": "T", "label": "a"}])


# ---------------------------------------------------------------------------------------------
# through the runner
# ---------------------------------------------------------------------------------------------


def _predictions(path, answers):
    path.write_text("".join(json.dumps({"id": k, "response": v}) + "\n"
                            for k, v in answers.items()))
    return path


def test_phase1_through_the_runner(tmp_path, phase1_root):
    """Emotion: 'Joy' right, 'neutral.' wrong (punctuation) -> 50 %; speaker: 'Yes' and 'no'
    right -> 100 %; phase-1 accuracy = mean over instances = 75 % (normalised: 100 %)."""
    preds = _predictions(tmp_path / "p.jsonl", {
        f"{EMO}/{EMO}_0026_dia382_utt0.wav": "Joy",
        f"{EMO}/{EMO}_0027_dia12_utt3.wav": "neutral.",
        f"{SV}/{SV}_0046_3575-170457-0038.flac": "Yes",
        f"{SV}/{SV}_0047_1089-134686-0000.flac": "no"})
    result = evaluate("dynamic-superb", data=phase1_root, predictions=preds, out=tmp_path / "o")
    assert result.scores["summary"]["phase-1 accuracy"] == 75.0
    emo = result.scores["instances"][EMO]
    assert emo["value"] == 50.0 and emo["scores"]["normalised_accuracy"]["value"] == 100.0
    assert "| phase-1 accuracy | 75.00 | 69.53 [1] | 51.69 [1] |" in \
        (tmp_path / "o" / "report.md").read_text()


def test_phase2_through_the_runner(tmp_path, phase2_root):
    """SV: 'yes' right, 'No.' wrong -> 50 %; duration labels 3.5, 2 vs 'four seconds', '2.5'
    -> MAE (0.5 + 0.5) / 2 = 0.5; ASR one substitution in 6 words -> WER 16.67 %."""
    preds = _predictions(tmp_path / "p.jsonl", {
        "SuperbSV_VoxCeleb1-Test/SuperbSV_VoxCeleb1-Test_id10270-5r0dWxy17C8-00001.wav": "yes",
        "SuperbSV_VoxCeleb1-Test/SuperbSV_VoxCeleb1-Test_id10271-1gtz-CUIygI-00002.wav": "No.",
        "AudioDurationPrediction_NTUML2021/AudioDurationPrediction_NTUML2021_a1.wav":
            "four seconds",
        "AudioDurationPrediction_NTUML2021/AudioDurationPrediction_NTUML2021_a2.wav": "2.5",
        "SuperbASR_LibriSpeech-TestClean/SuperbASR_LibriSpeech-TestClean_1089-134686-0000.wav":
            "He hoped there could be stew."})
    result = evaluate("dynamic-superb", data=phase2_root, predictions=preds,
                      out=tmp_path / "o", subset="phase2")
    summary = result.scores["summary"]
    assert summary["SuperbSV_VoxCeleb1-Test (accuracy)"] == 50.0
    assert summary["AudioDurationPrediction_NTUML2021 (mae)"] == pytest.approx(0.5)
    assert summary["SuperbASR_LibriSpeech-TestClean (wer)"] == pytest.approx(100 / 6)
    assert summary["classification accuracy (mean over tasks)"] == 50.0
    assert "phase-1 accuracy" not in summary and result.scores["phase"] == "phase2"


# the organisers' prompt.py as its source has it (a triple-quoted string, `.strip()`ped)
OFFICIAL_CLASSIFICATION_PROMPT = """
You will be given a question, a corresponding correct answer(s), and a response from a model.
The model's response is a reply to the question. Your task is to judge if the "Model's Response" aligns with the "Ground Truth Answer" based on the "Question."
Please strictly follow the guidelines below:
- Briefly explain the reasons for your judgment.
- Answer with the format "Result: <YES or NO>" at the end.
- Output "YES" if the response aligns with the ground truth answer;\x20
output "NO" if the response does not match the ground truth answer, selects incorrect or irrelevant options, or provides more answers than required.
- The questions would be single-choice or multi-choice:
For single-choice questions, the model's response should contain one and only one answer. If the model's response selects more than one answer or does not clearly indicate a single answer, you should mark it as incorrect and output "NO."\x20
For multi-choice questions, the model's response must exactly match all applicable correct choices. If the model's response selects too many, too few, or any incorrect answers, you should mark it as incorrect and output "NO."
- Since the question is short answer, the model's response does not need to mention the content of the question. You only need to check if the model's response has the same meaning as the ground truth answer(s).

Input Format:
Question: {instruction}
Ground Truth Answer: {label}
Model's Response: {response}
""".strip()


def test_judge_prompt_and_verdict_are_the_organisers():
    from desta.evaluation.dynamic_superb import judge_messages, read_judge_result

    assert judge_messages("Same speaker?", "yes", "Yes, {it} is.") == [{
        "role": "user", "content": OFFICIAL_CLASSIFICATION_PROMPT.format(
            instruction="Same speaker?", label="yes", response="Yes, {it} is.")}]
    # re.search(r"result:\s*(yes|no)", reply.lower().strip()): "yes" correct, else wrong
    assert read_judge_result("It matches.\nResult: YES")
    assert read_judge_result("result:yes")
    assert not read_judge_result("Result: NO")
    assert not read_judge_result("**Result:** YES")  # "**" breaks the pattern: wrong
    assert not read_judge_result("Yes.") and not read_judge_result(None)


def test_phase2_result_files_as_the_organisers_write_them(tmp_path, phase2_root):
    """`<task>.json` = {clip: {"instruction", "label", "sllm_response"}} joins --data (the
    metric from its instance.json); after the organisers' LLM evaluation the file carries
    `evaluation_response`, whose verdicts count as they stand, without a judge."""
    sv = "SuperbSV_VoxCeleb1-Test"
    clips = {f"{sv}_id10270-5r0dWxy17C8-00001.wav": ("yes", "Yes, the same speaker."),
             f"{sv}_id10271-1gtz-CUIygI-00002.wav": ("no", "no")}
    results = tmp_path / "results" / "my_model"
    _write_json(results / f"{sv}.json", {
        clip: {"instruction": "Same speaker? Answer yes or no.", "label": label,
               "sllm_response": answer, "file": clip} for clip, (label, answer) in clips.items()})
    scores = evaluate("dynamic-superb", data=phase2_root, predictions=results,
                      subset="phase2").scores
    task = scores["instances"][sv]
    assert task["metric"] == "accuracy" and task["value"] == 50.0  # only "no" is exact
    with pytest.raises(BenchmarkDataError, match="names no metric: pass --data"):
        evaluate("dynamic-superb", predictions=results)

    judged = tmp_path / "judged" / "llama" / "my_model"
    replies = ["The response says yes.\nResult: YES", "It answers no, the label is no. Result: no"]
    _write_json(judged / f"{sv}.json", {
        clip: {"instruction": "Same speaker? Answer yes or no.", "label": label,
               "sllm_response": answer, "messages": [{"role": "user", "content": "..."}],
               "evaluation_response": reply}
        for (clip, (label, answer)), reply in zip(clips.items(), replies, strict=True)})
    standalone = evaluate("dynamic-superb", predictions=judged).scores
    assert standalone["instances"][sv]["metric"] == "llm_classification"
    assert standalone["instances"][sv]["value"] == 50.0  # "result: no" is not a yes
    with_data = evaluate("dynamic-superb", data=phase2_root, predictions=judged,
                         subset="phase2").scores["instances"][sv]["scores"]
    assert with_data["accuracy"]["value"] == 50.0
    assert with_data["llm_classification"]["value"] == 50.0


def test_a_json_object_that_is_not_a_result_file_says_so(tmp_path):
    bad = tmp_path / "Task.json"
    _write_json(bad, {"clip.wav": "just a string"})
    with pytest.raises(BenchmarkDataError, match="phase-2 result format"):
        evaluate("dynamic-superb", predictions=bad)
    _write_json(bad, {"clip.wav": {"label": "x"}})
    with pytest.raises(BenchmarkDataError, match="lacks field"):
        evaluate("dynamic-superb", predictions=bad)
