"""JSON Schemas of every record abuse-monitor reads or publishes, generated from its models.

The input events are `detectors.events`' models; alerts and dead letters, written by
`detectors.alerts.Alert.to_record` and `streams.records.dead_letter`, are described here by
models of their wire form. The generated schemas ship in the package (`streams/schemas/`)
and in `docs/schemas/`; `python -m streams.schema --write` writes both, and refuses a
change that would break a reader of the committed schema (a required field removed or
renamed, a field's type changed) or, for input events, a producer (a new required field),
unless the record's schema version is raised with it.

>>> sorted(RECORDS)
['alert', 'content-event', 'dead-letter', 'label', 'report-event']
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from detectors.alerts import SCHEMA_VERSION as ALERT_SCHEMA_VERSION
from detectors.events import REASONS, ContentEvent, Label, ReportEvent

# Raised with any change to the record that breaks its readers (dead letters) or producers
# (input events); the alert's is `detectors.alerts.SCHEMA_VERSION`, which alerts carry.
DEAD_LETTER_SCHEMA_VERSION = 1
INPUT_SCHEMA_VERSION = 1

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DOCS = Path(__file__).parent.parent / "docs" / "schemas"

Rfc3339 = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Entity(BaseModel):
    type: str = Field(description="signal, actor, campaign or target")
    id: str


class Window(BaseModel):
    start: Rfc3339
    end: Rfc3339


class AlertRecord(BaseModel):
    """An alert on the alerts topic (docs/contract.md)."""

    schema_version: int = Field(json_schema_extra={"const": ALERT_SCHEMA_VERSION})
    alert_id: str
    detector: str
    status: Literal["firing", "update", "resolved"]
    severity: Literal["info", "warning", "critical"]
    entity: Entity
    ts: Rfc3339
    window: Window
    score: float
    threshold: float
    summary: str
    evidence: dict[str, Any]
    priority: Annotated[float, Field(ge=0, le=1)] | SkipJsonSchema[None] = None
    emitted_at: Rfc3339


class DeadLetterRecord(BaseModel):
    """A message the worker could not use, on `<input-topic>.dlq` (docs/contract.md)."""

    reason: Literal[REASONS]  # type: ignore[valid-type]
    detail: str
    topic: str
    partition: int
    offset: int
    key_base64: str | None
    value_base64: str
    dead_lettered_at: Rfc3339
    value_truncated: bool | SkipJsonSchema[None] = None
    value_bytes: int | SkipJsonSchema[None] = None
    value_sha256: str | SkipJsonSchema[None] = None


@dataclass(frozen=True)
class Record:
    model: type[BaseModel]
    version: int
    description: str
    read_by_worker: bool  # an input: a new required field breaks its producers


RECORDS = {
    "alert": Record(AlertRecord, ALERT_SCHEMA_VERSION, "an alert on the alerts topic", False),
    "dead-letter": Record(
        DeadLetterRecord,
        DEAD_LETTER_SCHEMA_VERSION,
        "a message the worker could not use, on <input-topic>.dlq",
        False,
    ),
    "content-event": Record(
        ContentEvent, INPUT_SCHEMA_VERSION, "an event on the content-events topic", True
    ),
    "report-event": Record(
        ReportEvent, INPUT_SCHEMA_VERSION, "an event on the report-events topic", True
    ),
    "label": Record(Label, INPUT_SCHEMA_VERSION, "an analyst's verdict on the labels topic", True),
}


def generate(name: str) -> dict[str, Any]:
    record = RECORDS[name]
    schema = _tidy(record.model.model_json_schema(mode="validation"))
    schema.pop("description", None)
    return {
        "$schema": DRAFT,
        "$id": f"urn:abuse-monitor:schema:{name}:v{record.version}",
        "title": name,
        "description": record.description,
        "x-schema-version": record.version,
        **schema,
    }


def _tidy(node: dict[str, Any]) -> dict[str, Any]:
    """Without pydantic's titles (the field names again) and `"default": null`s."""
    node.pop("title", None)
    if "default" in node and node["default"] is None:
        del node["default"]
    for key in ("properties", "$defs"):
        for sub in node.get(key, {}).values():
            _tidy(sub)
    for sub in node.get("anyOf", ()):
        _tidy(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _tidy(node[key])
    return node


def dumps(schema: dict[str, Any]) -> str:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode() + "\n"


def shipped(name: str) -> str:
    """The schema as shipped in the package."""
    return (resources.files("streams") / "schemas" / f"{name}.json").read_text()


def breaking_changes(old: dict[str, Any], new: dict[str, Any], inputs: bool) -> list[str]:
    """What in `new` breaks a reader of records valid under `old` (or, for `inputs`, a
    producer of them): required fields removed or renamed, changed types, and for inputs new
    required fields."""
    found = []
    old_fields, new_fields = _fields(old), _fields(new)
    for path, (kind, required) in old_fields.items():
        if path not in new_fields:
            if required:
                found.append(f"required field {path} removed")
            continue
        new_kind, new_required = new_fields[path]
        if new_kind != kind:
            found.append(f"field {path} changed type: {kind} -> {new_kind}")
        if inputs and new_required and not required:
            found.append(f"field {path} became required")
    if inputs:
        found += [
            f"new required field {path}"
            for path, (_, required) in new_fields.items()
            if required and path not in old_fields
        ]
    return found


def _fields(schema: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Every field, nested ones as `a.b`: its type and whether it is required."""
    defs = schema.get("$defs", {})
    out: dict[str, tuple[str, bool]] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        required = set(node.get("required", ()))
        for name, field in node.get("properties", {}).items():
            resolved = _resolve(field, defs)
            out[prefix + name] = (_kind(resolved, defs), name in required)
            if "properties" in resolved:
                walk(resolved, f"{prefix}{name}.")

    walk(schema, "")
    return out


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _kind(node: dict[str, Any], defs: dict[str, Any]) -> str:
    """A field's type, in a form that is equal for equal types."""
    if "anyOf" in node:
        return " | ".join(sorted(_kind(_resolve(n, defs), defs) for n in node["anyOf"]))
    kind = str(node.get("type", "any"))
    if "format" in node:
        kind += f"<{node['format']}>"
    if "const" in node:
        kind += f"={node['const']!r}"
    if "enum" in node:
        kind += "{" + ",".join(map(str, sorted(node["enum"]))) + "}"
    if kind == "array":
        kind += f"[{_kind(_resolve(node.get('items', {}), defs), defs)}]"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        kind += f"[{_kind(_resolve(node['additionalProperties'], defs), defs)}]"
    return kind


def check_compatible(name: str, committed: dict[str, Any], generated: dict[str, Any]) -> None:
    """Raises ValueError when `generated` breaks `committed` without a new version."""
    if generated["x-schema-version"] != committed["x-schema-version"]:
        return
    broken = breaking_changes(committed, generated, RECORDS[name].read_by_worker)
    if broken:
        raise ValueError(
            f"{name}: {'; '.join(broken)}: a breaking change needs a new schema version "
            f"(now {committed['x-schema-version']})"
        )


def write(directories: list[Path]) -> list[str]:
    """Write every schema into each directory; returns the names that changed."""
    changed = []
    for name in RECORDS:
        generated = generate(name)
        for directory in directories:
            path = directory / f"{name}.json"
            if path.exists():
                check_compatible(name, orjson.loads(path.read_bytes()), generated)
                if path.read_text() == dumps(generated):
                    continue
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(generated))
            changed.append(str(path))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.schema")
    parser.add_argument("--write", action="store_true", help="write the schemas")
    args = parser.parse_args(argv)
    package = Path(__file__).parent / "schemas"
    if not args.write:
        parser.print_help()
        return 0
    try:
        changed = write([package, DOCS])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(f"wrote {path}" for path in changed) or "schemas unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
