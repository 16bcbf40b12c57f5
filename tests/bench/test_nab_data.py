"""Where the NAB benchmark finds NAB's data, and what it says when the data is not there.

These run without NAB's data: they build a tiny corpus of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import nab
from bench.nab_score import NAB_DATA_ENV, NabDataMissing, nab_data

ROOT = Path(__file__).resolve().parents[2]
SERIES = "artificialWithAnomaly/tiny.csv"


def tiny_corpus(folder: Path) -> Path:
    """A corpus in NAB's layout: one series of 400 five-minute rows with a jump in a window."""
    rows = ["timestamp,value"]
    for i in range(400):
        minutes = 5 * i
        value = 80.0 if 300 <= i < 305 else 10.0 + (i % 3)
        rows.append(
            f"2020-01-{1 + minutes // 1440:02d} {minutes % 1440 // 60:02d}:{minutes % 60:02d}:00,{value}"
        )
    (folder / "data" / SERIES).parent.mkdir(parents=True)
    (folder / "data" / SERIES).write_text("\n".join(rows) + "\n")
    window = [rows[291].split(",")[0] + ".000000", rows[320].split(",")[0] + ".000000"]
    (folder / "labels").mkdir()
    (folder / "labels" / "combined_windows.json").write_text(json.dumps({SERIES: [window]}))
    cost = {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 1.0}
    (folder / "config").mkdir()
    (folder / "config" / "profiles.json").write_text(json.dumps({"standard": {"CostMatrix": cost}}))
    return folder


def test_the_benchmark_reads_the_folder_the_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tiny_corpus(tmp_path / "nab")
    monkeypatch.setenv(NAB_DATA_ENV, str(corpus))
    nab.main(["--out", str(tmp_path / "out")])
    written = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.csv")
    )
    assert written == [SERIES]
    assert "standard" in capsys.readouterr().out


def test_data_given_on_the_command_line_comes_before_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tiny_corpus(tmp_path / "nab")
    monkeypatch.setenv(NAB_DATA_ENV, str(tmp_path / "nowhere"))
    assert nab_data(corpus) == corpus
    with pytest.raises(NabDataMissing, match=NAB_DATA_ENV):
        nab_data()


@pytest.mark.parametrize(
    "command", [["bench/nab.py", "--out", "out"], ["bench/nab_score.py", "--results", "out"]]
)
def test_without_the_data_a_script_says_where_to_get_it_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    env = {**os.environ, NAB_DATA_ENV: str(tmp_path / "empty")}
    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert done.stdout == ""
    message = done.stderr.strip()
    assert "\n" not in message, message
    assert str(tmp_path / "empty") in message
    assert NAB_DATA_ENV in message
    assert "github.com/numenta/NAB" in message
