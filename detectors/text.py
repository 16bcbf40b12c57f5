"""Near-duplicate text: normalisation and compact MinHash signatures (datasketch).

Texts are normalised so that trivial variations still match: case folded, URLs reduced to
their domain, numbers to `0`, emoji and punctuation dropped. The shingles are the words and
word pairs. A signature keeps the lowest 8 bits of each of `PERMUTATIONS` MinHash values
(b-bit MinHash, Li and König 2010): 32 bytes a text, with an unbiased Jaccard estimate.

>>> a = signature("FREE iPhone 17 giveaway! Only 12 left, claim yours now https://giftdrop.top/p/1a")
>>> b = signature("free iphone 17 giveaway! only 85 left, grab yours now 🔥 https://giftdrop.top/go/9f")
>>> c = signature("anyone know a good place for dinner near the beach tonight")
>>> similarity(a, b) > 0.6, similarity(a, c) < 0.3
(True, True)
>>> normalise("Win $500 at https://Spam.example/x?id=42 NOW!!")
['win', '0', 'at', 'spam.example', 'now']
"""

from __future__ import annotations

import itertools
import re
import zlib

from datasketch import MinHash

PERMUTATIONS = 32
MIN_TOKENS = 3  # shorter texts carry too little to compare

_URL = re.compile(r"(?:https?://|www\.)([^/\s?#]+)[^\s]*", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W_]+(?:['.-][^\W_]+)*")
# One MinHash, cleared for each text: building one per text costs more than hashing it.
# The classic universal-hashing scheme is a third cheaper than the newer affine ones.
_MINHASH = MinHash(num_perm=PERMUTATIONS, seed=1, hashfunc=zlib.crc32, scheme="legacy")


def normalise(text: str) -> list[str]:
    """Lower-case word tokens, with URLs as their domain and every number as `0`."""
    text = _URL.sub(lambda m: f" {m.group(1)} ", text.lower())
    text = _NUMBER.sub(" 0 ", text)
    return _WORD.findall(text)


def signature(text: str) -> bytes | None:
    """The 32-byte b-bit MinHash of the text's words and word pairs; None if too short."""
    words = normalise(text)
    if len(words) < MIN_TOKENS:
        return None
    shingles = {w.encode() for w in words}
    shingles.update(f"{a} {b}".encode() for a, b in itertools.pairwise(words))
    _MINHASH.clear()
    _MINHASH.update_batch(list(shingles))
    return bytes((_MINHASH.hashvalues & 0xFF).astype("uint8"))


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures, in [0, 1]."""
    if len(a) != len(b):
        raise ValueError("signatures of different lengths")
    # Equal bytes are the zero bytes of the XOR: counted in C rather than byte by byte.
    xor = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    equal = xor.to_bytes(len(a), "big").count(0) / len(a)
    return max(0.0, (equal - 1 / 256) / (1 - 1 / 256))
