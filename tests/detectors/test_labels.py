"""The label gate: suppression, escalation, precision, agreement and the learnt priority."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.alerts import Alert
from detectors.events import Label, format_rfc3339
from detectors.labels import LabelConfig, LabelGate, alert_features, audit_selected, cohen_kappa

DAY = 86400.0


def alert(
    alert_id: str,
    ts: float,
    detector: str = "actor_anomaly",
    entity: tuple[str, str] = ("actor", "u1"),
    status: str = "firing",
    score: float = 0.8,
    evidence: dict[str, object] | None = None,
) -> Alert:
    return Alert(
        alert_id=alert_id,
        detector=detector,
        status=status,
        severity="warning",
        entity_type=entity[0],
        entity_id=entity[1],
        ts=ts,
        window_start=ts - 60,
        window_end=ts,
        score=score,
        threshold=0.5,
        summary="s",
        evidence=evidence or {},
    )


def label(
    subject_id: str,
    verdict: str,
    ts: float,
    subject_type: str = "alert",
    labeler: str = "ana",
    policy: str | None = "spam",
) -> Label:
    return Label.model_validate(
        {
            "label_id": f"{subject_id}-{labeler}-{ts}",
            "ts": format_rfc3339(ts),
            "subject_type": subject_type,
            "subject_id": subject_id,
            "verdict": verdict,
            "labeler": labeler,
            "policy": policy,
        }
    )


def test_an_entity_labelled_benign_raises_nothing_until_the_suppression_ends() -> None:
    gate = LabelGate(LabelConfig(suppress_s=DAY))
    first, _ = gate.admit(alert("a1", 100.0))
    assert first is not None
    gate.label(label("a1", "benign", 200.0))
    # The open episode's updates are dropped, its resolution still goes out.
    assert gate.admit(alert("a1", 300.0, status="update")) == (None, "suppressed")
    assert gate.admit(alert("a1", 400.0, status="resolved"))[0] is not None
    # A new episode on the same actor within the day: dropped, and so is its resolution.
    assert gate.admit(alert("a2", 5000.0)) == (None, "suppressed")
    assert gate.admit(alert("a2", 6000.0, status="resolved")) == (None, "suppressed")
    # Another actor, or the same one after the day, alerts again.
    assert gate.admit(alert("a3", 5000.0, entity=("actor", "u2")))[0] is not None
    assert gate.admit(alert("a4", 200.0 + DAY + 1))[0] is not None


def test_an_actor_labelled_abusive_gets_critical_alerts() -> None:
    gate = LabelGate(LabelConfig(abusive_ttl_s=DAY))
    gate.label(label("u1", "abusive", 50.0, subject_type="actor"))
    raised, action = gate.admit(alert("a1", 100.0))
    assert action == "escalated" and raised is not None
    assert raised.severity == "critical" and raised.evidence["labelled_abusive"] is True
    other, action = gate.admit(alert("a2", 100.0, entity=("actor", "u2")))
    assert action is None and other is not None and other.severity == "warning"
    later, action = gate.admit(alert("a3", 50.0 + DAY + 1))
    assert action is None and later is not None and later.severity == "warning"


def test_campaign_labels_apply_to_the_campaign() -> None:
    gate = LabelGate()
    gate.label(label("cmp-1", "benign", 50.0, subject_type="campaign"))
    assert gate.admit(alert("c1", 100.0, "content_campaign", ("campaign", "cmp-1")))[0] is None
    assert gate.admit(alert("c2", 100.0, "content_campaign", ("campaign", "cmp-2")))[0]


def test_precision_per_detector_over_the_window() -> None:
    gate = LabelGate(LabelConfig(precision_window_s=1000.0))
    for i, verdict in enumerate(["abusive", "abusive", "benign", "unsure"]):
        gate.admit(alert(f"a{i}", 10.0 * i, entity=("actor", f"u{i}")))
        gate.label(label(f"a{i}", verdict, 10.0 * i + 5))
    gate.admit(alert("s1", 50.0, "volume_spike", ("signal", "reports")))
    gate.label(label("s1", "benign", 55.0))
    gate.label(label("nobody-saw-this-alert", "benign", 60.0))
    assert gate.precision() == {
        "actor_anomaly": pytest.approx((2 / 3, 3)),
        "volume_spike": (0.0, 1),
    }
    # A second opinion on an alert does not count twice.
    gate.label(label("a0", "benign", 70.0, labeler="ben"))
    assert gate.precision()["actor_anomaly"] == pytest.approx((2 / 3, 3))
    # Verdicts older than the window drop out.
    gate.admit(alert("a9", 2030.0, entity=("actor", "u9")))
    gate.label(label("a9", "benign", 2031.0))
    assert gate.precision() == {"actor_anomaly": (0.0, 1)}


def test_two_labellers_on_one_alert_make_a_pair_for_agreement() -> None:
    gate = LabelGate()
    verdicts = [("abusive", "abusive"), ("benign", "benign"), ("abusive", "benign")]
    for i, (first, second) in enumerate(verdicts):
        gate.admit(alert(f"a{i}", 10.0, entity=("actor", f"u{i}")))
        gate.label(label(f"a{i}", first, 20.0, labeler="ana"))
        gate.label(label(f"a{i}", first, 21.0, labeler="ana"))  # the same labeller again: no pair
        assert gate.label(label(f"a{i}", second, 30.0, labeler="ben")).pair_policy == "spam"
    assert gate.agreement() == {"spam": pytest.approx(cohen_kappa(verdicts))}
    assert cohen_kappa(verdicts) == pytest.approx(0.4)


def test_kappa_is_one_for_full_agreement_and_zero_for_chance() -> None:
    assert cohen_kappa([("abusive", "abusive")] * 5) == 1.0
    assert cohen_kappa([("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]) == 0.0
    assert cohen_kappa([]) is None


def test_the_priority_learns_which_alerts_analysts_confirm() -> None:
    """Spikes of one family are confirmed, of another rejected, though they score higher:
    after the labels, the confirmed kind comes first, where the score alone put it last."""
    gate = LabelGate()

    def spike(i: int, family: str, score: float) -> Alert:
        evidence = {"signal_family": family, "observed": 50}
        return alert(
            f"{family}{i}",
            float(i),
            "volume_spike",
            ("signal", f"{family}{i}"),
            score=score,
            evidence=evidence,
        )

    untrained_good, _ = gate.admit(spike(-1, "reports.target", 1.0))
    untrained_noise, _ = gate.admit(spike(-2, "content.kind", 2.0))
    assert untrained_good is not None and untrained_noise is not None
    assert untrained_good.priority is not None and untrained_noise.priority is not None
    assert untrained_good.priority < untrained_noise.priority  # score order
    for i in range(150):
        for family, score, verdict in (
            ("reports.target", 1.0, "abusive"),
            ("content.kind", 2.0, "benign"),
        ):
            gate.admit(spike(i, family, score))
            gate.label(label(f"{family}{i}", verdict, i + 0.5))
    good, _ = gate.admit(spike(1000, "reports.target", 1.0))
    noise, _ = gate.admit(spike(1001, "content.kind", 2.0))
    assert good is not None and noise is not None
    assert good.priority is not None and noise.priority is not None
    assert good.priority > 0.8 > 0.2 > noise.priority


@given(st.floats(0.5, 50.0), st.floats(0.1, 10.0))
def test_an_alert_from_memory_and_from_its_record_get_one_priority(
    score: float, threshold: float
) -> None:
    """`evaluate` admits alerts as the detectors made them, the worker as records read from
    its internal topic: the published priority is the same."""
    made = replace(alert("a1", 1000.0, score=score), threshold=threshold)
    read = Alert.from_record(made.to_record(emitted_at=0.0))
    published = [LabelGate(LabelConfig()).admit(a)[0] for a in (made, read)]
    assert published[0] == published[1]


def test_the_gate_remembers_a_bounded_number_of_alerts() -> None:
    gate = LabelGate(LabelConfig(max_alerts=10, max_entities=10))
    for i in range(100):
        gate.admit(alert(f"a{i}", float(i), entity=("actor", f"u{i}")))
        gate.label(label(f"u{i}", "benign", float(i), subject_type="actor"))
    assert len(gate.seen) == 10 and len(gate.suppressed_until) == 10
    assert len(gate.unlabelled) == 10


def test_features_are_named_by_detector_and_skip_ids() -> None:
    a = alert(
        "a1", 0.0, evidence={"actor": "u1", "features": {"events_10m": 40}, "indicators": ["links"]}
    )
    x = alert_features(a)
    assert "actor_anomaly.features.events_10m" in x and "actor_anomaly.indicators=links" in x
    assert not any("u1" in name for name in x)
    assert alert_features(replace(a, score=0.0))["score_ratio"] == 0.0


def test_audit_selects_a_stable_share() -> None:
    picked = [audit_selected(f"alert{i}", 0.1) for i in range(5000)]
    assert 400 < sum(picked) < 600
    assert picked == [audit_selected(f"alert{i}", 0.1) for i in range(5000)]
    assert not any(audit_selected(f"alert{i}", 0.0) for i in range(100))
