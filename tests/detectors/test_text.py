"""The text signature against datasketch's MinHash, which it computes itself."""

from __future__ import annotations

import itertools
import random
import re
import zlib

import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import text
from detectors.text import MIN_TOKENS, PERMUTATIONS, normalise, signature

_URL = re.compile(r"(?:https?://|www\.)([^/\s?#]+)[^\s]*", re.IGNORECASE)


def reference_normalise(value: str) -> list[str]:
    """The normalisation as first written: every pattern applied to every text."""
    value = _URL.sub(lambda m: f" {m.group(1)} ", value.lower())
    value = re.sub(r"\d+(?:[.,]\d+)*", " 0 ", value)
    return re.findall(r"[^\W_]+(?:['.-][^\W_]+)*", value)


def reference_signature(value: str) -> bytes | None:
    """The signature by datasketch itself: distinct shingles, one MinHash per text."""
    words = reference_normalise(value)
    if len(words) < MIN_TOKENS:
        return None
    shingles = {w.encode() for w in words}
    shingles.update(f"{a} {b}".encode() for a, b in itertools.pairwise(words))
    minhash = MinHash(num_perm=PERMUTATIONS, seed=1, hashfunc=zlib.crc32, scheme="legacy")
    minhash.update_batch(list(shingles))
    return bytes((minhash.hashvalues & 0xFF).astype("uint8"))


WORDS = ["free", "iPhone", "giveaway", "claim", "now", "the", "a", "café", "ÉTÉ", "日本語",
         "don't", "e-mail", "3.14", "1,000", "42", "🔥", "!!", "www.Spam.example/x", "_x_",
         "https://giftdrop.top/p/1a?x=2", "http://a.b", "Straße", "ǅemal", "x" * 40]  # fmt: skip


def test_signature_is_datasketchs_on_many_texts() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        words = rng.choices(WORDS, k=rng.randint(0, 30))
        value = rng.choice([" ", "  ", "\n", ", "]).join(words)
        assert normalise(value) == reference_normalise(value)
        assert signature(value) == reference_signature(value), value


def test_signatures_of_a_batch_are_datasketchs_text_by_text() -> None:
    rng = random.Random(8)
    batch = [" ".join(rng.choices(WORDS, k=rng.randint(0, 30))) for _ in range(500)]
    batch.append(" ".join(f"w{i:05d}z" for i in range(text.CHUNK_SHINGLES)))  # a chunk of its own
    batch += [" ".join(rng.choices(WORDS, k=rng.randint(3, 30))) for _ in range(50)]
    text._cached.clear()  # every text hashed in the batch's numpy steps
    assert text.signatures(batch) == [reference_signature(value) for value in batch]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_signature_is_datasketchs_on_any_text(value: str) -> None:
    assert normalise(value) == reference_normalise(value)
    assert signature(value) == reference_signature(value)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ09 '.-_,:/#?!\t\x1f\x7fwhtps"), max_size=80))
def test_ascii_texts_are_split_as_the_pattern_splits_them(value: str) -> None:
    """ASCII texts take a path of their own (joints at a word's ends, inside it, doubled,
    alone; numbers with separators; URLs; underscores and control characters)."""
    assert normalise(value) == reference_normalise(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=40))
def test_repeated_words_and_texts_keep_the_signature(words: list[str]) -> None:
    value = " ".join(words)
    first = signature(value)
    assert first == reference_signature(value)
    assert signature(value) == first  # from the cache


def test_signature_cache_is_bounded() -> None:
    def word(i: int) -> str:  # numbers normalise to 0: distinct texts need letters
        return "".join(chr(ord("a") + int(digit)) for digit in str(i))

    for i in range(text.CACHED_TEXTS + 100):
        signature(f"distinct text number {word(i)} here")
    assert len(text._cached) == text.CACHED_TEXTS
    newest, _ = text._cached.popitem()
    assert newest == f"distinct text number {word(text.CACHED_TEXTS + 99)} here"


# Signatures from a few bytes, so that pairs have every count of equal bytes.
SIGNATURES = st.lists(
    st.binary(min_size=PERMUTATIONS, max_size=PERMUTATIONS).map(lambda b: bytes(x % 3 for x in b)),
    min_size=1,
    max_size=6,
)


@given(SIGNATURES, SIGNATURES)
def test_similarities_at_once_are_similarity_pair_by_pair(a: list[bytes], b: list[bytes]) -> None:
    matrix = text.similarities(a, b).tolist()
    assert matrix == [[text.similarity(x, y) for y in b] for x in a]


def test_similarities_refuse_signatures_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        text.similarities([bytes(PERMUTATIONS)], [bytes(PERMUTATIONS), bytes(PERMUTATIONS - 1)])
