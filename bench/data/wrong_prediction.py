#!/usr/bin/env python3
"""Count the words of each text file in a folder and print the ten most common."""

import argparse
import collections
import pathlib
import re
import sys

WORD = re.compile(r"[A-Za-z']+")


def words_of(path: pathlib.Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        print(f"skipping {path}: {error}", file=sys.stderr)
        return []
    return [word.lower() for word in WORD.findall(text)]


def count(folder: pathlib.Path, suffix: str) -> collections.Counter:
    counter: collections.Counter = collections.Counter()
    for path in sorted(folder.rglob(f"*{suffix}")):
        if path.is_file():
            counter.update(words_of(path))
    return counter


def report(counter: collections.Counter, top: int) -> None:
    total = sum(counter.values())
    print(f"{total} words, {len(counter)} different")
    for word, number in counter.most_common(top):
        share = number / total if total else 0.0
        print(f"{word:>20} {number:>8} {share:7.2%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("--suffix", default=".txt")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    report(count(args.folder, args.suffix), args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
