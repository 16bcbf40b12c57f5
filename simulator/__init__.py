"""Realistic organic traffic with injected, ground-truthed attacks, reproducible from a seed."""

from simulator.core import SimConfig, generate, schedule, truth, write_files
from simulator.labeler import Labeler, LabelerConfig
from simulator.organic import diurnal
from simulator.scenarios import KINDS

__all__ = [
    "KINDS",
    "Labeler",
    "LabelerConfig",
    "SimConfig",
    "diurnal",
    "generate",
    "schedule",
    "truth",
    "write_files",
]
