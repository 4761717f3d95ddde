"""Response bodies of the scoring API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str


class Contribution(BaseModel):
    feature: str = Field(description="model feature name")
    label: str = Field(description="what the feature means")
    value: Any = Field(description="the input value behind the feature, as the officer knows it")
    contribution: float = Field(description="SHAP value: change of the log-odds caused by this feature")
    reason: str = Field(description="the contribution in plain language")


class Explanation(BaseModel):
    base_value: float = Field(description="expected log-odds before any feature is known")
    unit: Literal["log-odds"] = "log-odds"
    contributions: list[Contribution] = Field(description="sorted by absolute contribution")


class ScoreResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    decision_id: str
    domain: Literal["cargo", "passenger"]
    model: ModelRef
    score: float = Field(ge=0, le=1, description="calibrated probability of a finding if inspected")
    channel: Literal["green", "yellow", "red"]
    thresholds: dict[str, float] = Field(description="calibrated score at which yellow and red begin")
    explanation: Explanation


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    domain: str
    name: str
    version: str
    sha256: str
    training_period: dict[str, str]
    validation_period: dict[str, str]
    calibration: str
    thresholds: dict[str, float]
    metrics: dict[str, float]
    features: list[dict[str, Any]]


class Health(BaseModel):
    status: str
    models: dict[str, str] = Field(default_factory=dict)
