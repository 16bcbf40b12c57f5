"""The repository's files alone, with nothing beside them, are enough for the tests.

A copy of the checkout's files goes to an empty folder; there every test module is collected,
the benchmark tests and the docs' tests run, and NAB's tests, whose data is not in the
repository, are the only ones skipped, saying where to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.nab_score import NAB_DATA_ENV

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = (".git", ".venv", "venv", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis")


def files_of_a_clone() -> list[str]:
    """The checkout's files as a clone would have them (untracked ones not ignored included)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def copy_alone(folder: Path) -> Path:
    copy = folder / "abuse-monitor"
    if (ROOT / ".git").exists():
        for name in files_of_a_clone():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    else:
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*LEFT_OUT))
    return copy


def run_in(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != NAB_DATA_ENV}
    env["PYTHONPATH"] = str(copy)
    return subprocess.run(
        [sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True
    )


def test_a_copy_with_nothing_beside_it_skips_only_the_nab_tests(tmp_path: Path) -> None:
    copy = copy_alone(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abuse-monitor"]

    collected = run_in(copy, "-m", "pytest", "--collect-only", "-q")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "error" not in collected.stdout.splitlines()[-1], collected.stdout

    report = tmp_path / "report.xml"
    ran = run_in(
        copy, "-m", "pytest", "-q", f"--junitxml={report}", "tests/bench", "tests/test_docs.py"
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    cases = ET.parse(report).getroot().iter("testcase")
    outcomes = {
        (case.get("classname"), case.get("name")): [child.tag for child in case] for case in cases
    }
    assert not [case for case, tags in outcomes.items() if {"failure", "error"} & set(tags)]
    skipped = {case for case, tags in outcomes.items() if "skipped" in tags}
    nab_tests = {case for case in outcomes if case[0] == "tests.bench.test_nab"}
    assert nab_tests and skipped == nab_tests
    for case in ET.parse(report).getroot().iter("skipped"):
        message = case.get("message", "")
        assert NAB_DATA_ENV in message and "github.com/numenta/NAB" in message, message

    bench = run_in(copy, "bench/nab.py", "--out", str(tmp_path / "out"))
    assert bench.returncode != 0
    assert bench.stderr.count("\n") == 1 and "Traceback" not in bench.stderr, bench.stderr
    assert NAB_DATA_ENV in bench.stderr and str(tmp_path / "shared") in bench.stderr
