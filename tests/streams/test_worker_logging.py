"""The worker's logging set-up: Faust's start-up spinner does not open the root logger to DEBUG."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import logging, faust
from streams.worker import _Worker
worker = _Worker(faust.App("t", broker="kafka://127.0.0.1:1", store="memory://"),
                 loglevel=%r, quiet=True, redirect_stdouts=False)
worker._setup_logging()
print(logging.getLevelName(logging.root.level), logging.getLogger("aiokafka").isEnabledFor(logging.DEBUG))
"""


@pytest.mark.parametrize(
    ("level", "root"), [("warning", "WARNING"), ("error", "ERROR"), ("info", "INFO")]
)
def test_the_root_logger_keeps_the_configured_level(level: str, root: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM % level], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [root, "False"]
