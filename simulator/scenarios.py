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
    "copy_paste_campaign": 20 * 60.0,
    "link_campaign": 15 * 60.0,
    "brigade_ring": 60 * 60.0,
    "organic_meme": 12 * 3600.0,
    "viral_report_wave": 90 * 60.0,
    "sustained_shift_1_5x": 30 * 60.0,
    "sustained_shift_2x": 30 * 60.0,
    "sustained_shift_3x": 30 * 60.0,
    "organic_growth": 110 * 60.0,
    "viral_post": 90 * 60.0,
    "slow_brigade_20": 120 * 60.0,
    "slow_brigade_40": 120 * 60.0,
    "slow_brigade_80": 120 * 60.0,
    "slow_report_wave": 4 * 3600.0,
    "slow_pile_on_20": 75 * 60.0,
    "slow_pile_on_40": 75 * 60.0,
    "slow_pile_on_80": 75 * 60.0,
    "low_rate_automation_10": 4 * 3600.0,
    "low_rate_automation_25": 4 * 3600.0,
    "low_rate_automation_50": 4 * 3600.0,
    "night_shift": 6 * 3600.0,
    "slow_campaign_20": 4 * 3600.0,
    "slow_campaign_40": 4 * 3600.0,
    "slow_campaign_80": 4 * 3600.0,
    "organic_link_share": 5 * 3600.0,
    "slow_mass_messaging_2": 4 * 3600.0,
    "slow_mass_messaging_3": 4 * 3600.0,
    "slow_mass_messaging_4": 4 * 3600.0,
    "community_helper": 4 * 3600.0,
}
KINDS = tuple(DURATIONS)
# Decoys: organic behaviour that looks unusual and must not be alerted on. Their ground truth
# lists the accounts, marked `"decoy": true`; an alert on one is a false positive.
DECOYS = frozenset(
    {
        "popular_account",
        "new_account",
        "organic_meme",
        "viral_report_wave",
        "organic_growth",
        "viral_post",
        "slow_report_wave",
        "night_shift",
        "organic_link_share",
        "community_helper",
    }
)
# Sustained moderate shifts: a surface at a few times its rate, no window of it extreme. Not
# in the default day; `SimConfig.scenarios` (or `simulate --scenarios`) lists them.
SHIFTS = ("sustained_shift_1_5x", "sustained_shift_2x", "sustained_shift_3x")
SHIFT_FACTORS = {"sustained_shift_1_5x": 1.5, "sustained_shift_2x": 2.0, "sustained_shift_3x": 3.0}
SHIFT_FAMILY = (*SHIFTS, "organic_growth", "viral_post")
# Slow attacks: tens of accounts, each acting once or twice, paced over an hour or more so
# that no minute or ten minutes of them passes a detector's gate (nor, for the weakest slow
# campaigns, half an hour of near-identical texts or a new domain). Their strength (how many
# accounts, before the seeded spread of +-15%) is in their kind's name. Not in the default day.
SLOW_BRIGADES = {"slow_brigade_20": 20, "slow_brigade_40": 40, "slow_brigade_80": 80}
SLOW_PILE_ONS = {"slow_pile_on_20": 20, "slow_pile_on_40": 40, "slow_pile_on_80": 80}
LOW_RATE_AUTOMATION = {
    "low_rate_automation_10": 10,
    "low_rate_automation_25": 25,
    "low_rate_automation_50": 50,
}
SLOW_CAMPAIGNS = {"slow_campaign_20": 20, "slow_campaign_40": 40, "slow_campaign_80": 80}
# One young account messaging many accounts it never contacted, this many messages per ten
# minutes at its script's pace, kept under five in any ten minutes (the actor detector's gate).
SLOW_MASS_MESSAGING = {
    "slow_mass_messaging_2": 2,
    "slow_mass_messaging_3": 3,
    "slow_mass_messaging_4": 4,
}
BRIGADE_FAMILY = (*SLOW_BRIGADES, "slow_report_wave")
PILE_ON_FAMILY = (*SLOW_PILE_ONS, "viral_post")
# The night shift first: run from midnight, it falls at night.
AUTOMATION_FAMILY = ("night_shift", *LOW_RATE_AUTOMATION, "organic_meme")
CAMPAIGN_FAMILY = (*SLOW_CAMPAIGNS, "organic_link_share", "organic_meme")
MESSAGING_FAMILY = (*SLOW_MASS_MESSAGING, "community_helper", "organic_meme")
# Each family of quiet attacks with its decoys: `evaluate` reports each in a table of its own.
QUIET_FAMILIES = {
    "sustained_shift": SHIFT_FAMILY,
    "slow_brigade": BRIGADE_FAMILY,
    "slow_pile_on": PILE_ON_FAMILY,
    "low_rate_automation": AUTOMATION_FAMILY,
    "slow_campaign": CAMPAIGN_FAMILY,
    "slow_mass_messaging": MESSAGING_FAMILY,
}
# What a decoy may rightly cause: an organic report wave is a surge of reports against one
# account (content to review), and a report_brigade alert that calls it organic (`info`).
ALLOWED_ON_DECOYS = {
    "viral_report_wave": [
        {"detector": "volume_spike"},
        {"detector": "report_brigade", "severity": "info"},
    ],
}
ALLOWED_ON_DECOYS["slow_report_wave"] = ALLOWED_ON_DECOYS["viral_report_wave"]


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
    until: float = math.inf  # the end of the run

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
            if self.kind in ALLOWED_ON_DECOYS:
                record["allowed"] = ALLOWED_ON_DECOYS[self.kind]
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
        reporters = ctx.fresh_accounts(rng, young, created, countries, devices)
        target = rng.randrange(pop.size)
        while target in pop.abusive_set:
            target = rng.randrange(pop.size)
        ordinary = [i for i in rng.sample(pop.numbers, n - young + 1) if i != target]
        reporters += [pop.accounts[i] for i in ordinary[: n - young]]
        rng.shuffle(reporters)
        self.target = pop.id(target)
        self.reason = rng.choices(BRIGADE_REASONS, weights=BRIGADE_REASON_WEIGHTS)[0]
        self.reporters = reporters
        self.actors = [a[0] for a in reporters]
        self.targets = [self.target]
        self.signals = [f"reports.target:{self.target}", "reports", f"reports.reason:{self.reason}"]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        length = self.end - self.start
        out: list[tuple[float, int, Any]] = []
        for reporter in self.reporters:
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


COPY_PASTE = (
    ("Vote NO on measure {n}, they are lying to you", ("lying", "lieing", "not honest")),
    (
        "The election in district {n} was rigged, share before they delete this",
        ("rigged", "stolen"),
    ),
    ("Boycott {w} now, they fund the people destroying this country", ("brandco", "megamart")),
)


def _vary(rng: random.Random, text: str) -> str:
    """A copy-paster's small edits: case, a dropped or doubled word, punctuation, emoji."""
    words = text.split()
    if rng.random() < 0.3 and len(words) > 6:
        del words[rng.randrange(len(words))]
    if rng.random() < 0.3:
        at = rng.randrange(len(words))
        words.insert(at, words[at])
    out = " ".join(words)
    if rng.random() < 0.3:
        out = out.upper()
    return f"{out}{rng.choice(('', '!', '!!', '.', ' 🔥', ' ‼️'))}"


class CopyPasteCampaign(Attack):
    """Tens of accounts, young and old, each pasting one message a time or two as comments on
    many posts, with small edits: too few posts per account for any to stand out alone."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        countries = rng.sample(COUNTRY_NAMES, 2)
        devices = [f"{rng.getrandbits(64):016x}" for _ in range(10)]
        n = max(2, round(rng.randint(30, 60) * ctx.scale))
        young = n // 2
        created = (self.start - 20 * DAY, self.start - 2 * DAY)
        self.accounts = ctx.fresh_accounts(rng, young, created, countries, devices)
        self.accounts += [established(rng, ctx.pop, 60.0) for _ in range(n - young)]
        template, swaps = rng.choice(COPY_PASTE)
        self.text = template.format(n=rng.randint(10, 99), w=rng.choice(swaps))
        self.swaps = swaps
        self.actors = sorted({a[0] for a in self.accounts})

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for account in self.accounts:
            for ts in self.times(rng, rng.randint(1, 2)):
                target = ctx.pop.id(rng.randrange(ctx.pop.size))
                value = content_value(ts, account, "comment", "feed", _vary(rng, self.text), target)
                out.append((ts, CONTENT, value))
        return out


class LinkCampaign(Attack):
    """Tens of established accounts (bought or taken over) sharing one newly registered
    domain within minutes, each with its own ordinary-looking words."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        n = max(2, round(rng.randint(25, 50) * ctx.scale))
        self.accounts = [established(rng, ctx.pop, 30.0) for _ in range(n)]
        self.domain = f"news-{rng.getrandbits(24):06x}{rng.choice(SPAM_TLDS)}"
        self.actors = sorted({a[0] for a in self.accounts})

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for account in self.accounts:
            for ts in self.times(rng, rng.randint(1, 2)):
                link = f"https://{self.domain}/{rng.getrandbits(32):08x}"
                text = f"{organic_text(rng)} {link}"
                value = content_value(ts, account, "share", "feed", text, links=[link])
                out.append((ts, CONTENT, value))
        return out


class BrigadeRing(Attack):
    """One ring of young accounts mass-reporting three accounts in turn, a few minutes each,
    for one reason each: the lockstep pattern of a brigade for hire."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        pop = ctx.pop
        n = max(3, round(rng.randint(20, 30) * ctx.scale))
        countries = rng.sample(COUNTRY_NAMES, 2)
        devices = [f"{rng.getrandbits(64):016x}" for _ in range(6)]
        created = (self.start - 20 * DAY, self.start - 1 * DAY)
        self.reporters = ctx.fresh_accounts(rng, n, created, countries, devices)
        targets: set[str] = set()
        while len(targets) < 3:
            number = rng.randrange(pop.size)
            if number not in pop.abusive_set:
                targets.add(pop.id(number))
        self.order = sorted(targets)
        rng.shuffle(self.order)
        self.reasons = [rng.choice(BRIGADE_REASONS) for _ in self.order]
        self.actors = [a[0] for a in self.reporters]
        self.targets = sorted(targets)
        self.signals = [f"reports.target:{target}" for target in self.targets]
        # Each turn is about n reports in 3 minutes, all for one reason.
        self.signals += sorted({f"reports.reason:{reason}" for reason in self.reasons})
        base = ctx.per_minute(self.start) * ctx.report_ratio
        if 0.85 * n / 3 >= 1.5 * lift_needed(base):
            self.signals.append("reports")

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        gap = (self.end - self.start) / len(self.order)
        for k, (target, reason) in enumerate(zip(self.order, self.reasons, strict=True)):
            begin = self.start + k * gap
            for reporter in self.reporters:
                if rng.random() < 0.85:  # most of the ring takes part each time
                    ts = begin + int(rng.uniform(0, 180) * 1000) / 1000
                    out.append((ts, REPORT, (reporter, target, reason)))
        return out


def organic_like(
    rng: random.Random, ctx: Context, n: int, at: float, young_share: float
) -> list[Account]:
    """`n` unrelated accounts, `young_share` of them under 30 days old and the rest up to six
    years, from many countries and devices. Fresh account ids, so that no other scenario's
    accounts are among them."""
    young = sum(rng.random() < young_share for _ in range(n))
    accounts: list[Account] = []
    for count, created in (
        (young, (-30 * DAY, -1 * DAY)),
        (n - young, (-6 * 365 * DAY, -30 * DAY)),
    ):
        for _ in range(count):
            countries = [rng.choice(COUNTRY_NAMES)]
            devices = [f"{rng.getrandbits(64):016x}"]
            span = (at + created[0], at + created[1])
            accounts += ctx.fresh_accounts(rng, 1, span, countries, devices)
    rng.shuffle(accounts)
    return accounts


MEMES = (
    "when you finally fix the bug at 3am and it breaks something else",
    "me pretending to understand the group chat inside joke",
    "nobody: my cat at 5am knocking everything off the table",
)


class OrganicMeme(Attack):
    """Decoy: a meme copied by a couple of hundred unrelated people over half a day, rising
    and falling like any popular thing: many accounts, one text, but no coordination."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.accounts = organic_like(rng, ctx, rng.randint(120, 200), self.start, 0.1)
        self.text = rng.choice(MEMES)
        self.actors = sorted(a[0] for a in self.accounts)
        # A decoy may overlap attacks: a meme is around for half a day, cut by the run's end.
        length = DURATIONS["organic_meme"]
        self.middle, self.spread = self.start + length / 2, length / 5
        self.end = min(self.start + length, ctx.until)

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for account in self.accounts:
            ts = max(self.start, rng.gauss(self.middle, self.spread))
            if ts >= self.end:
                continue
            text = self.text + rng.choice(("", " lol", " 😂", " so true", " 💀 💀"))
            kind = rng.choice(("post", "share"))
            out.append((ts, CONTENT, content_value(ts, account, kind, "feed", text)))
        return out


VIRAL_REASONS = ("hate", "harassment", "violence", "other", "misinformation")
VIRAL_REASON_WEIGHTS = (0.45, 0.25, 0.1, 0.1, 0.1)


class ViralReportWave(Attack):
    """Decoy: a genuinely abusive post goes viral and many unrelated people report it, most
    in the first half hour, for the reasons each sees in it. Content to review, not a brigade."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        pop = ctx.pop
        self.reporters = organic_like(rng, ctx, rng.randint(60, 100), self.start, 0.3)
        self.target = pop.id(rng.randrange(pop.size))
        self.actors = sorted(a[0] for a in self.reporters)
        self.targets = [self.target]
        self.signals = [f"reports.target:{self.target}"]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for reporter in self.reporters:
            ts = min(self.end - 1, self.start + rng.expovariate(1 / 1200.0))
            reason = rng.choices(VIRAL_REASONS, weights=VIRAL_REASON_WEIGHTS)[0]
            out.append((ts, REPORT, (reporter, self.target, reason)))
        return out


# What each surface's shift or growth adds: (kind of content, addressed to an account).
SHIFT_SURFACES = {"groups": ("post", False), "marketplace": ("post", False)}
SHIFT_SURFACES["messenger"] = ("message", True)


def shifted(ctx: Context, t: float, added: float, signals: tuple[str, ...]) -> list[str]:
    """The signals among `signals` whose count `added` events a minute lift by one Poisson
    standard deviation or more at `t`: enough for a sustained lift to be evidence."""
    return [s for s in signals if added >= math.sqrt(ctx.per_minute(t) * content_share(s) + 1.0)]


class SustainedShift(Attack):
    """One surface at 1.5, 2 or 3 times its organic rate for half an hour, from tens of
    established accounts: no single minute stands out, thirty in a row do. Its strength is
    in its kind's name; `attack_scale` multiplies what it adds."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.surface = rng.choice(sorted(SHIFT_SURFACES))
        self.kind_of, self.addressed = SHIFT_SURFACES[self.surface]
        signal = f"content.surface:{self.surface}"
        base = ctx.per_minute(self.start) * content_share(signal)
        self.per_minute = (SHIFT_FACTORS[self.kind] - 1.0) * base * ctx.scale
        self.accounts = [established(rng, ctx.pop, 30.0) for _ in range(rng.randint(20, 60))]
        self.actors = sorted({a[0] for a in self.accounts})
        lifted = (f"content.kind:{self.kind_of}", "content")
        self.signals = [signal, *shifted(ctx, self.start, self.per_minute, lifted)]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        n = poisson(rng, self.per_minute * (self.end - self.start) / 60)
        out: list[tuple[float, int, Any]] = []
        for ts in self.times(rng, n):
            target = ctx.pop.id(rng.randrange(ctx.pop.size)) if self.addressed else None
            account = rng.choice(self.accounts)
            text = organic_text(rng)
            value = content_value(ts, account, self.kind_of, self.surface, text, target)
            out.append((ts, CONTENT, value))
        return out


class OrganicGrowth(Attack):
    """Decoy: one surface growing slowly from its organic rate to 1.5 to 2 times it over two
    hours (a feature launch, a season), from many unrelated accounts, then back."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.surface = rng.choice(sorted(SHIFT_SURFACES))
        self.kind_of, self.addressed = SHIFT_SURFACES[self.surface]
        signal = f"content.surface:{self.surface}"
        self.growth = rng.uniform(0.5, 1.0)
        self.accounts = organic_like(rng, ctx, rng.randint(150, 300), self.start, 0.1)
        self.actors = sorted(a[0] for a in self.accounts)
        peak = self.growth * ctx.per_minute(self.end) * content_share(signal)
        lifted = (signal, f"content.kind:{self.kind_of}", "content")
        self.signals = shifted(ctx, self.end, peak, lifted) or [signal]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        share = content_share(f"content.surface:{self.surface}")
        length = self.end - self.start
        t = self.start
        while t < self.end:
            # Added events a minute rise linearly from none to `growth` times the organic rate.
            ramp = (t - self.start) / length
            lam = self.growth * ramp * ctx.per_minute(t) * share
            for ts in sorted(t + rng.random() * 60.0 for _ in range(poisson(rng, lam))):
                target = ctx.pop.id(rng.randrange(ctx.pop.size)) if self.addressed else None
                value = content_value(
                    ts, rng.choice(self.accounts), self.kind_of, self.surface,
                    organic_text(rng), target,
                )  # fmt: skip
                out.append((ts, CONTENT, value))
            t += 60.0
        return out


class ViralPost(Attack):
    """Decoy: a popular account's post goes viral; unrelated people comment on it and share
    it, a few a minute at first, fading over the hour and a half."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        pop = ctx.pop
        self.target = pop.id(pop.by_popularity[rng.randint(0, min(50, pop.size - 1))])
        self.peak = rng.uniform(3.0, 6.0)  # added events a minute at the start
        self.fade = rng.uniform(20.0, 40.0) * 60.0  # time constant of the decay, seconds
        self.accounts = organic_like(rng, ctx, rng.randint(150, 300), self.start, 0.2)
        self.actors = sorted(a[0] for a in self.accounts)
        self.targets = [self.target]
        lifted = ("content.kind:comment", "content.surface:feed", "content")
        self.signals = [
            f"content.target:{self.target}",
            *shifted(ctx, self.start, self.peak, lifted),
        ]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        n = poisson(rng, self.peak * self.fade / 60.0)
        for _ in range(n):
            ts = self.start + rng.expovariate(1.0 / self.fade)
            if ts >= self.end:
                continue
            comment = rng.random() < 0.7
            kind, target = ("comment", self.target) if comment else ("share", None)
            text = organic_text(rng)
            value = content_value(ts, rng.choice(self.accounts), kind, "feed", text, target)
            out.append((ts, CONTENT, value))
        return out


def strength(rng: random.Random, ctx: Context, nominal: int) -> int:
    """How many accounts an attack of `nominal` strength brings: within 15% of it, scaled."""
    return max(2, round(nominal * rng.uniform(0.85, 1.15) * ctx.scale))


def crowd(
    rng: random.Random, ctx: Context, n: int, young_share: float, exclude: str, at: float
) -> list[Account]:
    """`n` distinct accounts as a crowd rallied online: `young_share` of them (about) created
    in the month before `at`, one device each from many countries, the rest established
    organic accounts; never the account `exclude`."""
    young = sum(rng.random() < young_share for _ in range(n))
    accounts: list[Account] = []
    for _ in range(young):
        created = (at - 30 * DAY, at - 1 * DAY)
        device = [f"{rng.getrandbits(64):016x}"]
        accounts += ctx.fresh_accounts(rng, 1, created, [rng.choice(COUNTRY_NAMES)], device)
    chosen = {exclude}
    while len(accounts) < n:
        account = established(rng, ctx.pop, 30.0)
        if account[0] not in chosen:
            chosen.add(account[0])
            accounts.append(account)
    rng.shuffle(accounts)
    return accounts


def victim(rng: random.Random, ctx: Context) -> str:
    """An ordinary, not abusive account with some following (popularity rank 20 to 2000)."""
    pop = ctx.pop
    lo = min(20, pop.size - 1)
    while True:
        number = pop.by_popularity[rng.randint(lo, max(lo, min(2000, pop.size - 1)))]
        if number not in pop.abusive_set:
            return pop.id(number)


def paced(rng: random.Random, start: float, low_min: float, high_min: float, end: float) -> float:
    """The end of an attack paced over `low_min` to `high_min` minutes, within its slot."""
    return min(end, start + rng.uniform(low_min, high_min) * 60.0)


class SlowBrigade(Attack):
    """Tens of accounts, some young and most established, each reporting one account once
    (a few twice) over one to two hours, mostly for one reason: a call to report it spread
    in a group chat, answered by each member when they see it."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.end = paced(rng, self.start, 60.0, 120.0, self.end)
        self.target = victim(rng, ctx)
        n = strength(rng, ctx, SLOW_BRIGADES[self.kind])
        self.reporters = crowd(rng, ctx, n, rng.uniform(0.15, 0.35), self.target, self.start)
        self.reason = rng.choices(BRIGADE_REASONS, weights=BRIGADE_REASON_WEIGHTS)[0]
        self.actors = [a[0] for a in self.reporters]
        self.targets = [self.target]
        self.signals = [f"reports.target:{self.target}"]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for reporter in self.reporters:
            for ts in self.times(rng, 2 if rng.random() < 0.15 else 1):
                # Most give the reason asked for; some pick what seems closest to them.
                reason = self.reason if rng.random() < 0.8 else rng.choice(BRIGADE_REASONS)
                out.append((ts, REPORT, (reporter, self.target, reason)))
        return out


class SlowReportWave(Attack):
    """Decoy: genuinely abusive content found by many unrelated people over hours, each
    reporting it for the reason they see in it, fewer as the hours pass. Content to review."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.reporters = organic_like(rng, ctx, rng.randint(60, 150), self.start, 0.3)
        self.target = ctx.pop.id(rng.randrange(ctx.pop.size))
        self.fade = rng.uniform(1.0, 2.0) * HOUR  # time constant of the decay
        # A decoy may overlap attacks: it lasts its hours, cut by the run's end.
        self.end = min(self.start + rng.uniform(3.0, 4.0) * HOUR, ctx.until)
        self.actors = sorted(a[0] for a in self.reporters)
        self.targets = [self.target]
        self.signals = [f"reports.target:{self.target}"]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for reporter in self.reporters:
            ts = self.start + rng.expovariate(1.0 / self.fade)
            if ts < self.end:
                reason = rng.choices(VIRAL_REASONS, weights=VIRAL_REASON_WEIGHTS)[0]
                out.append((ts, REPORT, (reporter, self.target, reason)))
        return out


# A pile-on's message: an opener (or none), two of the lines, an ending (or none).
PILE_ON_OPENERS = (
    "",
    "",
    "lol",
    "wow",
    "honestly",
    "imagine",
    "seriously",
    "ok so",
    "bro",
    "yikes",
)
PILE_ON_LINES = (
    *HARASSMENT,
    "you really thought this was a good take",
    "nobody asked for your opinion",
    "this is the dumbest thing I have read all week",
    "go back to lurking",
    "you are a joke and everyone sees it",
    "keep embarrassing yourself",
    "your followers should unfollow you",
    "how are you this clueless",
    "ratio plus nobody cares",
    "you ruin every thread you touch",
    "take the L and leave",
    "what a clown",
    "you are the reason people hate this site",
    "touch grass for once",
    "imagine being this wrong in public",
    "you should never post again",
    "people like you make me sick",
    "we are not going to stop until you are gone",
    "hope your boss sees this",
    "screenshot saved, you can't hide it",
)
PILE_ON_ENDINGS = ("", "", "", "🤡", "😂", "💀", "!!", "...", "lmao", "bye")


def hostile_text(rng: random.Random) -> str:
    first, second = rng.sample(PILE_ON_LINES, 2)
    text = " ".join(w for w in (rng.choice(PILE_ON_OPENERS), first) if w)
    text = f"{text}{rng.choice((', ', '. ', ' '))}{second} {rng.choice(PILE_ON_ENDINGS)}".strip()
    return text.upper() if rng.random() < 0.1 else text


class SlowPileOn(Attack):
    """A pile-on paced over an hour: tens of accounts, most established, each sending one
    person one or two hostile messages or replies, in words of their own."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.end = paced(rng, self.start, 45.0, 75.0, self.end)
        self.target = victim(rng, ctx)
        n = strength(rng, ctx, SLOW_PILE_ONS[self.kind])
        self.accounts = crowd(rng, ctx, n, rng.uniform(0.1, 0.3), self.target, self.start)
        self.messages = rng.uniform(0.3, 0.7)  # share in direct messages, the rest replies
        self.actors = [a[0] for a in self.accounts]
        self.targets = [self.target]
        self.signals = [f"content.target:{self.target}"]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for account in self.accounts:
            for ts in self.times(rng, 2 if rng.random() < 0.25 else 1):
                kind, surface = (
                    ("message", "messenger")
                    if rng.random() < self.messages
                    else ("comment", "feed")
                )
                value = content_value(ts, account, kind, surface, hostile_text(rng), self.target)
                out.append((ts, CONTENT, value))
        return out


# A scheduled account's post: an opener, a topic, a tail and an ending, each a few words.
CANNED_OPENERS = (
    "good morning friends",
    "daily reminder",
    "quick tip",
    "thought of the day",
    "hey everyone",
    "new update",
    "did you know",
    "weekend vibes",
    "motivation check",
    "fun fact",
    "just posted",
    "heads up",
)
CANNED_TOPICS = (
    "drink more water",
    "stretch your back every hour",
    "save a little every week",
    "the market opens higher",
    "our fall collection is in stores",
    "coffee tastes better with friends",
    "read ten pages before bed",
    "walk after lunch",
    "plants love the morning sun",
    "sleep is the best recovery",
    "small steps add up",
    "smile at a stranger",
    "call your parents",
    "learn one new word",
    "tidy desk tidy mind",
    "sunsets are free therapy",
    "stay curious",
    "check your tire pressure",
    "cook at home tonight",
    "back up your photos",
)
CANNED_TAILS = (
    "it really works",
    "trust me on this",
    "no excuses",
    "you will thank me later",
    "for a better week",
    "even on busy days",
    "worth it every time",
    "starting right now",
    "keep going",
    "little by little",
    "as simple as that",
    "more tomorrow",
    "share if you agree",
    "who is with me",
    "link coming soon",
)
CANNED_ENDINGS = ("", "", "#daily", "#motivation", "#tips", "#life", "✨", "💪", "☕", "🙌")


def canned_text(rng: random.Random) -> str:
    parts = (
        rng.choice(CANNED_OPENERS),
        rng.choice(CANNED_TOPICS),
        rng.choice(CANNED_TAILS),
        rng.choice(CANNED_ENDINGS),
    )
    return " ".join(p for p in parts if p)


class LowRateAutomation(Attack):
    """A set of aged accounts run by one scheduler for hours: each posts once per slot of
    one shared schedule (every 15 to 20 minutes, all at the same second give or take a few),
    short canned texts without links. No account posts twice in ten minutes."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        n = strength(rng, ctx, LOW_RATE_AUTOMATION[self.kind])
        countries = rng.sample(COUNTRY_NAMES, rng.randint(1, 3))
        devices = [f"{rng.getrandbits(64):016x}" for _ in range(max(2, n // 4))]
        created = (self.start - 120 * DAY, self.start - 20 * DAY)
        self.accounts = ctx.fresh_accounts(rng, n, created, countries, devices)
        self.surfaces = {a[0]: rng.choice(("feed", "feed", "groups")) for a in self.accounts}
        self.period = rng.uniform(15.0, 20.0) * 60.0
        self.jitter = rng.uniform(2.0, 6.0)  # seconds either side of the slot
        self.turnout = rng.uniform(0.75, 0.95)  # share of accounts posting in each slot
        # An attack may overlap others: it runs its hours, cut by the run's end.
        self.end = min(self.start + rng.uniform(3.0, 5.0) * HOUR, ctx.until)
        self.actors = [a[0] for a in self.accounts]
        burst = self.turnout * n  # posts in the minute of a slot
        feed = sum(s == "feed" for s in self.surfaces.values()) / n
        self.signals = lifted(ctx, self.start, burst, ("content", "content.kind:post"))
        self.signals += lifted(ctx, self.start, burst * feed, ("content.surface:feed",))
        self.signals += lifted(ctx, self.start, burst * (1 - feed), ("content.surface:groups",))

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        slot = self.start + self.jitter
        while slot + self.jitter < self.end:
            for account in self.accounts:
                if rng.random() < self.turnout:
                    ts = slot + rng.uniform(-self.jitter, self.jitter)
                    surface = self.surfaces[account[0]]
                    out.append(
                        (ts, CONTENT, content_value(ts, account, "post", surface, canned_text(rng)))
                    )
            slot += self.period
        return out


class NightShift(Attack):
    """Decoy: one to three people on a night shift posting and chatting at a steady pace
    through the night, for five to seven hours: regular, but as people are, not to the
    second. Listed where its slot falls at night (first, in a run from midnight)."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.accounts = organic_like(rng, ctx, rng.randint(1, 3), self.start, 0.0)
        self.gaps = {a[0]: rng.uniform(5.0, 12.0) * 60.0 for a in self.accounts}
        self.friends = [ctx.pop.id(rng.randrange(ctx.pop.size)) for _ in range(10)]
        # A decoy may overlap attacks: the shift lasts its hours, cut by the run's end.
        self.end = min(self.start + rng.uniform(5.0, 7.0) * HOUR, ctx.until)
        self.actors = [a[0] for a in self.accounts]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for account in self.accounts:
            gap = self.gaps[account[0]]
            ts = self.start + rng.uniform(0, gap)
            while ts < self.end:
                if rng.random() < 0.5:
                    kind, target = "comment", rng.choice(self.friends)
                else:
                    kind, target = "post", None
                surface = rng.choice(("feed", "groups"))
                value = content_value(ts, account, kind, surface, organic_text(rng), target)
                out.append((ts, CONTENT, value))
                ts += max(60.0, rng.gauss(gap, 0.3 * gap))
        return out


# A slow campaign's pitch, in parts: each post takes one wording of each part (a proof not
# always) in one of a few orders, so that its texts share most of their words but are not
# copies. (hook, claim, proof, call to action, domain stem)
PITCHES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (
        (
            "just read this",
            "finally someone wrote it down",
            "everyone needs to see this",
            "can't believe nobody talks about this",
            "my doctor never told me this",
        ),
        (
            "the simple trick that lowers high blood pressure for good",
            "a simple trick that brings blood pressure down for good",
            "how one cheap habit fixes high blood pressure",
            "the easy fix for high blood pressure they keep quiet about",
        ),
        (
            "my aunt tried it and stopped her pills",
            "it worked for my dad in two weeks",
            "my neighbour swears by it",
            "a friend tried it and feels ten years younger",
        ),
        (
            "read it before they take it down",
            "read it before it gets deleted",
            "share it with your family",
            "have a look before it disappears",
        ),
        ("health-report", "natural-cure", "wellness-daily"),
    ),
    (
        (
            "not financial advice but",
            "wish I had known this sooner",
            "this changed everything for me",
            "ok this is real",
        ),
        (
            "ordinary people are doubling their savings with this new app",
            "regular people are doubling their savings with this app",
            "normal folks double their savings with one new app",
            "this new app doubles your savings while you sleep",
        ),
        (
            "my cousin made back his rent in a week",
            "a coworker showed me her account",
            "my brother got paid out yesterday",
            "I tried it with a small amount first",
        ),
        (
            "sign up before the spots run out",
            "only open to new users this week",
            "get in before they close it",
            "see for yourself",
        ),
        ("smart-yield", "wealth-now", "coin-growth"),
    ),
    (
        (
            "they don't want you to know this",
            "the news won't show you this",
            "wake up people",
            "look what they are hiding",
        ),
        (
            "the water in our city is being mixed with chemicals",
            "chemicals are being put in our city water",
            "our tap water is being mixed with chemicals on purpose",
            "the city is putting chemicals in the water",
        ),
        (
            "an engineer who worked there confirmed it",
            "a whistleblower leaked the documents",
            "someone inside the plant admitted it",
            "the documents are all here",
        ),
        (
            "spread this everywhere",
            "share before it gets censored",
            "send this to everyone you know",
            "don't let them bury this",
        ),
        ("truth-files", "real-report", "open-leaks"),
    ),
)
PITCH_ORDERS = ((0, 1, 2, 3), (1, 2, 0, 3), (0, 1, 3, 2), (2, 1, 3, 0), (1, 0, 2, 3))
LINK_TLDS = (".info", ".news", ".site", ".online", ".live")
DRIP_S = 8 * 60.0  # a slow campaign brings in one account every this long at most


def paraphrase(rng: random.Random, pitch: tuple[tuple[str, ...], ...], link: str) -> str:
    """One wording of the pitch: a choice of each part in one of a few orders, a link."""
    words = [rng.choice(part) for part in pitch[:4]]
    if rng.random() < 0.3:
        words[2] = ""  # no proof this time
    parts = [words[i] for i in rng.choice(PITCH_ORDERS) if words[i]]
    text = rng.choice((". ", ", ", " - ", "! ")).join(parts)
    text = text[0].upper() + text[1:] if rng.random() < 0.5 else text
    at = rng.choice((len(parts), len(parts) - 1))  # the link last or before the last part
    if at == len(parts):
        return f"{text} {link}{rng.choice(('', '', ' 👀', ' 🙏', ' ‼️'))}"
    head = rng.choice((". ", ", ")).join(parts[:at])
    return f"{head} {link} {parts[at]}"


class SlowCampaign(Attack):
    """Tens of accounts, most of them young, each posting one paraphrase of one pitch, a few
    two, with a link to one new domain (a post in five to a mirror) over two to four hours:
    one account's turn every eight minutes or more, so that half an hour holds few of them
    (fewer than eight accounts, at 20 accounts)."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        n = strength(rng, ctx, SLOW_CAMPAIGNS[self.kind])
        self.accounts = crowd(rng, ctx, n, rng.uniform(0.6, 0.9), "", self.start)
        self.pitch = rng.choice(PITCHES)
        stems = rng.sample(self.pitch[4], 2)
        self.domains = [
            f"{stem}-{rng.getrandbits(16):04x}{rng.choice(LINK_TLDS)}" for stem in stems
        ]
        self.surfaces = rng.choice((("feed",), ("feed", "groups")))
        # One account's turn every eight minutes or more, as four hours allow. An attack may
        # overlap others: it runs its hours, cut by the run's end.
        self.length = min(4.0 * HOUR, max(rng.uniform(2.0, 4.0) * HOUR, n * DRIP_S))
        self.end = min(self.start + self.length, ctx.until)
        self.actors = [a[0] for a in self.accounts]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        n, last = len(self.accounts), self.start + self.length
        for i, account in enumerate(self.accounts):
            # Each account's turn in the drip; a few post again 20 to 90 minutes later.
            first = self.start + (i + rng.random()) / n * self.length
            times = [first]
            if rng.random() < 0.2 and first + 20 * 60.0 < last:
                times.append(min(last - 1.0, first + rng.uniform(20.0, 90.0) * 60.0))
            for ts in times:
                if ts >= self.end:
                    continue  # past the run's end
                domain = self.domains[1] if rng.random() < 0.2 else self.domains[0]
                link = f"https://{domain}/{rng.choice(('a', 'p', 'story', 'read'))}/{rng.getrandbits(24):06x}"
                text = paraphrase(rng, self.pitch, link)
                kind = rng.choice(("post", "share"))
                surface = rng.choice(self.surfaces)
                value = content_value(ts, account, kind, surface, text, links=[link])
                out.append((ts, CONTENT, value))
        return out


# News sites the organic traffic does not link to: new to the monitor when a story travels.
NEWS_SITES = ("riverside-gazette", "northern-courier", "valley-tribune", "coastal-herald")
NEWS_TLDS = (".com", ".co.uk", ".news")


class OrganicLinkShare(Attack):
    """Decoy: a news story on a site not linked before, found and shared by 20 to 35 unrelated,
    mostly established accounts over four to six hours, each once in words of their own."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.accounts = organic_like(rng, ctx, rng.randint(20, 35), self.start, 0.15)
        self.domain = f"{rng.choice(NEWS_SITES)}{rng.choice(NEWS_TLDS)}"
        self.story = f"{rng.getrandbits(32):08x}"
        # A decoy may overlap attacks: the story travels its hours, cut by the run's end.
        self.length = rng.uniform(4.0, 6.0) * HOUR
        self.end = min(self.start + self.length, ctx.until)
        self.actors = sorted(a[0] for a in self.accounts)

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        for account in self.accounts:
            ts = self.start + int(rng.random() * self.length * 1000) / 1000
            if ts >= self.end:
                continue
            link = f"https://{self.domain}/{self.story}"
            text = f"{organic_text(rng)} {link}"
            kind = rng.choice(("post", "share"))
            out.append((ts, CONTENT, content_value(ts, account, kind, "feed", text, links=[link])))
        return out


# Short scams sent one by one to strangers: {n} a name, {p} a prize, {a} an app, {l} the link.
SCAM_LINES = (
    "hey {n} is this you in this video?? {l}",
    "omg {n} look what they posted about you {l}",
    "congrats you were picked for a {p}, claim it here {l}",
    "hi {n}, your {p} is waiting, confirm your details {l}",
    "I found your photo here, you should see this {l}",
    "hello dear, I saw your profile and wanted to say hi, add me on {a}",
    "{n}, I made $900 this week from home, ask me how on {a}",
)
SCAM_NAMES = ("babe", "dear", "friend", "hun", "mate", "sis", "bro")
SCAM_PRIZES = ("gift card", "free phone", "cash prize", "voucher", "parcel")
SCAM_APPS = ("telegram", "whatsapp", "signal", "the app in my bio")
SCAM_LINK_TLDS = (".top", ".click", ".xyz", ".live", ".link")
GATE_EVENTS = 5  # the actor detector's events in ten minutes (ABUSEMON_ACTOR_MIN_EVENTS)


class SlowMassMessaging(Attack):
    """A young account messaging short, varied scams to accounts it never contacted, one by
    one, for two to four hours: two to four messages per ten minutes (the number in its kind's
    name) at random intervals, its script holding back whatever would make a fifth within ten
    minutes, so that no ten minutes of it pass the actor detector's gate. Most messages carry a
    link to a domain of its own (50 to 100% of them); the others ask to move to another app."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        created = (self.start - 10 * DAY, self.start - 1 * DAY)
        devices = [f"{rng.getrandbits(64):016x}"]
        [self.account] = ctx.fresh_accounts(rng, 1, created, rng.sample(COUNTRY_NAMES, 1), devices)
        self.per_10m = SLOW_MASS_MESSAGING[self.kind]
        self.link_share = rng.uniform(0.5, 1.0)
        stem = rng.choice(("claim", "prize", "secure", "view", "verify"))
        self.domain = f"{stem}-{rng.getrandbits(16):04x}{rng.choice(SCAM_LINK_TLDS)}"
        # An attack may overlap others: it runs its hours, cut by the run's end.
        self.end = min(self.start + rng.uniform(2.0, 4.0) * HOUR, ctx.until)
        self.actors = [self.account[0]]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        sent: list[float] = []
        contacted: set[str] = set()
        ts = self.start + rng.expovariate(self.per_10m / 600.0)
        while ts < self.end:
            if len(sent) >= GATE_EVENTS - 1 and ts - sent[1 - GATE_EVENTS] < 600.0:
                ts = sent[1 - GATE_EVENTS] + 600.0 + rng.uniform(1.0, 30.0)  # held back
                continue
            target = ctx.pop.id(rng.randrange(ctx.pop.size))
            if target in contacted or target == self.account[0]:
                continue
            contacted.add(target)
            link = f"https://{self.domain}/{rng.getrandbits(24):06x}"
            line = rng.choice(SCAM_LINES if rng.random() < self.link_share else SCAM_LINES[5:])
            text = line.format(
                n=rng.choice(SCAM_NAMES), p=rng.choice(SCAM_PRIZES), a=rng.choice(SCAM_APPS), l=link
            )
            links = [link] if link in text else None
            value = content_value(ts, self.account, "message", "messenger", text, target, links)
            out.append((ts, CONTENT, value))
            sent.append(ts)
            ts += rng.expovariate(self.per_10m / 600.0)
        return out


class CommunityHelper(Attack):
    """Decoy: an account of half a year or more answering many different people in groups for
    two to four hours, at two to four replies per ten minutes and at a person's irregular
    pace, in ordinary words of its own; a reply in twenty links a page."""

    def plan(self, rng: random.Random, ctx: Context) -> None:
        self.account = established(rng, ctx.pop, 180.0)
        self.per_10m = rng.uniform(2.0, 4.0)
        # A decoy may overlap attacks: it helps for its hours, cut by the run's end.
        self.end = min(self.start + rng.uniform(2.0, 4.0) * HOUR, ctx.until)
        self.actors = [self.account[0]]

    def draw(self, rng: random.Random, ctx: Context) -> list[tuple[float, int, Any]]:
        out: list[tuple[float, int, Any]] = []
        ts = self.start + rng.expovariate(self.per_10m / 600.0)
        while ts < self.end:
            target = ctx.pop.id(rng.randrange(ctx.pop.size))
            if target != self.account[0]:
                text, links = organic_text(rng), None
                if rng.random() < 0.05:
                    link = f"https://{rng.choice(NEWS_SITES)}.com/help/{rng.getrandbits(16):04x}"
                    text, links = f"{text} {link}", [link]
                kind = rng.choice(("comment", "comment", "message"))
                surface = "messenger" if kind == "message" else "groups"
                value = content_value(ts, self.account, kind, surface, text, target, links)
                out.append((ts, CONTENT, value))
            ts += rng.expovariate(self.per_10m / 600.0)
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
    "copy_paste_campaign": CopyPasteCampaign,
    "link_campaign": LinkCampaign,
    "brigade_ring": BrigadeRing,
    "organic_meme": OrganicMeme,
    "viral_report_wave": ViralReportWave,
    "sustained_shift_1_5x": SustainedShift,
    "sustained_shift_2x": SustainedShift,
    "sustained_shift_3x": SustainedShift,
    "organic_growth": OrganicGrowth,
    "viral_post": ViralPost,
    **dict.fromkeys(SLOW_BRIGADES, SlowBrigade),
    "slow_report_wave": SlowReportWave,
    **dict.fromkeys(SLOW_PILE_ONS, SlowPileOn),
    **dict.fromkeys(LOW_RATE_AUTOMATION, LowRateAutomation),
    "night_shift": NightShift,
    **dict.fromkeys(SLOW_CAMPAIGNS, SlowCampaign),
    "organic_link_share": OrganicLinkShare,
    **dict.fromkeys(SLOW_MASS_MESSAGING, SlowMassMessaging),
    "community_helper": CommunityHelper,
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
