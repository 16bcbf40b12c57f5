"""Injected attacks and their ground truth.

Each attack is planned from its scheduled start (who takes part, how much it sends) before any
event is drawn, so the ground truth needs no event generation. Volumes are calibrated against
the organic rate at the scheduled time of day, so that an attack adds to each signal it is
about at least 1.5 times `lift_needed` events a minute: 40% of the signal's organic count, five
Poisson standard deviations of it, and five events, whichever is most. Other signals the attack
touches are listed when the expected lift there reaches `lift_needed`, and left out otherwise.

Accounts an attack creates get account numbers after every organic one, so their ids look
like any other account's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from detectors.events import format_rfc3339, parse_rfc3339
from simulator.organic import (
    CONTENT,
    COUNTRY_NAMES,
    REPORT,
    TARGETED_SHARE,
    VOCAB,
    VOCAB_CW,
    Account,
    Item,
    Population,
    content_share,
    content_value,
    diurnal,
    poisson,
)

HOUR = 3600.0
DAY = 86400.0

# Nominal length of each scenario; an attack is shortened to the spacing between attacks.
DURATIONS = {
    "spam_wave": 30 * 60.0,
    "report_brigade": 5 * 60.0,
    "surface_surge": 20 * 60.0,
    "harassment_burst": 10 * 60.0,
    "bot_ring": 60 * 60.0,
    "compromised_account": 30 * 60.0,
    "fake_engagement": 45 * 60.0,
    "mass_messaging": 15 * 60.0,
    "popular_account": 60 * 60.0,
    "new_account": 45 * 60.0,
}
KINDS = tuple(DURATIONS)
# Decoys: organic behaviour that looks unusual and must not be alerted on. Their ground truth
# lists the accounts, marked `"decoy": true`; an alert on one is a false positive.
DECOYS = frozenset({"popular_account", "new_account"})


def lift_needed(base: float) -> float:
    """Added events a minute that clearly stand out from an organic per-minute count `base`."""
    return max(5.0, 0.4 * base, 5.0 * math.sqrt(base))


@dataclass
class Context:
    """What planning needs: the population, the organic rates, and fresh account numbers."""

    pop: Population
    rate: float
    report_ratio: float
    scale: float
    next_free: int

    def per_minute(self, t: float) -> float:
        """Expected organic content events a minute at `t`."""
        return self.rate * 60.0 * diurnal(t)

    def elevated(self, t: float, signal: str, added: float) -> bool:
        """Whether `added` content events a minute clearly lift `signal` at `t`."""
        return added >= lift_needed(self.per_minute(t) * content_share(signal))

    def fresh_accounts(
        self,
        rng: random.Random,
        n: int,
        created: tuple[float, float],
        countries: list[str],
        devices: list[str],
    ) -> list[Account]:
        """`n` new accounts created between the two given times, from a few countries/devices."""
        accounts = []
        for _ in range(n):
            accounts.append(
                (
                    f"u{self.next_free:07d}",
                    format_rfc3339(rng.uniform(*created)),
                    rng.choice(countries),
                    rng.choice(devices),
                )
            )
            self.next_free += 1
        return accounts


@dataclass
class Attack:
    """One scheduled attack: its ground truth and what it needs to draw its events."""

    kind: str
    scenario_id: str
    start: float
    end: float
    seed: str
    actors: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The ground-truth line of the contract."""
        record: dict[str, Any] = {
            "scenario_id": self.scenario_id,
            "kind": self.kind,
            "start": format_rfc3339(self.start),
            "end": format_rfc3339(self.end),
            "actors": sorted(self.actors),
            "targets": sorted(self.targets),
            "signals": list(self.signals),
        }
        if self.kind in DECOYS:
            record["decoy"] = True
        return record

    def plan(self, rng: random.Random, ctx: Context) -> None:
        raise NotImplementedError

    def items(self, ctx: Context, seq: list[int]) -> list[Item]:
        """Every event of the attack as sorted items; `seq` is the running sequence counter."""
        rng = random.Random(f"{self.seed}:events")
        raw = self.draw(rng, ctx)
        raw.sort(key=lambda pair: pair[0])
        items: list[Item] = []
        number = seq[0]
        for ts, kind, payload in raw:
            items.append((ts, number, kind, payload))
            number += 1
        seq[0] = number
        return items

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        raise NotImplementedError

    def times(self, rng: random.Random, n: int) -> list[float]:
        span_ms = int((self.end - self.start) * 1000)
        return [self.start + int(rng.random() * span_ms) / 1000 for _ in range(n)]


EMOJI = ("🔥", "💰", "✅", "🎁", "👉", "⚡", "💯", "‼️", "")

# (template, word-swap choices, number range, domain stem)
SPAM_TEMPLATES: tuple[tuple[str, tuple[str, ...], tuple[int, int], str], ...] = (
    (
        "{e} FREE {item} giveaway! Only {n} left, {w} yours now {e}",
        ("claim", "grab", "get"),
        (3, 97),
        "giftdrop",
    ),
    (
        "I made ${n} this week working from home {e} {w} how here",
        ("see", "find out", "learn"),
        (900, 4900),
        "earnfast",
    ),
    (
        "{e} Crypto airdrop is live: {n} free tokens for the first wallets, {w} yours {e}",
        ("claim", "connect", "verify"),
        (100, 5000),
        "airdrop-claim",
    ),
    (
        "Your parcel is on hold {e} pay the ${n}.99 redelivery fee {w} to avoid return",
        ("today", "now", "within 24h"),
        (1, 4),
        "parcel-redeliver",
    ),
    (
        "{e} {n}% OFF designer bags, {w} stock clearance {e}",
        ("final", "last", "huge"),
        (60, 90),
        "luxe-outlet",
    ),
)
SPAM_ITEMS = ("iPhone 17", "PS5 Pro", "$500 gift card", "MacBook Air", "Stanley cup")
SPAM_TLDS = (".shop", ".top", ".xyz", ".click", ".live")


class SpamWave(Attack):
    """Freshly created accounts posting near-duplicate link spam on the feed.

    Adds about the organic content rate again, so content doubles for the length of the wave.
    """

    def plan(self, rng: random.Random, ctx: Context) -> None:
        organic = ctx.per_minute(self.start)
        self.per_minute = max(organic * rng.uniform(0.8, 1.2), 1.5 * lift_needed(organic))
        self.per_minute *= ctx.scale
        countries = rng.sample(COUNTRY_NAMES, rng.randint(1, 2))
        devices = [f"{rng.getrandbits(64):016x}" for _ in range(rng.randint(3, 8))]
        created = (self.start - 20 * HOUR, self.start - 2 * HOUR)
        self.accounts = ctx.fresh_accounts(rng, rng.randint(40, 80), created, countries, devices)
        self.template = rng.choice(SPAM_TEMPLATES)
        self.item = rng.choice(SPAM_ITEMS)
        self.domain = f"{self.template[3]}{rng.randint(10, 99)}{rng.choice(SPAM_TLDS)}"
        self.actors = [a[0] for a in self.accounts]
        self.signals = [
            "content",
            "content.new_actors",
            "content.kind:post",
            "content.surface:feed",
        ]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        template, swaps, (lo, hi), _ = self.template
        n = poisson(rng, self.per_minute * (self.end - self.start) / 60)
        out: list[tuple[float, int, Any]] = []
        for ts in self.times(rng, n):
            text = template.format(
                e=rng.choice(EMOJI), n=rng.randint(lo, hi), w=rng.choice(swaps), item=self.item
            )
            link = f"https://{self.domain}/{rng.choice(('p', 'go', 'r', 'c'))}/{rng.getrandbits(24):06x}"
            account = rng.choice(self.accounts)
            text = " ".join(f"{text} {link}".split())  # an empty emoji leaves no gap
            value = content_value(ts, account, "post", "feed", text, links=[link])
            out.append((ts, CONTENT, value))
        return out


BRIGADE_REASONS = ("harassment", "hate", "impersonation", "spam")
BRIGADE_REASON_WEIGHTS = (0.55, 0.2, 0.15, 0.1)


class ReportBrigade(Attack):
    """Tens of accounts, mostly young, reporting one account for one reason within minutes."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        pop = ctx.pop
        base = ctx.per_minute(self.start) * ctx.report_ratio
        planned = rng.randint(40, 80)
        # Tight timing: as fast as needed to stand out from the organic reports, at most 5 min.
        length = min(self.end - self.start, max(90.0, planned / (1.5 * lift_needed(base)) * 60))
        self.end = self.start + length
        n = max(1, round(planned * ctx.scale))
        young = round(n * 0.75)
        created = (self.start - 5 * DAY, self.start - 0.5 * DAY)
        countries = rng.sample(COUNTRY_NAMES, 3)
        devices = [f"{rng.getrandbits(64):016x}" for _ in range(young)]
        reporters = [a[0] for a in ctx.fresh_accounts(rng, young, created, countries, devices)]
        target = rng.randrange(pop.size)
        while target in pop.abusive_set:
            target = rng.randrange(pop.size)
        ordinary = [i for i in rng.sample(pop.numbers, n - young + 1) if i != target]
        reporters += [pop.id(i) for i in ordinary[: n - young]]
        rng.shuffle(reporters)
        self.target = pop.id(target)
        self.reason = rng.choices(BRIGADE_REASONS, weights=BRIGADE_REASON_WEIGHTS)[0]
        self.actors = reporters
        self.targets = [self.target]
        self.signals = [f"reports.target:{self.target}", "reports", f"reports.reason:{self.reason}"]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        length = self.end - self.start
        out: list[tuple[float, int, Any]] = []
        for reporter in self.actors:
            ts = self.start + int(rng.betavariate(2.0, 2.0) * length * 1000) / 1000
            out.append((ts, REPORT, (reporter, self.target, self.reason)))
        return out


LISTING_ITEMS = (
    "iphone 13",
    "sofa",
    "mountain bike",
    "ps5",
    "winter tires",
    "baby stroller",
    "dining table",
    "air fryer",
    "gaming chair",
    "concert tickets",
    "puppy crate",
    "macbook",
)
LISTING_CONDITIONS = ("like new", "barely used", "good condition", "new in box", "works great")


class SurfaceSurge(Attack):
    """Marketplace suddenly at about five times its rate, from many existing accounts."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        pop = ctx.pop
        base = ctx.per_minute(self.start) * content_share("content.surface:marketplace")
        self.per_minute = max(4 * base * rng.uniform(0.9, 1.2), 1.5 * lift_needed(base))
        self.per_minute *= ctx.scale
        total = self.per_minute * (self.end - self.start) / 60
        wanted = int(min(400, max(30, total / 3), pop.size // 2))
        chosen: dict[int, None] = {}
        while len(chosen) < wanted:
            chosen[rng.choices(pop.numbers, cum_weights=pop.activity_cw)[0]] = None
        self.accounts = [pop.accounts[i] for i in chosen]
        self.actors = [a[0] for a in self.accounts]
        self.signals = ["content.surface:marketplace"] + [
            s
            for s in ("content.kind:post", "content")
            if ctx.elevated(self.start, s, self.per_minute)
        ]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        n = poisson(rng, self.per_minute * (self.end - self.start) / 60)
        out: list[tuple[float, int, Any]] = []
        for ts in self.times(rng, n):
            item = rng.choice(LISTING_ITEMS)
            condition = rng.choice(LISTING_CONDITIONS)
            extra = " ".join(rng.choices(VOCAB, cum_weights=VOCAB_CW, k=rng.randint(0, 6)))
            text = f"{item} for sale, {condition}, ${rng.randint(5, 400)} {extra}".strip()
            value = content_value(ts, rng.choice(self.accounts), "post", "marketplace", text)
            out.append((ts, CONTENT, value))
        return out


HARASSMENT = (
    "nobody wants you here",
    "log off forever",
    "you are pathetic",
    "everyone is laughing at you",
    "just disappear already",
    "delete your account",
    "you should be ashamed",
    "we all know what you did",
    "stop posting loser",
    "you will regret this",
)


class HarassmentBurst(Attack):
    """A pile-on: tens of accounts sending one person abusive messages within minutes."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        pop = ctx.pop
        lo = min(20, pop.size - 1)
        target = pop.by_popularity[rng.randint(lo, max(lo, min(2000, pop.size - 1)))]
        base = ctx.per_minute(self.start) * TARGETED_SHARE * pop.popularity[target]
        self.per_minute = max(rng.uniform(10, 20), 1.5 * lift_needed(base)) * ctx.scale
        count = rng.randint(20, 40)
        senders = [i for i in rng.sample(pop.numbers, count + 1) if i != target][:count]
        self.accounts = [pop.accounts[i] for i in senders]
        self.target = pop.id(target)
        self.actors = [a[0] for a in self.accounts]
        self.targets = [self.target]
        self.signals = [f"content.target:{self.target}"] + [
            s
            for s in ("content.kind:message", "content.surface:messenger", "content")
            if ctx.elevated(self.start, s, self.per_minute)
        ]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        n = poisson(rng, self.per_minute * (self.end - self.start) / 60)
        # A few ringleaders send most of the messages.
        weights = [1.0 / (i + 1) ** 0.8 for i in range(len(self.accounts))]
        senders = rng.choices(self.accounts, weights=weights, k=n)
        out: list[tuple[float, int, Any]] = []
        for ts, account in zip(self.times(rng, n), senders, strict=True):
            text = rng.choice(HARASSMENT)
            if rng.random() < 0.4:
                text = f"{text} {rng.choice(EMOJI)}".strip()
            if rng.random() < 0.3:
                text = text.upper()
            value = content_value(ts, account, "message", "messenger", text, target=self.target)
            out.append((ts, CONTENT, value))
        return out


def organic_text(rng: random.Random) -> str:
    return " ".join(rng.choices(VOCAB, cum_weights=VOCAB_CW, k=rng.randint(4, 14)))


def established(rng: random.Random, pop: Population, min_age_days: float) -> Account:
    """An organic account at least `min_age_days` old at the start of the simulation."""
    while True:
        account = pop.accounts[rng.randrange(pop.size)]
        if pop.start - parse_rfc3339(account[1]) >= min_age_days * DAY:
            return account


MESSAGE_SIGNALS = ("content.kind:message", "content.surface:messenger", "content")
PROMOS = (
    "Best deals of the week on {w}, check the link in bio {e}",
    "{w} giveaway for followers, like and share to enter {e}",
    "New drop: {w} at wholesale prices, limited stock {e}",
)
PROMO_WORDS = ("sneakers", "headphones", "watches", "perfume", "phone cases")
CHEERS = (
    "great post love this",
    "so true totally agree",
    "amazing content keep it up",
    "this is so inspiring wow",
    "love this so much thanks for sharing",
)
SCAM_TEXTS = (
    "hey is this you in this video?? {link}",
    "omg look what they posted about you {link}",
    "I found your photo here, you should see this {link}",
)


def lifted(ctx: Context, t: float, per_minute: float, signals: tuple[str, ...]) -> list[str]:
    """The signals among `signals` that `per_minute` added events clearly lift at `t`."""
    return [s for s in signals if ctx.elevated(t, s, per_minute)]


class BotRing(Attack):
    """A ring of young accounts posting promotional near-duplicates on a fixed schedule."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        countries = rng.sample(COUNTRY_NAMES, 1)
        devices = [f"{rng.getrandbits(64):016x}" for _ in range(3)]
        created = (self.start - 10 * DAY, self.start - 1 * DAY)
        self.accounts = ctx.fresh_accounts(rng, rng.randint(8, 15), created, countries, devices)
        self.period = rng.uniform(45.0, 90.0)
        self.word = rng.choice(PROMO_WORDS)
        self.actors = [a[0] for a in self.accounts]
        added = len(self.accounts) * 60.0 / self.period
        self.signals = lifted(ctx, self.start, added, ("content.new_actors",))

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for account in self.accounts:
            ts = self.start + rng.uniform(0, self.period)
            template = rng.choice(PROMOS)
            surface = rng.choice(("feed", "groups"))
            while ts < self.end:
                text = template.format(w=self.word, e=rng.choice(EMOJI)).strip()
                value = content_value(ts, account, "post", surface, text)
                out.append((ts, CONTENT, value))
                ts += self.period + rng.gauss(0.0, 0.5)
        return out


class CompromisedAccount(Attack):
    """An old, quiet account taken over: scam links sent to many accounts in messages."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.account = established(rng, ctx.pop, 365.0)
        self.per_minute = rng.uniform(4.0, 8.0)
        self.domain = f"video-view{rng.randint(10, 99)}{rng.choice(SPAM_TLDS)}"
        self.actors = [self.account[0]]
        self.signals = lifted(ctx, self.start, self.per_minute, MESSAGE_SIGNALS)

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        n = poisson(rng, self.per_minute * (self.end - self.start) / 60)
        out: list[tuple[float, int, Any]] = []
        template = rng.choice(SCAM_TEXTS)
        for ts in self.times(rng, n):
            link = f"https://{self.domain}/v/{rng.getrandbits(24):06x}"
            target = ctx.pop.id(rng.randrange(ctx.pop.size))
            value = content_value(
                ts, self.account, "message", "messenger", template.format(link=link), target, [link]
            )
            out.append((ts, CONTENT, value))
        return out


class FakeEngagement(Attack):
    """A ring of accounts commenting on and sharing a few accounts' posts, in lockstep."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        countries = rng.sample(COUNTRY_NAMES, 2)
        devices = [f"{rng.getrandbits(64):016x}" for _ in range(6)]
        created = (self.start - 40 * DAY, self.start - 3 * DAY)
        self.accounts = ctx.fresh_accounts(rng, rng.randint(15, 30), created, countries, devices)
        self.boosted = [ctx.pop.id(rng.randrange(ctx.pop.size)) for _ in range(3)]
        self.period = rng.uniform(60.0, 100.0)
        self.actors = [a[0] for a in self.accounts]
        self.targets = sorted(self.boosted)
        # Each boosted account gets a comment or share a few times a minute from the ring.
        added = len(self.accounts) * 60.0 / self.period
        self.signals = [f"content.target:{target}" for target in self.targets]
        young = sum(self.start - parse_rfc3339(a[1]) < 7 * DAY for a in self.accounts)
        new_actors = added * young / len(self.accounts)
        self.signals += lifted(ctx, self.start, new_actors, ("content.new_actors",))
        self.signals += lifted(ctx, self.start, 0.6 * added, ("content.kind:comment",))
        self.signals += lifted(ctx, self.start, 0.4 * added, ("content.kind:share",))

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for account in self.accounts:
            ts = self.start + rng.uniform(0, self.period)
            while ts < self.end:
                kind = "comment" if rng.random() < 0.6 else "share"
                text = f"{rng.choice(CHEERS)} {rng.choice(EMOJI)}".strip()
                target = rng.choice(self.boosted)
                out.append((ts, CONTENT, content_value(ts, account, kind, "feed", text, target)))
                ts += self.period + rng.gauss(0.0, 2.0)
        return out


class MassMessaging(Attack):
    """A new account messaging a scam to over a hundred accounts in minutes."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        created = (self.start - 3 * DAY, self.start - 1 * DAY)
        devices = [f"{rng.getrandbits(64):016x}"]
        [self.account] = ctx.fresh_accounts(rng, 1, created, rng.sample(COUNTRY_NAMES, 1), devices)
        self.per_minute = rng.uniform(10.0, 16.0) * max(ctx.scale, 0.5)
        self.domain = f"{rng.choice(SPAM_TEMPLATES)[3]}{rng.randint(10, 99)}{rng.choice(SPAM_TLDS)}"
        self.actors = [self.account[0]]
        signals = ("content.new_actors", *MESSAGE_SIGNALS)
        self.signals = lifted(ctx, self.start, self.per_minute, signals)

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        n = poisson(rng, self.per_minute * (self.end - self.start) / 60)
        template, swaps, (lo, hi), _ = rng.choice(SPAM_TEMPLATES)
        out: list[tuple[float, int, Any]] = []
        for ts in self.times(rng, n):
            link = f"https://{self.domain}/r/{rng.getrandbits(24):06x}"
            text = template.format(
                e=rng.choice(EMOJI), n=rng.randint(lo, hi), w=rng.choice(swaps), item="gift"
            )
            target = ctx.pop.id(rng.randrange(ctx.pop.size))
            value = content_value(
                ts, self.account, "message", "messenger", f"{text} {link}", target, [link]
            )
            out.append((ts, CONTENT, value))
        return out


class PopularAccount(Attack):
    """Decoy: an established creator posting and replying to friends in bursts for an hour."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.account = established(rng, ctx.pop, 400.0)
        self.friends = [ctx.pop.id(rng.randrange(ctx.pop.size)) for _ in range(15)]
        self.per_minute = rng.uniform(3.0, 5.0)
        self.actors = [self.account[0]]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        ts = self.start
        while ts < self.end:
            # Sessions of a few quick replies, then a pause: bursty, as people are.
            for _ in range(rng.randint(1, 8)):
                ts += rng.expovariate(1 / 8.0)
                if rng.random() < 0.7:
                    kind, target = "comment", rng.choice(self.friends)
                else:
                    kind, target = "post", None
                value = content_value(ts, self.account, kind, "feed", organic_text(rng), target)
                out.append((ts, CONTENT, value))
            ts += rng.expovariate(self.per_minute / 60 / 4)
        return [item for item in out if item[0] < self.end]


class NewAccount(Attack):
    """Decoy: an account created yesterday, posting ordinary things at an ordinary pace."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        created = (self.start - 1.5 * DAY, self.start - 0.5 * DAY)
        devices = [f"{rng.getrandbits(64):016x}"]
        [self.account] = ctx.fresh_accounts(rng, 1, created, rng.sample(COUNTRY_NAMES, 1), devices)
        self.per_minute = rng.uniform(0.6, 1.2)
        self.actors = [self.account[0]]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        n = poisson(rng, self.per_minute * (self.end - self.start) / 60)
        out: list[tuple[float, int, Any]] = []
        for ts in self.times(rng, n):
            kind = rng.choice(("post", "comment", "post", "share"))
            target = ctx.pop.id(rng.randrange(ctx.pop.size)) if kind == "comment" else None
            value = content_value(ts, self.account, kind, "feed", organic_text(rng), target)
            out.append((ts, CONTENT, value))
        return out


CLASSES: dict[str, type[Attack]] = {
    "spam_wave": SpamWave,
    "report_brigade": ReportBrigade,
    "surface_surge": SurfaceSurge,
    "harassment_burst": HarassmentBurst,
    "bot_ring": BotRing,
    "compromised_account": CompromisedAccount,
    "fake_engagement": FakeEngagement,
    "mass_messaging": MassMessaging,
    "popular_account": PopularAccount,
    "new_account": NewAccount,
}


def slots(
    scenarios: tuple[str, ...],
    duration_s: float,
    first_attack_s: float,
    attack_every_s: float | None,
) -> list[tuple[str, float, float]]:
    """(kind, offset, length) of each attack: the listed kinds in turn, every one inside the run.

    With no spacing given, the listed kinds are spread evenly over the rest of the duration,
    each once. An attack is no longer than the spacing, so attacks do not overlap.
    """
    if not scenarios or first_attack_s >= duration_s:
        return []
    every = attack_every_s
    if every is None:
        every = (duration_s - first_attack_s) / len(scenarios)
    out: list[tuple[str, float, float]] = []
    k = 0
    while (offset := first_attack_s + k * every) < duration_s:
        kind = scenarios[k % len(scenarios)]
        length = min(DURATIONS[kind], every)
        if offset + length <= duration_s:
            out.append((kind, offset, length))
        k += 1
    return out


def plan_attacks(
    seed: int,
    start: float,
    planned: list[tuple[str, float, float]],
    ctx: Context,
) -> list[Attack]:
    """Plan every scheduled attack, in order (fresh account numbers are handed out in order)."""
    attacks: list[Attack] = []
    counts: dict[str, int] = {}
    for index, (kind, offset, length) in enumerate(planned):
        counts[kind] = counts.get(kind, 0) + 1
        attack_seed = f"{seed}:attack:{index}"
        attack = CLASSES[kind](
            kind, f"{kind}-{counts[kind]}", start + offset, start + offset + length, attack_seed
        )
        attack.plan(random.Random(f"{attack_seed}:plan"), ctx)
        attacks.append(attack)
    return attacks
