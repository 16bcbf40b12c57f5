"""The JSON Schemas: shipped as generated, compatible with what was committed, and true of
the records the code writes and the contract's examples."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from pydantic import BaseModel, create_model

from detectors.alerts import Alert
from streams import schema
from streams.cli import build_parser, main
from streams.records import dead_letter
from tests.test_docs import examples

DOCS = Path(__file__).parent.parent.parent / "docs" / "schemas"


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        orjson.loads(schema.shipped(name)), format_checker=jsonschema.FormatChecker()
    )


@pytest.mark.parametrize("name", sorted(schema.RECORDS))
def test_the_shipped_schemas_are_the_generated_ones(name: str) -> None:
    generated = schema.dumps(schema.generate(name))
    assert schema.shipped(name) == generated, "run: python -m streams.schema --write"
    assert (DOCS / f"{name}.json").read_text() == generated, "run: python -m streams.schema --write"
    jsonschema.Draft202012Validator.check_schema(orjson.loads(generated))


@pytest.mark.parametrize("name", sorted(schema.RECORDS))
def test_no_breaking_change_without_a_new_version(name: str) -> None:
    committed = orjson.loads((DOCS / f"{name}.json").read_bytes())
    schema.check_compatible(name, committed, schema.generate(name))


def changed(model: type[BaseModel], drop: str = "", **fields: Any) -> type[BaseModel]:
    """`model` with a field dropped or fields added or retyped."""
    kept = {
        n: (f.annotation, f) for n, f in model.model_fields.items() if n != drop and n not in fields
    }
    return create_model(model.__name__, **kept, **fields)  # type: ignore[call-overload,no-any-return]


@pytest.mark.parametrize(
    ("name", "drop", "fields", "says"),
    [
        ("alert", "score", {}, "required field score removed"),
        ("alert", "", {"score": (str, ...)}, "field score changed type: number -> string"),
        ("alert", "", {"entity": (dict[str, int], ...)}, "field entity changed type"),
        ("dead-letter", "offset", {}, "required field offset removed"),
        ("content-event", "", {"region": (str, ...)}, "new required field region"),
        ("label", "", {"ts": (float, ...)}, "field ts changed type: string<date-time> -> number"),
    ],
)
def test_a_breaking_change_without_a_new_version_fails(
    monkeypatch: pytest.MonkeyPatch, name: str, drop: str, fields: dict[str, Any], says: str
) -> None:
    record = schema.RECORDS[name]
    committed = orjson.loads((DOCS / f"{name}.json").read_bytes())
    monkeypatch.setitem(
        schema.RECORDS,
        name,
        schema.Record(
            changed(record.model, drop, **fields),
            record.version,
            record.description,
            record.read_by_worker,
        ),
    )
    with pytest.raises(ValueError, match="needs a new schema version") as raised:
        schema.check_compatible(name, committed, schema.generate(name))
    assert says in str(raised.value)
    # With a new version it is allowed; writing refuses it without one.
    bumped = schema.Record(schema.RECORDS[name].model, record.version + 1, "", False)
    monkeypatch.setitem(schema.RECORDS, name, bumped)
    schema.check_compatible(name, committed, schema.generate(name))


def test_writing_refuses_a_breaking_change(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in schema.RECORDS:
        (tmp_path / f"{name}.json").write_text(schema.shipped(name))
    record = schema.RECORDS["alert"]
    monkeypatch.setitem(
        schema.RECORDS, "alert", schema.Record(changed(record.model, "summary"), 1, "", False)
    )
    with pytest.raises(ValueError, match="required field summary removed"):
        schema.write([tmp_path])
    assert (tmp_path / "alert.json").read_text() == schema.shipped("alert")


def test_adding_an_optional_field_is_compatible() -> None:
    committed = orjson.loads(schema.shipped("content-event"))
    record = schema.RECORDS["content-event"]
    newer = changed(record.model, "", region=(str | None, None))
    generated = newer.model_json_schema()
    generated["x-schema-version"] = committed["x-schema-version"]
    assert schema.breaking_changes(committed, generated, inputs=True) == []


def test_records_the_code_writes_are_valid() -> None:
    alert = Alert(
        alert_id="a1",
        detector="volume_spike",
        status="firing",
        severity="critical",
        entity_type="signal",
        entity_id="content",
        ts=1795514400.0,
        window_start=1795514340.0,
        window_end=1795514400.0,
        score=9.5,
        threshold=6.0,
        summary="s",
        evidence={"observed": 40},
        priority=0.7,
    )
    validator("alert").validate(alert.to_record(emitted_at=1795514401.0))
    alert = dataclasses.replace(alert, priority=None)
    validator("alert").validate(alert.to_record(emitted_at=1795514401.0))
    letter = orjson.loads(dead_letter("too_large", "d", "t", 1, 2, None, b"x" * 20, 0.0, 10))
    validator("dead-letter").validate(letter)
    bad = dict(letter, reason="because")
    assert not validator("dead-letter").is_valid(bad)


@pytest.mark.parametrize(
    ("name", "example"),
    [
        ("content-event", "content-events"),
        ("report-event", "report-events"),
        ("label", "labels"),
        ("dead-letter", "dead-letter"),
        ("alert", "alert"),
        ("alert", "actor-alert"),
        ("alert", "campaign-alert"),
        ("alert", "synchronised-alert"),
        ("alert", "brigade-alert"),
    ],
)
def test_the_contract_examples_are_valid(name: str, example: str) -> None:
    validator(name).validate(examples()[example])


def test_an_input_the_worker_refuses_is_refused_by_the_schema() -> None:
    event = examples()["content-events"]
    for broken in (
        {k: v for k, v in event.items() if k != "ts"},
        dict(event, ts="yesterday"),
        dict(event, kind="Not A Word"),
        dict(event, actor_id=""),
    ):
        assert not validator("content-event").is_valid(broken), broken


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "alert"]) == 0
    assert capsys.readouterr().out == schema.shipped("alert")
    choices = next(
        a.choices
        for a in build_parser()._subparsers._group_actions[0].choices["schema"]._actions  # type: ignore[union-attr]
        if a.dest == "name"
    )
    assert sorted(choices) == sorted(schema.RECORDS)  # type: ignore[arg-type]


def test_the_consumer_in_the_contract_compiles() -> None:
    text = (DOCS.parent / "contract.md").read_text()
    code = text.split("<!-- example: consumer -->\n```python\n", 1)[1].split("```", 1)[0]
    compile(code, "contract.md", "exec")
    assert 'group_id="case-tool"' in code and "validator.iter_errors" in code
