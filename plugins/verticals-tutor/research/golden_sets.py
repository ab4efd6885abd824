"""The golden sets of ``tutor.grade`` and ``tutor.mastery`` (``verticals_tutor/golden/``), written here.

``grade``: 40 student answers written for this set (none copied from SemEval's student answers) to 10 questions
of the SemEval-2013 Task 7 **training** splits (5 Beetle, 5 SciEntsBank), whose question text and reference
answers are copied from ``semeval2013_train_questions.jsonl`` (CC BY-SA 3.0, Dzikovska et al. 2013). Per
question: two correct answers in other words than the references, one that says the opposite (contradictory) and
one that is wrong or beside the point (incorrect); labelled by their writer.

``mastery``: a synthetic attempt log (no ASSISTments row: that data's licence is not stated, and the shipped model
was fitted on all of it), made by a seeded simulation of another kind than the model's: an additive-factors
learner (ability + skill easiness + a gain per earlier attempt at the skill, capped) on five skills of our own
that the shipped BKT table does not have.

    cd plugins/verticals-tutor && python research/golden_sets.py grade --out verticals_tutor/golden/answers.jsonl
    cd plugins/verticals-tutor && python research/golden_sets.py mastery --out verticals_tutor/golden/attempts.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

# question id -> (correct, correct, contradictory, incorrect): answers written for this set
ANSWERS: dict[str, tuple[str, str, str, str]] = {
    "DAMAGED_BULB_EXPLAIN_2_Q": (
        "the broken bulb makes a gap so the path is not closed anymore",
        "because the damaged bulb leaves an open path in the circuit",
        "a damaged bulb closes the gap so the circuit still works",
        "because the bulb uses up all of the battery's energy"),
    "VOLTAGE_DIFF_DISCUSS_2_Q": (
        "they are not connected to each other",
        "there is a gap between the two terminals",
        "it means the bulb terminal is connected to the battery terminal",
        "the battery is 1.5 volts"),
    "SHORT_CIRCUIT_EXPLAIN_Q_5": (
        "there is a closed path with the battery that does not go through any bulb",
        "the bulb is not in the closed path with the battery",
        "because the bulb is in the same closed path as the battery",
        "because the wires are too short"),
    "BULB_C_VOLTAGE_EXPLAIN_WHY6": (
        "terminal 6 is connected to the positive terminal",
        "there is no gap between terminal 6 and the positive terminal",
        "terminal 6 and the positive terminal are separated by a gap",
        "the bulb is burned out"),
    "OTHER_TERMINAL_STATE_EXPLAIN_Q": (
        "terminals 4, 5 and 6 are not connected to the negative terminal",
        "because there is a gap between them and the negative battery terminal",
        "they are connected to the negative terminal",
        "because the battery is new"),
    "MX_19": (
        "fizzing means a gas was made, and when a new substance is made there was a chemical reaction",
        "the bubbles are a new gas that was not there before, so a new material formed",
        "fizzing shows no new material is made, the water just mixes with the powder",
        "because the water was hot"),
    "MX_24": (
        "the solid dissolves so you can't see it anymore and the liquid stays clear",
        "when the solid disappears into the liquid and it is still see-through",
        "the solid sinks to the bottom and stays there",
        "when you stir it with a spoon"),
    "ME_27b": (
        "put the magnet near the key. if it sticks it is iron, if it doesn't it is aluminum",
        "iron sticks to a magnet and aluminum does not, so see if the magnet attracts the key",
        "if the key sticks to the magnet it is aluminum",
        "weigh the key on a scale"),
    "ME_5b": (
        "nothing would happen because brass is not attracted to magnets",
        "the ring would not stick since it is not made of iron",
        "the brass ring would stick to the nail because the nail is a magnet now",
        "the ring would get warm"),
    "PS_15bp": (
        "because it has the longest and widest tube",
        "its tube is bigger and longer than the other instruments",
        "because it has the shortest tube",
        "because you blow harder into it"),
}
LABELS = (("correct", "correct"), ("correct", "correct"), ("incorrect", "contradictory"), ("incorrect", "incorrect"))


def grade_rows(data: Path) -> list[dict[str, Any]]:
    from semeval import load_questions, reference_texts

    questions = load_questions(data)
    rows = []
    for question_id, answers in ANSWERS.items():
        question = questions[question_id]
        assert "train" in question["splits"], question_id  # training questions only
        for k, (answer, (two, three)) in enumerate(zip(answers, LABELS, strict=True)):
            rows.append({"id": f"{question_id}-{k + 1}", "question_id": question_id, "question": question["question"],
                         "reference_answers": reference_texts(question), "answer": answer,
                         "label_2way": two, "label_3way": three})
    return rows


# skills of our own (not in the shipped BKT table): easiness on the logit scale
SKILLS = {"fractions-add": 0.3, "fractions-compare": -0.4, "decimals-round": 0.8, "area-rectangle": 0.0,
          "ratio-unit-rate": -0.9}


def mastery_rows(students: int = 24, seed: int = 2025) -> list[dict[str, Any]]:
    """Each student works on three of the skills, 6-14 attempts each, interleaved; P(correct) =
    sigmoid(ability + easiness + 0.35 * min(earlier attempts at the skill, 6) - 1.0)."""
    rng = random.Random(seed)
    rows = []
    for s in range(students):
        ability = rng.gauss(0.0, 1.0)
        skills = rng.sample(sorted(SKILLS), 3)
        queue = [skill for skill in skills for _ in range(rng.randint(6, 14))]
        rng.shuffle(queue)
        done: dict[str, int] = {}
        for t, skill in enumerate(queue, start=1):
            practice = done.get(skill, 0)
            logit = ability + SKILLS[skill] + 0.35 * min(practice, 6) - 1.0
            correct = int(rng.random() < 1 / (1 + math.exp(-logit)))
            done[skill] = practice + 1
            rows.append({"student": f"g{s + 1:02d}", "skill": skill, "correct": correct, "timestamp": t})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set", choices=["grade", "mastery"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", help="the SemEval data folder (default: ../shared/data/education)")
    args = parser.parse_args(argv)
    if args.set == "grade":
        from semeval import DEFAULT_DATA

        rows = grade_rows(Path(args.data) if args.data else DEFAULT_DATA)
    else:
        rows = mastery_rows()
    Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
