"""The example Alertmanager configuration: valid, grouped by bounded labels, and routing each
severity of a pushed alert to its receiver (checked with amtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from detectors.alerts import Alert
from streams.alertmanager import to_alertmanager

CONFIG = Path(__file__).parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("amtool")
    assert tool, "amtool is needed (Debian package prometheus-alertmanager)"
    return subprocess.run([tool, *args], capture_output=True, text=True)


def test_the_configuration_is_valid() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_notifications_are_grouped_by_bounded_labels_only() -> None:
    route = yaml.safe_load(CONFIG.read_text())["route"]
    assert route["group_by"] == ["alertname", "detector", "severity"]
    assert all("group_by" not in child for child in route["routes"])


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "oncall"), ("warning", "chat"), ("info", "null")]
)
def test_each_severity_reaches_its_receiver(severity: str, receiver: str) -> None:
    alert = Alert(
        alert_id="a1",
        detector="report_brigade",
        status="firing",
        severity=severity,
        entity_type="target",
        entity_id="u77",
        ts=60.0,
        window_start=0.0,
        window_end=60.0,
        score=5.0,
        threshold=1.0,
        summary="Account u77 reported by 17 accounts",
    )
    labels = to_alertmanager(alert.to_record(emitted_at=61.0), 61.0, 3600.0)["labels"]
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={receiver}",
        *(f"{name}={value}" for name, value in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
