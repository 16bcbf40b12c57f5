"""Does the learnt priority put confirmed alerts at the top of the triage queue?

    abuse-monitor simulate --out day.jsonl --seed 7
    ABUSEMON_SPIKE_THRESHOLD=3.5 ... abuse-monitor evaluate --events day.jsonl --alerts-out alerts.jsonl
    python bench/label_queue.py --alerts alerts.jsonl [more days' alerts] \
        --truth day.jsonl.truth.jsonl [their truth] [--capacity 3] [--out queue.json]

Replays the alerts in event time through the label gate, as the worker emits them, with
simulated analysts who every `--review-every` minutes label the top `--capacity` open alerts
of the queue (the verdict is the ground truth, wrong with probability `--noise`). Their labels
teach the priority model as they are given. The same run is made twice: the queue ordered by
score alone (score / threshold) and by the learnt priority. Printed per ordering:

- precision of the top of the queue: the share of the alerts the analysts took from the top
  (the capacity at each review) that were really abusive, against the ground truth;
- abusive alerts reached, and how long they waited for a verdict (median);
- the same over the second half of the run, once the model has labels to learn from.

Detectors tuned to alert more than by default give a queue with enough false alerts to order;
at the defaults the simulator's alerts are nearly all confirmed, and any order is as good.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from detectors.alerts import Alert
from detectors.evaluation import ground_truth
from detectors.events import Label, format_rfc3339
from detectors.labels import LabelGate, score_prior
from simulator import Labeler, LabelerConfig

KS = (10, 25, 50, 100)
TOP = 10  # the top of the queue, as an analyst's screen shows it


@dataclass
class Run:
    ordering: str
    taken: list[tuple[float, bool]] = field(default_factory=list)  # (review time, abusive)
    waits: list[float] = field(default_factory=list)  # seconds to a verdict, abusive alerts
    shown: list[float] = field(default_factory=list)  # precision of the top TOP at each review

    def precision(self, since: float = float("-inf")) -> float:
        picked = [abusive for t, abusive in self.taken if t >= since]
        return sum(picked) / len(picked) if picked else float("nan")


def teach(gate: LabelGate, alert_id: str, verdict: str, now: float) -> None:
    """An analyst's verdict on an alert, given to the gate at `now`."""
    label = {
        "label_id": alert_id,
        "ts": format_rfc3339(now),
        "subject_type": "alert",
        "subject_id": alert_id,
        "verdict": verdict,
        "labeler": "analyst",
    }
    gate.label(Label.model_validate(label))


def replay(
    alerts: list[Alert],
    truth: dict[str, bool],
    labeler: Labeler,
    ordering: str,
    capacity: int,
    every_s: float,
    history: list[Alert] = (),  # type: ignore[assignment]
) -> Run:
    gate = LabelGate()
    run = Run(ordering)
    queue: dict[str, Alert] = {}
    next_review = alerts[0].ts + every_s

    def give(alert: Alert, verdict: str, now: float) -> None:
        teach(gate, alert.alert_id, verdict, now)

    for past in history:  # earlier days, every alert labelled as it came
        admitted, _ = gate.admit(past)
        if admitted is not None and admitted.status == "firing":
            give(admitted, labeler.verdict(truth[past.alert_id]), past.ts)

    def key(alert: Alert) -> tuple[float, float]:
        prior = score_prior(alert)
        if ordering == "priority":
            return (alert.priority or 0.0, prior)
        return (prior, alert.ts)

    def review(now: float) -> None:
        ordered = sorted(queue.values(), key=key, reverse=True)
        if len(ordered) >= TOP:
            run.shown.append(sum(truth[a.alert_id] for a in ordered[:TOP]) / TOP)
        for alert in ordered[:capacity]:
            abusive = truth[alert.alert_id]
            verdict = labeler.verdict(abusive)
            run.taken.append((now, abusive))
            if abusive:
                run.waits.append(now - alert.ts)
            del queue[alert.alert_id]
            give(alert, verdict, now)

    for raised in alerts:
        while raised.ts >= next_review:
            review(next_review)
            next_review += every_s
        alert, _ = gate.admit(raised)
        if alert is not None and alert.status == "firing":
            queue[alert.alert_id] = alert
    return run


def ranking(
    alerts: list[Alert],
    truth: dict[str, bool],
    labeler: Labeler,
    delay_s: float,
    history: list[Alert],
) -> list[tuple[float, float, bool]]:
    """(priority, score prior, abusive) of every firing alert, as raised, when analysts label
    every alert `delay_s` after it (and every alert of `history` before)."""
    gate = LabelGate()
    pending: list[tuple[float, str]] = []
    out = []

    def give(alert_id: str, now: float) -> None:
        teach(gate, alert_id, labeler.verdict(truth[alert_id]), now)

    for alert in [*history, *alerts]:
        while pending and pending[0][0] <= alert.ts:
            give(pending[0][1], pending.pop(0)[0])
        admitted, _ = gate.admit(alert)
        if admitted is None or admitted.status != "firing":
            continue
        pending.append((alert.ts + delay_s, alert.alert_id))
        if alert.ts >= alerts[0].ts:
            out.append((admitted.priority or 0.0, score_prior(admitted), truth[alert.alert_id]))
    return out


def precision_at(scored: list[tuple[float, bool]], k: int) -> float:
    top = sorted(scored, key=lambda item: item[0], reverse=True)[:k]
    return sum(abusive for _, abusive in top) / len(top)


def auc(scored: list[tuple[float, bool]]) -> float:
    """Probability that an abusive alert is ranked above a benign one."""
    positive = [s for s, abusive in scored if abusive]
    negative = [s for s, abusive in scored if not abusive]
    pairs = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return pairs / (len(positive) * len(negative))


def load(
    alert_files: list[Path], truth_files: list[Path], after: list[Alert] | None = None
) -> tuple[list[Alert], dict[str, bool]]:
    """The alerts of several simulated days, one after the other (and after the alerts
    `after`), and whether each is abusive."""
    alerts: list[Alert] = list(after or ())
    truth: dict[str, bool] = {}
    for alert_file, truth_file in zip(alert_files, truth_files, strict=True):
        records = [orjson.loads(line) for line in alert_file.read_bytes().splitlines() if line]
        scenarios = [orjson.loads(line) for line in truth_file.read_bytes().splitlines() if line]
        day = [Alert.from_record(r) for r in records]
        shift = alerts[-1].ts + 3600.0 - day[0].ts if alerts else 0.0
        for alert in day:
            alert_id = f"{alert_file.name}:{alert.alert_id}"
            alerts.append(
                replace(
                    alert,
                    alert_id=alert_id,
                    ts=alert.ts + shift,
                    window_start=alert.window_start + shift,
                    window_end=alert.window_end + shift,
                )
            )
        truth |= {f"{alert_file.name}:{k}": v for k, v in ground_truth(records, scenarios).items()}
    return alerts[len(after or ()) :], truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", nargs="+", type=Path, required=True, help="alerts JSONL")
    parser.add_argument("--truth", nargs="+", type=Path, required=True, help="ground truth JSONL")
    parser.add_argument(
        "--history", nargs="*", type=Path, default=[], help="earlier days' alerts, all labelled"
    )
    parser.add_argument(
        "--history-truth", nargs="*", type=Path, default=[], help="their ground truth"
    )
    parser.add_argument("--capacity", type=int, default=3, help="alerts labelled per review")
    parser.add_argument("--review-every", type=float, default=60.0, help="minutes between reviews")
    parser.add_argument("--noise", type=float, default=0.05, help="share of wrong verdicts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench-label-queue.json"))
    args = parser.parse_args()

    history, history_truth = load(args.history, args.history_truth)
    alerts, truth = load(args.alerts, args.truth, after=history)
    truth |= history_truth
    firing = sum(1 for a in alerts if a.status == "firing")
    abusive = sum(truth[a.alert_id] for a in alerts if a.status == "firing")
    start, end = alerts[0].ts, alerts[-1].ts
    half = (start + end) / 2
    print(
        f"{firing} alerts, {abusive} of them abusive ({abusive / firing:.0%}); "
        f"{args.capacity} labelled every {args.review_every:.0f} min, noise {args.noise:.0%}"
    )
    rows, out = [], {}
    for ordering in ("score", "priority"):
        labeler = Labeler([], LabelerConfig(seed=args.seed, noise=args.noise, unsure=0))
        run = replay(
            alerts, truth, labeler, ordering, args.capacity, args.review_every * 60.0, history
        )
        reached = len(run.waits)
        wait = statistics.median(run.waits) / 60 if run.waits else float("nan")
        result = {
            "labelled": len(run.taken),
            "precision_top": run.precision(),
            "precision_top_second_half": run.precision(half),
            "abusive_reached": reached,
            "median_wait_min": wait,
        }
        out[ordering] = result
        rows.append(
            f"| {ordering} | {len(run.taken)} | {run.precision():.1%} | "
            f"{run.precision(half):.1%} | {reached}/{abusive} | {wait:.0f} |"
        )
    labeler = Labeler([], LabelerConfig(seed=args.seed, noise=args.noise, unsure=0))
    scored = ranking(alerts, truth, labeler, 600.0, history)
    print("\nThe day's alerts ranked, analysts labelling each 10 min after it was raised:")
    print("| ranked by | AUC | " + " | ".join(f"precision@{k}" for k in KS) + " |")
    print("|---|---|" + "---|" * len(KS))
    for name, column in (("score", 1), ("priority", 0)):
        pairs = [(item[column], item[2]) for item in scored]
        figures = [precision_at(pairs, k) for k in KS]
        out[f"ranked_by_{name}"] = {"auc": auc(pairs)} | {
            f"p@{k}": f for k, f in zip(KS, figures, strict=True)
        }
        print(f"| {name} | {auc(pairs):.3f} | " + " | ".join(f"{f:.0%}" for f in figures) + " |")
    print(
        f"\nA busy day: {args.capacity} labelled every {args.review_every:.0f} min, from the top:"
    )
    print(
        "| queue order | labelled | precision of top | second half | abusive reached | median wait (min) |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    args.out.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
