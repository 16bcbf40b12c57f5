"""The simulated traffic a benchmark replays: its command-line options, and the settings
they give the simulator. The benchmarks that compare two checkouts over the same events
(`bench/instructions.py`, `bench/wire.py`) and the budget (`bench/budget.py`) take these."""

from __future__ import annotations

import argparse

from simulator import SimConfig


def add_options(parser: argparse.ArgumentParser) -> None:
    """--hours, --rate and --actors: the simulated day's rate and accounts by default."""
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours of events")
    parser.add_argument("--rate", type=float, default=20.0, help="organic content events/s")
    parser.add_argument("--actors", type=int, default=SimConfig.actors, help="organic accounts")


def config(args: argparse.Namespace) -> SimConfig:
    """The simulator's settings for the options `add_options` declared."""
    return SimConfig(duration_s=args.hours * 3600, rate=args.rate, actors=args.actors)
