"""Accuracy of profiles.traits.ticket_classifier against the demo ground truth.

Not a test. Run ``.venv/bin/python benchmarks/ticket_classifier_accuracy.py [--home DIR]``
(default: a fresh temporary demo of 10,000 people). Reads the generated
``landing/support_tickets/tickets.csv`` and ``truth/ticket_labels.csv`` and prints the
accuracy, the accuracy per language and the confusion matrix (rows = truth, columns =
predicted). Prints only counts, never ticket text.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cdp.settings import data_paths  # noqa: E402
from profiles.traits.ticket_classifier import LABELS, classify, language  # noqa: E402


def evaluate(home: Path) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, bool]]]:
    """(truth, predicted) counts and (language, correct) counts over all demo tickets."""
    paths = data_paths(home)
    with open(paths.truth / "ticket_labels.csv", newline="", encoding="utf-8") as handle:
        truth = {row["ticket_id"]: row["label"] for row in csv.DictReader(handle)}
    pairs: Counter[tuple[str, str]] = Counter()
    by_language: Counter[tuple[str, bool]] = Counter()
    tickets = paths.source_landing("support_tickets") / "tickets.csv"
    with open(tickets, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            predicted = classify(row["subject"], row["text"])
            label = truth[row["ticket_id"]]
            pairs[(label, predicted)] += 1
            by_language[(language(row["text"]), label == predicted)] += 1
    return pairs, by_language


def report(pairs: Counter[tuple[str, str]], by_language: Counter[tuple[str, bool]]) -> str:
    total = sum(pairs.values())
    correct = sum(n for (label, predicted), n in pairs.items() if label == predicted)
    lines = [f"tickets: {total}", f"accuracy: {correct / total:.3f}"]
    for lang in ("de", "en"):
        right, wrong = by_language[(lang, True)], by_language[(lang, False)]
        if right + wrong:
            lines.append(f"accuracy {lang}: {right / (right + wrong):.3f} ({right + wrong})")
    lines.append("confusion (rows truth, columns predicted):")
    lines.append(f"{'':>10}" + "".join(f"{p:>11}" for p in LABELS))
    for label in LABELS:
        lines.append(f"{label:>10}" + "".join(f"{pairs[(label, p)]:>11}" for p in LABELS))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="data directory with generated demo data")
    parser.add_argument("--people", type=int, default=10_000)
    args = parser.parse_args()
    home = args.home
    if home is None:
        from cdp.demo.generator import generate

        home = Path(tempfile.mkdtemp(prefix="cdp-tickets-"))
        generate(data_paths(home).ensure(), people=args.people, seed=42)
    print(report(*evaluate(home)))


if __name__ == "__main__":
    main()
