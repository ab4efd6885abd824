"""Text statistics (sample module written for verticals-testgen)."""

from __future__ import annotations

import re

VOWELS = "aeiouy"


def word_count(text: str) -> int:
    """Number of whitespace-separated words."""
    return len(text.split())


def syllables(word: str) -> int:
    """A rough syllable count for an English word."""
    word = word.lower().strip(".,;:!?")
    if not word:
        return 0
    count = 0
    previous_vowel = False
    for char in word:
        is_vowel = char in VOWELS
        if is_vowel and not previous_vowel:
            count += 1
        previous_vowel = is_vowel
    if word.endswith("e") and count > 1:
        count -= 1
    return max(count, 1)


def sentences(text: str) -> list[str]:
    """Split text into sentences on ., ! and ?."""
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return [part for part in parts if part]


def reading_ease(text: str) -> float:
    """Flesch reading ease score (higher is easier); 0.0 for empty text."""
    words = text.split()
    if not words:
        return 0.0
    sentence_count = max(len(sentences(text)), 1)
    syllable_count = sum(syllables(word) for word in words)
    score = 206.835 - 1.015 * (len(words) / sentence_count) - 84.6 * (syllable_count / len(words))
    return round(score, 2)


def most_common_word(text: str, ignore_case: bool = True) -> str | None:
    """The most frequent word (first seen wins a tie), or None for empty text."""
    counts: dict[str, int] = {}
    for word in re.findall(r"[A-Za-z']+", text):
        key = word.lower() if ignore_case else word
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda key: counts[key])
