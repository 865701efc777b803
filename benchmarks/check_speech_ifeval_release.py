"""Score Speech-IFEval's published outputs with desta's scorer and print ours beside the official
numbers (the README leaderboard and the per-item reports).

The files are not shipped with desta; clone the benchmark's repository:
  git clone https://github.com/kehanlu/Speech-IFEval
Run:
  python benchmarks/check_speech_ifeval_release.py path/to/Speech-IFEval

For each model folder under outputs/ (DeSTA-ntu--DeSTA2-8B-beta, meta-llama--Meta-Llama-3-8B-
Instruct): the closed-ended and creative-writing rates from the folder's output files (scored as
`desta eval speech-ifeval --predictions <folder>` does), the CoT rate from the official judge's
stored replies (reports/llm_eval@chain-of-thought.jsonl), IFrate, and Δ of DeSTA2 against its
backbone; then every item of the per-item reports (reports/rule_eval@*.jsonl.jsonl) against our
verdict. Expected (README @ 10212d9a): DeSTA2 83.71 / 91.75 / 91.50, IFrate 89.23; Llama-3-8B-
Instruct 93.35 / 93.75 / 90.50, IFrate 92.53; Δ -3.57. Exits 1 when a rate or an item differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desta.evaluation.runner import evaluate, read_predictions_file
from desta.evaluation.speech_ifeval import (
    forgetting_rate,
    if_rate,
    rows_from_file,
    score_instruction_following,
)

OFFICIAL = {
    "DeSTA-ntu--DeSTA2-8B-beta": {"closed_ended_questions": 83.71, "creative_writing": 91.75,
                                  "chain-of-thought": 91.50, "IFrate": 89.23},
    "meta-llama--Meta-Llama-3-8B-Instruct": {"closed_ended_questions": 93.35,
                                             "creative_writing": 93.75,
                                             "chain-of-thought": 90.50, "IFrate": 92.53},
}
OFFICIAL_DELTA = -3.57
SUBSETS = ("closed_ended_questions", "creative_writing", "chain-of-thought")


def _rates(folder: Path) -> dict[str, float | None]:
    scores = evaluate("speech-ifeval", predictions=folder, report=False, progress=False).scores
    rates: dict[str, float | None] = {s: scores["subsets"].get(s, {}).get("rate")
                                      for s in SUBSETS}
    judged = folder / "reports" / "llm_eval@chain-of-thought.jsonl"
    if judged.is_file():  # the official judge's replies, read as llm_evaluation.py reads them
        cot = evaluate("speech-ifeval", predictions=judged, report=False, progress=False)
        rates["chain-of-thought"] = cot.scores["subsets"]["chain-of-thought"]["rate"]
    found = [rates[s] for s in SUBSETS if rates[s] is not None]
    rates["IFrate"] = if_rate(*found) if len(found) == len(SUBSETS) else None
    return rates


def _report_agreement(folder: Path) -> tuple[int, int, list[str]]:
    """Items of reports/rule_eval@*.jsonl.jsonl whose follow_instruction_list we reproduce."""
    agree = total = 0
    differ: list[str] = []
    for report in sorted((folder / "reports").glob("rule_eval@*.jsonl")):
        source = Path(report.name.removeprefix("rule_eval@").removesuffix(".jsonl"))
        rows = rows_from_file(read_predictions_file(report), source)
        ours = score_instruction_following(rows)["results"]
        for row, (row_id, _, follows) in zip(rows, ours, strict=True):
            total += 1
            if follows == row["follow_instruction_list"]:
                agree += 1
            else:
                differ.append(f"{report.name}:{row_id}")
    return agree, total, differ


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repository", type=Path, help="a checkout of kehanlu/Speech-IFEval")
    args = parser.parse_args()
    outputs = args.repository / "outputs"
    if not outputs.is_dir():
        print(f"no outputs/ folder in {args.repository}", file=sys.stderr)
        return 1
    ok = True
    ifrates: dict[str, float | None] = {}
    for name, official in OFFICIAL.items():
        folder = outputs / name
        if not folder.is_dir():
            print(f"{name}: not in {outputs}, skipped")
            continue
        rates = _rates(folder)
        ifrates[name] = rates["IFrate"]
        print(f"{name}")
        print(f"  {'':<24} {'ours':>7} {'official':>9}")
        for key, value in official.items():
            mine = rates[key]
            same = mine is not None and round(mine, 2) == value
            ok &= same
            print(f"  {key:<24} {_fmt(mine):>7} {value:>9.2f}  {'as published' if same else 'DIFFERS'}")
        agree, total, differ = _report_agreement(folder)
        ok &= agree == total
        print(f"  per-item verdicts equal to reports/rule_eval@*: {agree} / {total}"
              + (f"; first differing: {', '.join(differ[:5])}" if differ else ""))
    desta, llama = (ifrates.get(n) for n in OFFICIAL)
    if desta is not None and llama is not None:
        delta = forgetting_rate(desta, llama)
        same = round(delta, 2) == OFFICIAL_DELTA
        ok &= same
        print(f"forgetting delta DeSTA2 vs Llama-3-8B-Instruct: ours {delta:.2f}, official "
              f"{OFFICIAL_DELTA:.2f}  {'as published' if same else 'DIFFERS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
