"""Organic traffic: a population of accounts posting, messaging and reporting on a daily cycle.

The population is fixed by the seed: heavy-tailed (Zipf) activity and popularity, an account
creation time, a country and a device per account. On top of it a steady stream of newly
created accounts keeps about 3% of accounts younger than seven days at any event time.

`OrganicTraffic.minute` draws the events of one span of event time: Poisson counts around the
daily profile `diurnal` (with a slow random wander), then per event an actor, a surface and
kind, a target for messages and comments, a text and sometimes a link. Reports are drawn as
`(reporter_id, target_actor_id or None, reason)`; a report without a target is resolved when
the minute is emitted, to the author of a recent piece of content.
"""

from __future__ import annotations

import math
import random
from itertools import accumulate
from typing import Any

from detectors.events import format_rfc3339

DAY = 86400.0
NEW_ACCOUNT_S = 7 * DAY

# Item kinds, in the per-minute lists of (ts, seq, kind, payload) merged and sorted by core.
CONTENT = 0  # payload: a content-events value; event_id and content_id are assigned on emission
REPORT = 1  # payload: (reporter account, target_actor_id or None, reason)

Item = tuple[float, int, int, Any]
Account = tuple[str, str, str, str]  # actor_id, actor_created_at, country, device_hash

_W = 2 * math.pi / 24


def diurnal(t: float) -> float:
    """Multiplier of the mean rate at event time `t` (UTC): about 0.3 at 04:00, 1.6 at 20:00.

    Two harmonics, so it is smooth and its mean over a day is exactly 1.

    >>> round(diurnal(4 * 3600.0), 2), round(diurnal(20 * 3600.0), 2)
    (0.3, 1.6)
    """
    h = (t % DAY) / 3600.0
    return 1.0 + 0.51 * math.cos(_W * (h - 17.5)) + 0.25 * math.cos(2 * _W * (h - 21.25))


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw: exact for small means, normal approximation above 50."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def zipf_cum_weights(n: int, s: float, q: float) -> list[float]:
    return list(accumulate(1.0 / (r + q) ** s for r in range(n)))


# (surface, kind, share of content, link probability, min words, extra words, has a target)
COMBOS: tuple[tuple[str, str, float, float, int, int, bool], ...] = (
    ("feed", "post", 0.55 * 0.55, 0.12, 5, 20, False),
    ("feed", "comment", 0.55 * 0.35, 0.03, 3, 15, True),
    ("feed", "share", 0.55 * 0.10, 0.60, 3, 9, False),
    ("groups", "post", 0.20 * 0.45, 0.10, 5, 20, False),
    ("groups", "comment", 0.20 * 0.50, 0.03, 3, 15, True),
    ("groups", "share", 0.20 * 0.05, 0.60, 3, 9, False),
    ("messenger", "message", 0.20, 0.05, 3, 11, True),
    ("marketplace", "post", 0.05 * 0.60, 0.10, 5, 15, False),
    ("marketplace", "message", 0.05 * 0.30, 0.02, 3, 9, True),
    ("marketplace", "comment", 0.05 * 0.10, 0.02, 3, 9, True),
)
COMBO_CW = list(accumulate(c[2] for c in COMBOS))
NEWCOMER_SHARE = 0.02  # share of organic content by accounts younger than seven days


def content_share(signal: str) -> float:
    """Expected share of organic content counted by a content signal (per-account ones: 0)."""
    if signal == "content":
        return 1.0
    if signal == "content.new_actors":
        return NEWCOMER_SHARE
    family, _, value = signal.partition(":")
    if family == "content.surface":
        return sum(c[2] for c in COMBOS if c[0] == value)
    if family == "content.kind":
        return sum(c[2] for c in COMBOS if c[1] == value)
    return 0.0


TARGETED_SHARE = sum(c[2] for c in COMBOS if c[6])

REASONS = (
    ("spam", 0.38),
    ("harassment", 0.18),
    ("scam", 0.12),
    ("nudity", 0.08),
    ("hate", 0.07),
    ("misinformation", 0.06),
    ("impersonation", 0.04),
    ("violence", 0.03),
    ("other", 0.03),
    ("self_harm", 0.01),
)
REASON_NAMES = [r for r, _ in REASONS]
REASON_CW = list(accumulate(w for _, w in REASONS))
ABUSIVE_TARGET_SHARE = 0.4  # share of reports about the small set of somewhat-abusive accounts

COUNTRIES = (
    ("US", 0.28),
    ("IN", 0.12),
    ("BR", 0.08),
    ("ID", 0.06),
    ("GB", 0.05),
    ("MX", 0.05),
    ("PH", 0.05),
    ("DE", 0.04),
    ("FR", 0.04),
    ("NG", 0.04),
    ("TR", 0.03),
    ("JP", 0.03),
    ("CA", 0.03),
    ("ES", 0.03),
    ("IT", 0.03),
    ("VN", 0.02),
    ("EG", 0.02),
)
COUNTRY_NAMES = [c for c, _ in COUNTRIES]
COUNTRY_CW = list(accumulate(w for _, w in COUNTRIES))

DOMAINS = (
    "youtube.com",
    "instagram.com",
    "tiktok.com",
    "reddit.com",
    "en.wikipedia.org",
    "bbc.co.uk",
    "nytimes.com",
    "theguardian.com",
    "amazon.com",
    "spotify.com",
    "cnn.com",
    "twitch.tv",
    "imgur.com",
    "espn.com",
    "medium.com",
    "github.com",
    "etsy.com",
    "ebay.com",
    "allrecipes.com",
    "weather.com",
)
DOMAIN_CW = zipf_cum_weights(len(DOMAINS), 1.0, 1.0)

_WORDS = """
the i you to and a it is of that in this my for so just be have was on not with me we
what but are like all your do they its can get no if at one good out up now about time
know really how think people when love go day see will much today more would there here
back great new too got some make want still right going well then them from thank thanks
yes lol oh need also who any really why did has been year best only last first way look
home work friends family night week weekend tomorrow morning happy nice beautiful amazing
game team play watch video music song movie show news story photo picture post group page
free price sale selling pickup condition used brand box offer deal shipping local city
food dinner lunch coffee recipe kitchen garden dog cat kids baby school class party trip
beach summer winter rain weather car bike road traffic town phone app update new old
birthday congrats congratulations welcome everyone guys please help question anyone know
does recommend looking best place near around open closed store shop market event tonight
agree exactly true same fun funny crazy wow cool awesome sad sorry miss hope soon wait
call text message later sure okay maybe never always again long little big small hot cold
"""
VOCAB = tuple(dict.fromkeys(_WORDS.split()))  # in rough order of frequency
VOCAB_CW = zipf_cum_weights(len(VOCAB), 0.9, 8.0)
ENDINGS = ("", "", "", ".", ".", "!", "?", " :)", "!!")


def url(rng: random.Random, domain: str) -> str:
    return f"https://{domain}/{rng.getrandbits(40):010x}"


def content_value(
    ts: float,
    account: Account,
    kind: str,
    surface: str,
    text: str,
    target: str | None = None,
    links: list[str] | None = None,
) -> dict[str, Any]:
    """A content-events value; `event_id` and `content_id` are filled in on emission."""
    value: dict[str, Any] = {
        "event_id": "",
        "ts": format_rfc3339(ts),
        "actor_id": account[0],
        "kind": kind,
        "surface": surface,
        "content_id": "",
        "text": text,
    }
    if target is not None:
        value["target_id"] = target
    if links:
        value["links"] = links
    value["actor_created_at"] = account[1]
    value["attrs"] = {"country": account[2], "device_hash": account[3]}
    return value


class Population:
    """The accounts of one simulation: `size` established ones plus a stream of newcomers.

    Established account `i` is `u{i:07d}`; newcomer `j` is `u{size + j:07d}`, created at
    `start - 7 days + (j + jitter) * newcomer_spacing`, so a fixed number of them is younger
    than seven days at any time. Account numbers from `first_free` on are free for attacks.
    """

    def __init__(self, seed: int, size: int, start: float, duration_s: float) -> None:
        rng = random.Random(f"{seed}:population")
        self.seed = seed
        self.size = size
        self.start = start
        self.numbers = list(range(size))
        countries = rng.choices(COUNTRY_NAMES, cum_weights=COUNTRY_CW, k=size)
        uniform, bits = rng.uniform, rng.getrandbits
        # Mostly months to years old: log-uniform between ~11 days and ~10 years.
        self.accounts: list[Account] = [
            (
                f"u{i:07d}",
                format_rfc3339(start - (8.0 + 10 ** uniform(0.5, 3.55)) * DAY),
                countries[i],
                f"{bits(64):016x}",
            )
            for i in range(size)
        ]
        by_activity = self.numbers[:]
        rng.shuffle(by_activity)
        by_popularity = self.numbers[:]
        rng.shuffle(by_popularity)
        # The account at rank r of a random order gets the Zipf weight of rank r.
        activity = [0.0] * size
        for rank, w in enumerate(1.0 / (r + 30) ** 1.0 for r in range(size)):
            activity[by_activity[rank]] = w
        popularity = [0.0] * size
        for rank, w in enumerate(1.0 / (r + 10) ** 1.0 for r in range(size)):
            popularity[by_popularity[rank]] = w
        total_a, total_p = sum(activity), sum(popularity)
        self.activity = [w / total_a for w in activity]
        self.popularity = [w / total_p for w in popularity]
        self.activity_cw = list(accumulate(activity))
        self.popularity_cw = list(accumulate(popularity))
        self.by_popularity = by_popularity
        # A small set of somewhat-abusive accounts that draw a steady share of the reports,
        # each mostly for one reason of its own.
        n_abusive = max(5, size // 150)
        self.abusive = rng.sample(self.numbers, min(n_abusive, size))
        self.abusive_set = frozenset(self.abusive)
        self.abusive_cw = zipf_cum_weights(len(self.abusive), 1.0, 3.0)
        self.abusive_reason = {
            a: rng.choices(REASON_NAMES, cum_weights=REASON_CW)[0] for a in self.abusive
        }
        self.newcomer_slots = max(1, round(0.03 * size))
        self.newcomer_spacing = NEW_ACCOUNT_S / self.newcomer_slots
        self.first_free = (
            size + math.floor((duration_s + NEW_ACCOUNT_S) / self.newcomer_spacing) + 1
        )
        self._newcomers: dict[int, Account] = {}

    def newcomer_range(self, t0: float, t1: float) -> tuple[int, int]:
        """Newcomers created before `t0` and younger than seven days until `t1` (inclusive)."""
        lo = math.floor((t1 - self.start) / self.newcomer_spacing) + 1
        hi = math.floor((t0 - self.start + NEW_ACCOUNT_S) / self.newcomer_spacing) - 1
        return lo, hi

    def newcomer(self, j: int) -> Account:
        account = self._newcomers.get(j)
        if account is None:
            # Seeded per newcomer, so its attributes do not depend on who asked first.
            rng = random.Random(f"{self.seed}:newcomer:{j}")
            created = self.start - NEW_ACCOUNT_S + (j + rng.random()) * self.newcomer_spacing
            account = (
                f"u{self.size + j:07d}",
                format_rfc3339(created),
                rng.choices(COUNTRY_NAMES, cum_weights=COUNTRY_CW)[0],
                f"{rng.getrandbits(64):016x}",
            )
            self._newcomers[j] = account
        return account

    def id(self, number: int) -> str:
        return f"u{number:07d}"


class OrganicTraffic:
    """Draws the organic events of consecutive spans of event time."""

    def __init__(self, population: Population, seed: int, rate: float, report_ratio: float) -> None:
        self.pop = population
        self.rate = rate
        self.report_ratio = report_ratio
        self.content_rng = random.Random(f"{seed}:content")
        self.report_rng = random.Random(f"{seed}:reports")
        self.noise_rng = random.Random(f"{seed}:noise")
        self.wander = 0.0  # AR(1) log-deviation of the rate from the profile

    def expected(self, t: float) -> float:
        """Expected organic content events per second at `t`, before the random wander."""
        return self.rate * diurnal(t)

    def minute(self, t0: float, t1: float, seq: list[int]) -> list[Item]:
        """The organic items of [t0, t1); `seq` is a one-element running sequence counter."""
        # A slow wander (AR(1), 6% standard deviation), so the rate is not a perfect curve;
        # the -sd**2/2 keeps its mean at the profile.
        step = self.noise_rng.gauss(0.0, 0.06 * math.sqrt(1 - 0.95**2))
        self.wander = 0.95 * self.wander + step
        lam = self.expected((t0 + t1) / 2) * (t1 - t0) * math.exp(self.wander - 0.06**2 / 2)
        items = self._content(t0, t1, poisson(self.content_rng, lam), seq)
        items.extend(self._reports(t0, t1, poisson(self.report_rng, lam * self.report_ratio), seq))
        return items

    def _content(self, t0: float, t1: float, n: int, seq: list[int]) -> list[Item]:
        if n == 0:
            return []
        rng, pop = self.content_rng, self.pop
        rand, choices = rng.random, rng.choices
        accounts = pop.accounts
        span_ms = int((t1 - t0) * 1000)
        actors = choices(pop.numbers, cum_weights=pop.activity_cw, k=n)
        combos = choices(COMBOS, cum_weights=COMBO_CW, k=n)
        targets = choices(pop.numbers, cum_weights=pop.popularity_cw, k=n)
        lo, hi = pop.newcomer_range(t0, t1)
        newcomers = lo <= hi
        lengths = [c[4] + int(c[5] * rand() ** 2) for c in combos]
        words = choices(VOCAB, cum_weights=VOCAB_CW, k=sum(lengths))
        at = 0
        number = seq[0]
        items: list[Item] = []
        for i in range(n):
            ts = t0 + int(rand() * span_ms) / 1000
            surface, kind, _, link_p, _, _, has_target = combos[i]
            actor = actors[i]
            if newcomers and rand() < NEWCOMER_SHARE:
                account = pop.newcomer(rng.randint(lo, hi))
                actor = -1
            else:
                account = accounts[actor]
            end = at + lengths[i]
            text = " ".join(words[at:end]) + ENDINGS[int(rand() * len(ENDINGS))]
            at = end
            target_id = None
            if has_target:
                target = targets[i]
                if target == actor:
                    target = (target + 1) % pop.size
                target_id = accounts[target][0]
            links = None
            if rand() < link_p:
                links = [url(rng, choices(DOMAINS, cum_weights=DOMAIN_CW)[0])]
            value = content_value(ts, account, kind, surface, text, target_id, links)
            items.append((ts, number, CONTENT, value))
            number += 1
        seq[0] = number
        return items

    def _reports(self, t0: float, t1: float, n: int, seq: list[int]) -> list[Item]:
        if n == 0:
            return []
        rng, pop = self.report_rng, self.pop
        rand = rng.random
        span_ms = int((t1 - t0) * 1000)
        reporters = rng.choices(pop.numbers, cum_weights=pop.activity_cw, k=n)
        reasons = rng.choices(REASON_NAMES, cum_weights=REASON_CW, k=n)
        number = seq[0]
        items: list[Item] = []
        for i in range(n):
            ts = t0 + int(rand() * span_ms) / 1000
            reason = reasons[i]
            target: str | None = None
            if rand() < ABUSIVE_TARGET_SHARE:
                abuser = rng.choices(pop.abusive, cum_weights=pop.abusive_cw)[0]
                target = pop.accounts[abuser][0]
                if rand() < 0.7:
                    reason = pop.abusive_reason[abuser]
                if abuser == reporters[i]:
                    target = None
            items.append((ts, number, REPORT, (pop.accounts[reporters[i]], target, reason)))
            number += 1
        seq[0] = number
        return items
