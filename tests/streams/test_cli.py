"""The command line: user mistakes end in one line on stderr and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.cli import main


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def test_missing_events_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = error_of(
        capsys,
        ["evaluate", "--events", str(tmp_path / "nope.jsonl"), "--alerts-out", str(tmp_path / "a")],
    )
    assert code == 2
    assert err.strip() == f"abuse-monitor: error: {tmp_path / 'nope.jsonl'}: no such file"


def test_a_line_that_is_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"topic": "content-events", "value": {}}\nnot json\n')
    code, err = error_of(
        capsys, ["evaluate", "--events", str(events), "--alerts-out", str(tmp_path / "a")]
    )
    assert code == 2 and err.count("\n") == 1
    assert f"{events}:2: not a JSON object" in err


def test_an_unknown_topic(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"topic": "elsewhere", "value": {}}\n')
    code, err = error_of(
        capsys, ["evaluate", "--events", str(events), "--alerts-out", str(tmp_path / "a")]
    )
    assert code == 2 and f"{events}:1: expected" in err


def test_a_bad_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    monkeypatch.setenv("ABUSEMON_WINDOW_S", "-5")
    code, err = error_of(
        capsys, ["evaluate", "--events", str(events), "--alerts-out", str(tmp_path / "a")]
    )
    assert code == 2
    assert err.startswith("abuse-monitor: error: ABUSEMON_WINDOW_S:") and err.count("\n") == 1


def test_a_bad_broker_url(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    code, err = error_of(capsys, ["replay", str(events), "--broker", "nohost"])
    assert code == 2 and "ABUSEMON_BROKER" in err


def test_bad_options_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--out", "x", "--hours", "-1"])
    assert exit_info.value.code == 2
    assert "must be positive" in capsys.readouterr().err


def test_simulate_draws_organic_traffic_from_as_many_accounts_as_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "busy.jsonl"
    args = ["simulate", "--out", str(out), "--hours", "0.2", "--rate", "20"]  # before any attack
    assert main([*args, "--actors", "100"]) == 0
    values = [orjson.loads(line)["value"] for line in out.read_text().split("\n") if line]
    authors = {value["actor_id"] for value in values if "actor_id" in value}
    assert len(values) > 10_000 and 90 <= len(authors) <= 110  # and a few special accounts
    code, err = error_of(capsys, [*args, "--actors", "99"])
    assert code == 2 and "actors must be at least 100" in err and err.count("\n") == 1


def test_simulate_runs_the_scenario_kinds_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "day.jsonl"
    args = ["simulate", "--out", str(out), "--hours", "4", "--rate", "1", "--first-attack", "30"]
    assert main([*args, "--scenarios", "sustained_shift_2x, viral_post"]) == 0
    kinds = [orjson.loads(line)["kind"] for line in Path(f"{out}.truth.jsonl").read_text().split()]
    assert kinds == ["sustained_shift_2x", "viral_post"]
    for bad, says in (("nope", "unknown scenarios ['nope']"), (" , ", "name at least one")):
        code, err = error_of(capsys, [*args, "--scenarios", bad])
        assert code == 2 and says in err and err.count("\n") == 1


def test_simulate_runs_slow_attacks_and_evaluate_reports_each_family_apart(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "slow.jsonl"
    named = "slow_brigade_40,slow_pile_on_20,low_rate_automation_10,slow_report_wave,night_shift"
    args = ["simulate", "--out", str(out), "--hours", "3.5", "--rate", "1", "--attack-every", "30"]
    assert main([*args, "--scenarios", named]) == 0
    truth = Path(f"{out}.truth.jsonl")
    kinds = [orjson.loads(line)["kind"] for line in truth.read_text().split("\n") if line]
    assert kinds == named.split(",")
    # No events to alert on: every slow attack is missed, each listed under its family.
    events = tmp_path / "events.jsonl"
    events.write_text('{"topic": "content-events", "value": {"event_id": "x"}}\n')
    alerts = str(tmp_path / "alerts.jsonl")
    capsys.readouterr()
    assert (
        main(["evaluate", "--events", str(events), "--truth", str(truth), "--alerts-out", alerts])
        == 0
    )
    printed = capsys.readouterr().out
    families = [line for line in printed.splitlines() if line.startswith("Family ")]
    assert families == ["Family slow_brigade", "Family slow_pile_on", "Family low_rate_automation"]
    assert "Per scenario kind" not in printed
    brigades = printed.split("Family slow_brigade\n")[1].split("\n\n")[0].splitlines()
    assert brigades[1].split() == ["slow_brigade_40", "1", "0", "0.0%", "-"]
    assert brigades[3].split() == ["slow_report_wave", "1", "0", "-", "0"]


def evaluate_without_events(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, named: str, every: str
) -> str:
    """What `evaluate` prints for 2.5 simulated hours of the `named` scenarios, one every
    `every` minutes, scored against no events: every attack missed, each in its table."""
    out = tmp_path / "named.jsonl"
    args = ["simulate", "--out", str(out), "--hours", "2.5", "--rate", "1", "--attack-every", every]
    assert main([*args, "--scenarios", named]) == 0
    truth = Path(f"{out}.truth.jsonl")
    events = tmp_path / "events.jsonl"
    events.write_text('{"topic": "content-events", "value": {"event_id": "x"}}\n')
    alerts = str(tmp_path / "alerts.jsonl")
    capsys.readouterr()
    assert (
        main(["evaluate", "--events", str(events), "--truth", str(truth), "--alerts-out", alerts])
        == 0
    )
    return capsys.readouterr().out


def test_evaluate_reports_the_slow_campaigns_in_a_table_of_their_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    named = "slow_campaign_20,organic_link_share,organic_meme"
    printed = evaluate_without_events(capsys, tmp_path, named, "30")
    assert [line for line in printed.splitlines() if line.startswith("Family ")] == [
        "Family slow_campaign"
    ]
    table = printed.split("Family slow_campaign\n")[1].split("\n\n")[0].splitlines()
    assert table[1].split() == ["slow_campaign_20", "1", "0", "0.0%", "-"]
    assert [row.split()[:3] for row in table[3:]] == [
        ["organic_link_share", "1", "0"],
        ["organic_meme", "1", "0"],
    ]


def test_evaluate_reports_slow_mass_messaging_in_a_table_of_its_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    named = "slow_mass_messaging_2,community_helper"
    printed = evaluate_without_events(capsys, tmp_path, named, "40")
    assert [line for line in printed.splitlines() if line.startswith("Family ")] == [
        "Family slow_mass_messaging"
    ]
    table = printed.split("Family slow_mass_messaging\n")[1].split("\n\n")[0].splitlines()
    assert table[1].split() == ["slow_mass_messaging_2", "1", "0", "0.0%", "-"]
    assert [row.split()[:3] for row in table[3:]] == [["community_helper", "1", "0"]]


def test_the_console_script_prints_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "replay",
            str(tmp_path / "missing.jsonl"),
            "--broker",
            "kafka://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_evaluate_writes_alerts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"topic": "content-events", "value": {"event_id": "x"}}\n')
    out = tmp_path / "alerts.jsonl"
    assert main(["evaluate", "--events", str(events), "--alerts-out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "content-events: 1 consumed, 1 dead-lettered" in printed
    assert out.read_text() == ""


def test_an_unreachable_broker(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"topic": "content-events", "value": {}}\n')
    code, err = error_of(capsys, ["replay", str(events), "--broker", "kafka://127.0.0.1:9"])
    assert code == 1
    assert err.startswith("abuse-monitor: error: Kafka:") and err.count("\n") == 1
