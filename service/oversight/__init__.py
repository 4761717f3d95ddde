"""Oversight: what auditors read about decisions, models and proportionality."""
