"""The labelling loop's pure parts: audit sampling and agreement between labellers.

>>> audit_selected("a1", 0.0), audit_selected("a1", 1.0)
(False, True)
>>> round(cohen_kappa([("abusive", "abusive"), ("benign", "benign"), ("abusive", "benign")]), 3)
0.4
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

VERDICTS = ("abusive", "benign", "unsure")


def audit_selected(alert_id: str, rate: float) -> bool:
    """Whether a labelled alert goes to a second labeller: a stable share `rate` of alert ids,
    the same in every process, so the console and the worker agree without sharing state."""
    digest = hashlib.sha256(b"audit\x1f" + alert_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of paired verdicts (first labeller, second labeller); None without pairs.

    1 is perfect agreement, 0 what chance alone gives; 1.0 when both only ever used one verdict.
    """
    pairs = list(pairs)
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[v] * second[v] for v in first) / (n * n)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)
