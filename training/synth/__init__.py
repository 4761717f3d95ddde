"""Synthetic inspection histories (cargo declarations and air passengers) for demos and tests."""

from training.synth.cargo import generate_cargo
from training.synth.passenger import generate_passenger

__all__ = ["generate_cargo", "generate_passenger"]
