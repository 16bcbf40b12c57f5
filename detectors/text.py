"""Near-duplicate text: normalisation and compact MinHash signatures (datasketch).

Texts are normalised so that trivial variations still match: case folded, URLs reduced to
their domain, numbers to `0`, emoji and punctuation dropped. The shingles are the words and
word pairs. A signature keeps the lowest 8 bits of each of `PERMUTATIONS` MinHash values
(b-bit MinHash, Li and König 2010): 32 bytes a text, with an unbiased Jaccard estimate.

The MinHash is datasketch's (legacy scheme, CRC-32 of the shingles, seed 1) computed here in
one vectorised step over all shingles, bit for bit the same values; and it is computed once
per distinct normalised text among the recent ones (`CACHED_TEXTS`), since campaigns repeat
their texts.

>>> a = signature("FREE iPhone 17 giveaway! Only 12 left, claim yours now https://giftdrop.top/p/1a")
>>> b = signature("free iphone 17 giveaway! only 85 left, grab yours now 🔥 https://giftdrop.top/go/9f")
>>> c = signature("anyone know a good place for dinner near the beach tonight")
>>> similarity(a, b) > 0.6, similarity(a, c) < 0.3
(True, True)
>>> normalise("Win $500 at https://Spam.example/x?id=42 NOW!!")
['win', '0', 'at', 'spam.example', 'now']
"""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict
from itertools import chain, pairwise

import numpy as np
from datasketch import MinHash

PERMUTATIONS = 32
MIN_TOKENS = 3  # shorter texts carry too little to compare

_URL = re.compile(r"(?:https?://|www\.)([^/\s?#]+)[^\s]*", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W_]+(?:['.-][^\W_]+)*")
_DIGIT = re.compile(r"\d").search
# Each byte: itself for an ASCII letter, digit or joint of `_WORD`, else a space.
_APART = bytes(b if b < 128 and (chr(b).isalnum() or chr(b) in "'.-") else 32 for b in range(256))
# The classic universal-hashing scheme of datasketch's MinHash, a third cheaper than the newer
# affine ones: permutation i maps a shingle's 32-bit hash h to ((a_i h + b_i) mod p) & 0xffffffff,
# in uint64 arithmetic (a_i h wraps around 2^64 as datasketch's does). Its parameters come from
# datasketch, so the values are its own.
_MINHASH = MinHash(num_perm=PERMUTATIONS, seed=1, hashfunc=zlib.crc32, scheme="legacy")
# One column each (a permutation a row): a text's shingles are then contiguous in each row.
_A, _B = (np.array(row, dtype=np.uint64)[:, None] for row in _MINHASH.permutations)
_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64(0xFFFFFFFF)
# Distinct normalised texts whose signatures are kept: about 200 bytes each.
CACHED_TEXTS = 8192
# Shingles hashed in one numpy step: 256 KiB of uint64 for each permutation.
CHUNK_SHINGLES = 32_768


def normalise(text: str) -> list[str]:
    """Lower-case word tokens, with URLs as their domain and every number as `0`."""
    text = text.lower()
    if "://" in text or "www." in text:  # what every URL the pattern matches contains
        text = _URL.sub(lambda m: f" {m.group(1)} ", text)
    if not text.isascii():
        return _WORD.findall(_NUMBER.sub(" 0 ", text))
    if _DIGIT(text):
        text = _NUMBER.sub(" 0 ", text)
    # What `_WORD.findall` gives, without the pattern for most words: in ASCII a word is a
    # run of letters and digits, joined by single ' . or -, so no word spans any other
    # character. Split there, the runs of letters and digits are words, those with a joint
    # only at their ends (a sentence's last word) are words once stripped, and only the
    # others need the pattern.
    words = []
    for run in text.encode().translate(_APART).decode().split():
        if not run.isalnum():
            stripped = run.strip("'.-")
            if not stripped.isalnum():
                words += _WORD.findall(run)
                continue
            run = stripped
        words.append(run)
    return words


def shingles(text: str) -> frozenset[str]:
    """The distinct words and word pairs of the normalised text, of which its signature is
    made.

    >>> sorted(shingles("Going with the")), len(shingles("the the the"))
    (['going', 'going with', 'the', 'with', 'with the'], 2)
    """
    words = normalise(text)
    # Words never hold a space, so a pair is no word.
    return frozenset([*words, *map(" ".join, pairwise(words))])


def signature(text: str) -> bytes | None:
    """The 32-byte b-bit MinHash of the text's words and word pairs; None if too short."""
    words = normalise(text)
    if len(words) < MIN_TOKENS:
        return None
    # Words never hold a space, so the joined words name the shingles unambiguously.
    return _signature(" ".join(words))


def signatures(texts: list[str]) -> list[bytes | None]:
    """`signature` of each text, the MinHash of those not seen recently in one numpy step.

    >>> texts = ["free phone at prize.example now", "hi", "", "free phone at prize.example now!"]
    >>> signatures(texts) == [signature(t) for t in texts]
    True
    """
    out: list[bytes | None] = [None] * len(texts)
    todo: dict[str, list[int]] = {}  # normalised words -> positions, for those not cached
    for i, text in enumerate(texts):
        if not text:
            continue
        words = normalise(text)
        if len(words) < MIN_TOKENS:
            continue
        joined = " ".join(words)
        cached = _cached.get(joined)
        if cached is not None:
            _cached.move_to_end(joined)
            out[i] = cached
        else:
            todo.setdefault(joined, []).append(i)
    if todo:
        for joined, sig in zip(todo, _minhash(list(todo)), strict=True):
            _remember(joined, sig)
            for i in todo[joined]:
                out[i] = sig
    return out


# Signatures of recent distinct normalised texts, least recently used first.
_cached: OrderedDict[str, bytes] = OrderedDict()


def _remember(words: str, sig: bytes) -> None:
    _cached[words] = sig
    if len(_cached) > CACHED_TEXTS:
        _cached.popitem(last=False)


def _signature(words: str) -> bytes:
    """The signature of normalised words, joined by spaces."""
    sig = _cached.get(words)
    if sig is None:
        [sig] = _minhash([words])
        _remember(words, sig)
    else:
        _cached.move_to_end(words)
    return sig


def _shingle_hashes(words: str) -> list[int]:
    """The CRC-32 of each word and each pair of adjacent words."""
    encoded = words.encode().split(b" ")  # a space is one byte of UTF-8, and in no other
    crc32 = zlib.crc32
    hashes = list(map(crc32, encoded))
    # CRC-32 continues from a prefix's: the hash of b"a b" is that of b" b" after b"a".
    return hashes + list(map(crc32, [b" " + word for word in encoded[1:]], hashes))


def _minhash(texts: list[str]) -> list[bytes]:
    """The signatures of normalised texts (words joined by spaces, at least one each): the
    minimum of each permutation over the hashes of the words and word pairs, low 8 bits. A
    shingle that occurs twice changes no minimum, so the shingles need not be made distinct
    first. Worked in chunks of about `CHUNK_SHINGLES`: one array for a large batch would
    spend its time waiting on memory."""
    return minhash_sets([_shingle_hashes(words) for words in texts])


def minhash_sets(sets: list[list[int]]) -> list[bytes]:
    """The signatures of sets of 32-bit hashes (at least one each, hashes rather than raw
    small numbers, whose minima the permutations would not spread), as `_minhash` makes them
    of texts: what detectors/synchrony.py compares accounts' activity times with.

    >>> a, b = minhash_sets([[zlib.crc32(b"%d" % i) for i in r] for r in (range(100), range(10, 110))])
    >>> 0.7 < similarity(a, b) < 0.95
    True
    """
    sizes = [len(members) for members in sets]
    flat = np.fromiter(chain.from_iterable(sets), dtype=np.uint64, count=sum(sizes))
    return minhash_flat(flat, sizes)


def minhash_flat(hashes: np.ndarray, sizes: list[int]) -> list[bytes]:
    """`minhash_sets` of sets laid end to end in one uint64 array, `sizes[i]` hashes the
    i-th (at least one each)."""
    out: list[bytes] = []
    first = 0  # the chunk's first set, and its first hash
    at = 0
    while first < len(sizes):
        last, end = first, at
        while last < len(sizes) and (end == at or end - at + sizes[last] <= CHUNK_SHINGLES):
            end += sizes[last]
            last += 1
        starts = np.cumsum([0, *sizes[first : last - 1]])
        values = hashes[None, at:end] * _A  # a permutation a row
        values += _B
        values %= _PRIME
        values &= _MAX_HASH
        # A set a row; the conversion to uint8 keeps the low 8 bits.
        mins = np.minimum.reduceat(values, starts, axis=1).T.astype(np.uint8, order="C")
        chunk = mins.tobytes()
        out.extend(chunk[i : i + PERMUTATIONS] for i in range(0, len(chunk), PERMUTATIONS))
        first, at = last, end
    return out


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures, in [0, 1]."""
    if len(a) != len(b):
        raise ValueError("signatures of different lengths")
    # Equal bytes are the zero bytes of the XOR: counted in C rather than byte by byte.
    xor = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    equal = xor.to_bytes(len(a), "big").count(0) / len(a)
    return max(0.0, (equal - 1 / 256) / (1 - 1 / 256))


def similarities(sigs: list[bytes], others: list[bytes]) -> np.ndarray:
    """`similarity` of each of `sigs` (rows) with each of `others` (columns) at once: the
    same values, bit for bit (the same arithmetic on the same whole numbers)."""
    width = len(sigs[0]) if sigs else 0
    if any(len(sig) != width for sig in chain(sigs, others)):
        raise ValueError("signatures of different lengths")
    a = np.frombuffer(b"".join(sigs), np.uint8).reshape(len(sigs), width)
    b = np.frombuffer(b"".join(others), np.uint8).reshape(len(others), width)
    equal = (a[:, None, :] == b[None, :, :]).sum(axis=2) / width
    values: np.ndarray = np.maximum(0.0, (equal - 1 / 256) / (1 - 1 / 256))
    return values
