"""Questions typed carelessly, made from well-typed ones the same way every run: lower case, no apostrophes, no
closing question mark, and one or two typos (a swapped, dropped, doubled or neighbouring-key letter) in words of
five letters or more."""

from __future__ import annotations

import random
import re

_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def typed_carelessly(question: str, rng: random.Random) -> str:
    words = question.lower().replace("'", "").replace("’", "").rstrip("?").strip().split()
    long = [i for i, word in enumerate(words) if re.fullmatch(r"[a-z]{5,}", word)]
    for i in rng.sample(long, min(len(long), rng.choice([1, 2]))):
        words[i] = _typo(words[i], rng)
    return " ".join(words)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "drop", "double", "near"])
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    row = next(row for row in _KEYBOARD if word[i] in row)
    at = row.index(word[i])
    return word[:i] + row[at - 1 if at and rng.random() < 0.5 else min(at + 1, len(row) - 1)] + word[i + 1 :]
