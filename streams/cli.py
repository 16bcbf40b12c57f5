"""The `abuse-monitor` command: worker, demo, simulate, replay, evaluate, label, console,
topics, tail, schema.

Errors a user can make (a missing file, a bad option or setting) end in one line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import orjson
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from streams.files import FileError
from streams.logs import redact_secrets
from streams.settings import Settings


class UsageError(Exception):
    """A mistake in how the command was called."""


def _settings(**overrides: object) -> Settings:
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        # The message only, never the input: it may be a secret.
        first = exc.errors(include_url=False)[0]
        if not first["loc"]:  # a check across settings: its message names them
            raise UsageError(first["msg"].removeprefix("Value error, ")) from None
        name = "ABUSEMON_" + "_".join(str(p) for p in first["loc"]).upper()
        raise UsageError(f"{name}: {first['msg']}") from None
    redact_secrets(settings.secrets())
    return settings


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.topics import TopicMismatch

    settings = _settings()
    try:
        if args.processes == 1:
            from streams.worker import run_worker

            run_worker(settings)
        else:
            from streams.supervisor import GaveUp, run_supervisor

            try:
                run_supervisor(settings, args.processes)
            except GaveUp as exc:
                print(f"abuse-monitor: error: {exc}", file=sys.stderr)
                return 1
    except TopicMismatch as exc:
        raise UsageError(str(exc)) from None
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator import SimConfig, generate, write_files

    kinds: tuple[str, ...] | None = None
    if args.scenarios is not None:
        kinds = tuple(k.strip() for k in args.scenarios.split(",") if k.strip())
        if not kinds:
            raise UsageError("--scenarios: name at least one scenario kind")
    try:
        config = SimConfig(
            seed=args.seed,
            duration_s=args.hours * 3600.0,
            rate=args.rate,
            actors=args.actors,
            first_attack_s=args.first_attack * 60.0,
            attack_every_s=args.attack_every * 60.0,
            attack_scale=args.attack_scale,
        )
        if kinds is not None:  # these kinds alone, in place of the default day's
            config = replace(config, scenarios=kinds, actor_scenarios=(), group_scenarios=())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.out:
        events, scenarios = write_files(args.out, config)
        print(
            f"wrote {events} events to {args.out} and {scenarios} scenarios to {args.out}.truth.jsonl"
        )
        return 0
    from streams.kafka import ensure_input_topics, produce

    settings = _settings(broker=args.broker)

    async def run() -> int:
        await ensure_input_topics(settings)
        return await produce(settings, generate(config), rate=args.produce_rate)

    print(f"produced {asyncio.run(run())} events to {settings.broker}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from streams.kafka import replay

    settings = _settings(broker=args.broker)
    _check_file(args.file)
    sent = asyncio.run(replay(args.file, settings, rate=args.rate))
    print(f"produced {sent} events from {args.file} to {settings.broker}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from streams.evaluate import evaluate, summarize_outcomes, write_alerts
    from streams.runtime import gc_tuned

    _check_file(args.events)
    truth = None
    if args.truth:
        _check_file(args.truth)
        truth = [value for value in _read_jsonl(args.truth)]
    settings = _settings()
    with gc_tuned():
        result = evaluate(args.events, settings)
    write_alerts(result.alerts, args.alerts_out)
    print(summarize_outcomes(result.outcomes))
    print(f"{len(result.alerts)} alert messages written to {args.alerts_out}")
    if truth is not None:
        from detectors.evaluation import format_report, score
        from simulator.scenarios import QUIET_FAMILIES

        try:
            report = score(
                result.alerts, truth, duration_s=result.duration_s, families=QUIET_FAMILIES
            )
        except ValueError as exc:
            raise UsageError(f"{args.truth}: {exc}") from None
        if args.json:
            print(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
        else:
            print(format_report(report))
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from detectors.evaluation import ground_truth
    from simulator import Labeler, LabelerConfig

    for path in (args.alerts, args.truth):
        _check_file(path)
    alerts, truth = _read_jsonl(args.alerts), _read_jsonl(args.truth)
    try:
        config = LabelerConfig(
            seed=args.seed,
            noise=args.noise,
            unsure=args.unsure,
            audit_rate=args.audit_rate,
            delay_s=args.delay * 60.0,
        )
        ground_truth(alerts, truth)  # the files' shapes, checked before any output
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    labels = Labeler(truth, config).labels(alerts)
    with open(args.out, "wb") as out:
        for label in labels:
            out.write(orjson.dumps({"topic": "labels", "value": label}) + b"\n")
    print(f"wrote {len(labels)} labels to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(
        duration_s=args.duration,
        speed=args.speed,
        metrics_port=args.metrics_port,
        console_port=args.console_port,
    )


def cmd_console(args: argparse.Namespace) -> int:
    from streams.console import start_console
    from streams.store import open_store

    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["console_host"] = args.host
    if args.port is not None:
        overrides["console_port"] = args.port
    settings = _settings(**overrides)
    if not settings.alert_store:
        raise UsageError(
            "ABUSEMON_ALERT_STORE is empty: set it to sqlite:///path.db or postgresql://..."
        )
    try:
        store = open_store(settings.alert_store)
    except ValueError as exc:
        raise UsageError(f"ABUSEMON_ALERT_STORE: {exc}") from None

    async def serve() -> None:
        console = await start_console(settings, store)
        # A configured token is never printed; a generated one is, as the only way in.
        where = console.login_url if console.token_generated else console.url
        suffix = "" if console.token_generated else " (token: ABUSEMON_CONSOLE_TOKEN)"
        print(f"triage console at {where}{suffix}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await console.stop()

    try:
        asyncio.run(serve())
    finally:
        store.close()
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from streams.topics import GrowError, format_report, grow, report

    settings = _settings()
    if args.action == "grow":
        if args.partitions is None:
            raise UsageError("topics grow: --partitions N is required")
        try:
            grown = asyncio.run(grow(settings, args.partitions))
        except GrowError as exc:
            raise UsageError(f"topics grow: {exc}") from None
        if grown:
            print(f"grew {', '.join(grown)} to {args.partitions} partitions")
        else:
            print(f"nothing to grow: the input topics have {args.partitions} partitions")
        if settings.input_partitions != args.partitions:
            print(
                f"now set ABUSEMON_INPUT_PARTITIONS={args.partitions} for every worker and "
                "command, and start the workers (docs/scaling.md#adding-partitions)"
            )
        return 0
    if args.partitions is not None:
        raise UsageError("--partitions goes with topics grow")
    result = asyncio.run(report(settings))
    if args.action == "check":
        for problem in result.problems:
            print(f"abuse-monitor: topics: {problem}", file=sys.stderr)
        if not result.problems:
            print("topics ok")
        return 1 if result.problems else 0
    print(format_report(result))
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from streams.tail import Filter, NoSuchTopic, tail

    settings = _settings()
    keep = Filter(detector=args.detector, severity=args.severity, entity=args.entity)

    def write(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(
            tail(
                settings,
                args.topic,
                write,
                follow=args.follow,
                limit=args.limit,
                keep=keep,
                text=args.format == "text",
            )
        )
    except NoSuchTopic as exc:
        raise UsageError(str(exc)) from None
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the interpreter's last flush
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from streams.schema import RECORDS, shipped

    if args.name is None:
        for name, record in RECORDS.items():
            print(f"{name:14} v{record.version}  {record.description}")
        return 0
    print(shipped(args.name), end="")
    return 0


def _check_file(path: str) -> None:
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")


def _read_jsonl(path: str) -> list[dict[str, object]]:
    out = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    raise UsageError(f"{path}:{number}: not JSON") from None
    return out


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _processes(text: str) -> int:
    """`--processes`: a positive number, or `auto` for one per core."""
    if text == "auto":
        return os.cpu_count() or 1
    try:
        return _count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"a positive whole number or auto: {text!r}") from None


def _positive(kind: type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="abuse-monitor",
        description="Real-time abuse-signal monitor. Settings come from ABUSEMON_* variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("worker", help="run the stream worker (configured by ABUSEMON_*)")
    p.add_argument(
        "--processes",
        type=_processes,
        default=1,
        metavar="N|auto",
        help="worker processes in one consumer group under one supervisor, with one "
        "metrics endpoint (auto: one per core; default 1: no supervisor)",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("demo", help="broker, worker and simulator on this machine")
    p.add_argument(
        "--duration",
        type=_positive(float),
        default=None,
        help="stop after SECONDS (default: Ctrl-C)",
    )
    p.add_argument(
        "--speed",
        type=_positive(float),
        default=60.0,
        help="simulated seconds per second (default 60)",
    )
    p.add_argument("--metrics-port", type=int, default=9464, help="port of /metrics (default 9464)")
    p.add_argument(
        "--console-port", type=int, default=8088, help="port of the triage console (default 8088)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "simulate", help="organic traffic with injected attacks, to a file or a broker"
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="write events to FILE and ground truth to FILE.truth.jsonl")
    target.add_argument("--broker", help="produce to this broker (kafka://host:port)")
    p.add_argument(
        "--hours", type=_positive(float), default=24.0, help="event time to simulate (default 24)"
    )
    p.add_argument(
        "--rate", type=_positive(float), default=5.0, help="mean organic content events per second"
    )
    p.add_argument(
        "--actors",
        type=int,
        default=20_000,
        help="organic accounts, at least 100 (default 20000)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--first-attack",
        type=_positive(float),
        default=60.0,
        help="minutes before the first attack (default 60)",
    )
    p.add_argument(
        "--attack-scale",
        type=_positive(float),
        default=1.0,
        help="multiplies the attacks' volumes (default 1)",
    )
    p.add_argument(
        "--attack-every",
        type=_positive(float),
        default=120.0,
        help="minutes between attacks, the kinds in turn (default 120)",
    )
    p.add_argument(
        "--produce-rate",
        type=_positive(float),
        default=None,
        help="with --broker: messages per second",
    )
    p.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated scenario kinds to run in turn, in place of the default day's "
        "(e.g. sustained_shift_1_5x,sustained_shift_2x,sustained_shift_3x,organic_growth,"
        "viral_post; or slow_brigade_20/40/80, slow_pile_on_20/40/80, "
        "low_rate_automation_10/25/50, slow_mass_messaging_2/3/4 and the decoys "
        "slow_report_wave, night_shift, community_helper)",
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("replay", help="produce a JSONL event file onto the topics")
    p.add_argument("file")
    p.add_argument("--broker", required=True, help="kafka://host:port")
    p.add_argument(
        "--rate",
        type=_positive(float),
        default=None,
        help="messages per second (default: as fast as possible)",
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("evaluate", help="run every detector offline over a file and score it")
    p.add_argument("--events", required=True, help="JSONL event file")
    p.add_argument("--truth", help="ground-truth JSONL (prints precision, recall, time to detect)")
    p.add_argument("--alerts-out", required=True, help="where to write the alerts (JSONL)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "label", help="simulated analysts' verdicts on alerts, from the ground truth (JSONL)"
    )
    p.add_argument("--alerts", required=True, help="alerts JSONL (as evaluate writes them)")
    p.add_argument("--truth", required=True, help="the simulation's ground truth JSONL")
    p.add_argument("--out", required=True, help="where to write the labels (replayable JSONL)")
    p.add_argument("--noise", type=_share, default=0.05, help="share of wrong verdicts")
    p.add_argument("--unsure", type=_share, default=0.02, help="share of unsure verdicts")
    p.add_argument("--audit-rate", type=_share, default=0.1, help="share of alerts labelled twice")
    p.add_argument("--delay", type=_positive(float), default=10.0, help="minutes to a verdict")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("console", help="the triage console: analysts label alerts in the browser")
    p.add_argument("--host", help="address to listen on (default ABUSEMON_CONSOLE_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default ABUSEMON_CONSOLE_PORT, 8088)")
    p.set_defaults(func=cmd_console)

    p = sub.add_parser(
        "topics",
        help="the topics: partitions, end offsets, consumer lag, checked against the settings",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["list", "check", "grow"],
        default="list",
        help="list (default); check: exit status 1 on a problem, for deploy pipelines; "
        "grow: add partitions to the input topics and their changelog",
    )
    p.add_argument("--partitions", type=_count, help="with grow: the new partition count")
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("tail", help="print a topic's records as JSON lines")
    p.add_argument("topic", metavar="alerts|dlq|labels|TOPIC", help="dlq: every dead-letter topic")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new records")
    p.add_argument("--limit", type=_count, default=None, help="stop after N records")
    p.add_argument("--detector", help="only alerts of this detector")
    p.add_argument("--severity", help="only alerts of this severity")
    p.add_argument(
        "--entity",
        help="only records about this id: an alert's entity, a label's subject, a message key",
    )
    p.add_argument(
        "--format",
        choices=["json", "text"],
        default="json",
        help="json lines (default) or text: alerts as the demo prints them",
    )
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser(
        "schema", help="the JSON Schema of a record abuse-monitor reads or publishes"
    )
    p.add_argument(
        "name",
        nargs="?",
        choices=["alert", "dead-letter", "content-event", "report-event", "label"],
        help="which record (default: list them)",
    )
    p.set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (UsageError, FileError) as exc:
        print(f"abuse-monitor: error: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"abuse-monitor: error: Kafka: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"abuse-monitor: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
