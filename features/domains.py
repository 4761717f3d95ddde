"""The feature builder of each domain."""

from __future__ import annotations

from features.builder import FeatureBuilder
from features.cargo import CargoFeatures
from features.passenger import PassengerFeatures

BUILDERS: dict[str, type[FeatureBuilder]] = {"cargo": CargoFeatures, "passenger": PassengerFeatures}


def builder_class(domain: str) -> type[FeatureBuilder]:
    try:
        return BUILDERS[domain]
    except KeyError:
        raise ValueError(f"unknown domain {domain!r}; expected one of {sorted(BUILDERS)}") from None
