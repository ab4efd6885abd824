"""Length-sorted, token-budget batching.

Padding is wasted compute: a batch costs ``len(batch) * longest_item`` tokens.
Sorting items by length and cutting batches by a token budget (not a fixed
count) keeps that close to the real token count; the caller gets results back
in the original order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def token_budget_batches(
    lengths: Sequence[int], max_tokens: int, max_batch_size: int | None = None
) -> list[list[int]]:
    """Group item indices into batches whose padded size stays within ``max_tokens``.

    Items are taken longest first (so an out-of-memory error shows on the
    first batch, not the last). A batch's padded cost is
    ``len(batch) * max(length in batch)``; an item longer than the budget on
    its own forms a batch of one.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    current_max = 0
    for index in order:
        length = max(1, int(lengths[index]))
        longest = max(current_max, length)
        full = max_batch_size is not None and len(current) >= max_batch_size
        if current and (full or longest * (len(current) + 1) > max_tokens):
            batches.append(current)
            current, longest = [], length
        current.append(index)
        current_max = longest
    if current:
        batches.append(current)
    return batches


def map_in_batches(
    items: Sequence[T],
    lengths: Sequence[int],
    fn: Callable[[list[T]], Sequence[R]],
    max_tokens: int,
    max_batch_size: int | None = None,
) -> list[R]:
    """Apply ``fn`` to token-budget batches of ``items``; return results in input order."""
    results: list[R | None] = [None] * len(items)
    for batch in token_budget_batches(lengths, max_tokens, max_batch_size):
        outputs = fn([items[i] for i in batch])
        if len(outputs) != len(batch):
            raise RuntimeError(f"batch function returned {len(outputs)} results for {len(batch)} items")
        for index, output in zip(batch, outputs, strict=True):
            results[index] = output
    return results  # type: ignore[return-value]
