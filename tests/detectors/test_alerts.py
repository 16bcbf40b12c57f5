"""Alert episodes: one alert per spike, with updates, escalation and resolution."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from detectors.alerts import Alert, EpisodePolicy, alert_id, severity_for


def run(policy: EpisodePolicy, severities: list[str | None]) -> list[tuple[int, str, str]]:
    episode = None
    out = []
    for minute, severity in enumerate(severities):
        start = minute * 60.0
        score = {None: 1.0, "warning": 7.0, "critical": 15.0}[severity]
        episode, action = policy.step(
            episode, "volume_spike", "signal", "content", start, start + 60, score, severity
        )
        if action:
            ident = episode.alert_id if episode else "-"
            out.append((minute, action, ident))
    return out


def test_a_thirty_minute_spike_is_one_alert_with_updates() -> None:
    actions = run(EpisodePolicy(cooldown_s=600, update_every=10), ["warning"] * 30 + [None] * 15)
    kinds = [a for _, a, _ in actions]
    assert kinds == ["firing", "update", "update", "resolved"]
    assert len({i for _, a, i in actions if a != "resolved"}) == 1
    assert actions[-1][0] == 39  # ten quiet minutes after the last flag


def test_escalation_is_sent_at_once() -> None:
    actions = run(EpisodePolicy(), ["warning", "warning", "critical"])
    assert [(m, a) for m, a, _ in actions] == [(0, "firing"), (2, "update")]


def test_a_flag_within_the_cooldown_continues_the_episode() -> None:
    actions = run(EpisodePolicy(cooldown_s=300), ["warning", None, None, "warning", *[None] * 6])
    assert [a for _, a, _ in actions] == ["firing", "resolved"]


def test_a_flag_after_the_cooldown_opens_a_new_alert() -> None:
    actions = run(EpisodePolicy(cooldown_s=120), ["warning", None, None, None, "warning"])
    assert [a for _, a, _ in actions] == ["firing", "resolved", "firing"]
    assert actions[0][2] != actions[2][2]


def test_ids_are_deterministic_and_distinct() -> None:
    """The same id in every process: a restarted worker, or another one, names the episode as
    this one did, whatever the interpreter's string-hash seed."""
    code = "from detectors.alerts import alert_id; print(alert_id(*sys.argv[1:4], 60.0))"
    ids = {alert_id("volume_spike", "signal", "content", 60.0)}
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", f"import sys; {code}", "volume_spike", "signal", "content"],
            env=env,
            cwd=Path(__file__).parents[2],
            capture_output=True,
            text=True,
            check=True,
        )
        ids.add(out.stdout.strip())
    assert len(ids) == 1
    one = alert_id("volume_spike", "signal", "content", 60.0)
    assert one != alert_id("volume_spike", "signal", "content", 120.0)
    assert one != alert_id("volume_spike", "signal", "content.kind:post", 60.0)
    assert one != alert_id("actor_anomaly", "signal", "content", 60.0)
    assert alert_id("a", "signal", "b", 0.0) != alert_id("a", "actor", "b", 0.0)


def test_severity() -> None:
    assert severity_for(5.9, 6.0) is None
    assert severity_for(6.0, 6.0) == "warning"
    assert severity_for(12.0, 6.0) == "critical"


def test_record_shape() -> None:
    alert = Alert(
        alert_id="x",
        detector="volume_spike",
        status="firing",
        severity="warning",
        entity_type="signal",
        entity_id="content",
        ts=120.0,
        window_start=60.0,
        window_end=120.0,
        score=7.123456,
        threshold=6.0,
        summary="s",
        evidence={"a": 1},
    )
    record = alert.to_record(emitted_at=130.0)
    assert record["ts"] == "1970-01-01T00:02:00.000Z"
    assert record["window"] == {
        "start": "1970-01-01T00:01:00.000Z",
        "end": "1970-01-01T00:02:00.000Z",
    }
    assert record["entity"] == {"type": "signal", "id": "content"}
    assert record["score"] == 7.1235 and record["schema_version"] == 1
