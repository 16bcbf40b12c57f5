"""The docs describe the code as it is: examples parse, tables match the declarations."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from detectors.events import parse_event
from streams.metrics import metrics_table
from streams.records import dead_letter
from streams.settings import Settings

DOCS = Path(__file__).parent.parent / "docs"
GOLDEN = Path(__file__).parent / "golden" / "volume_spike_alert.json"


def examples() -> dict[str, dict[str, object]]:
    text = (DOCS / "contract.md").read_text()
    found = re.findall(r"<!-- example: ([\w-]+) -->\n```json\n(.*?)```", text, re.S)
    return {name: orjson.loads(body) for name, body in found}


@pytest.mark.parametrize("topic", ["content-events", "report-events", "labels"])
def test_input_examples_are_valid(topic: str) -> None:
    parse_event(topic, orjson.dumps(examples()[topic]))


def test_the_alert_example_has_the_golden_shape() -> None:
    example = examples()["alert"]
    golden = orjson.loads(GOLDEN.read_bytes())
    assert set(example) == set(golden) | {"emitted_at"}
    assert set(example["evidence"]) == set(golden["evidence"])  # type: ignore[arg-type]
    assert example["summary"] == golden["summary"]


def test_the_dead_letter_example_has_the_written_fields() -> None:
    written = orjson.loads(dead_letter("missing_field", "d", "t", 0, 0, b"k", b"v", 0.0))
    assert set(examples()["dead-letter"]) == set(written)


def test_configuration_lists_every_setting() -> None:
    assert Settings.table() in (DOCS / "configuration.md").read_text()


def test_metrics_lists_every_metric() -> None:
    assert metrics_table() in (DOCS / "metrics.md").read_text()
