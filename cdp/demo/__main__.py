"""``python -m cdp.demo``: generate the demo data set from the command line.

Prints only counts and paths, never record contents (the data imitates personal data).
"""

from __future__ import annotations

import argparse

from cdp.demo.generator import generate
from cdp.demo.noise import NOISE_LEVELS
from cdp.settings import data_paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cdp.demo", description=__doc__)
    parser.add_argument("--home", default=None, help="data directory (default: CDP_HOME or ./data)")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--noise", choices=list(NOISE_LEVELS), default="default")
    args = parser.parse_args(argv)
    report = generate(data_paths(args.home), people=args.people, seed=args.seed,
                      noise=args.noise)
    for source, count in report.records.items():
        print(f"{source:16} {count:>9,} records  ({len(report.files[source])} files)")
    print(f"{'total':16} {report.total_records:>9,} records for {report.people:,} persons "
          f"+ {report.anonymous_visitors:,} anonymous visitors in {report.seconds:.1f} s")
    print(f"truth: {report.truth_files[0]}")


if __name__ == "__main__":
    main()
