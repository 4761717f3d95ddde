"""Response bodies of the scoring API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.schemas import CargoDeclaration, PassengerRecord


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


class Remaining(BaseModel):
    """A compact explanation's unworded contributions: exact numbers, by feature name."""

    features: list[str] = Field(description="model feature names, continuing the sorted order")
    contributions: list[float] = Field(description="their SHAP values, in the same order")


class Explanation(BaseModel):
    base_value: float = Field(description="expected log-odds before any feature is known")
    unit: Literal["log-odds"] = "log-odds"
    contributions: list[Contribution] = Field(description="sorted by absolute contribution")
    remaining: Remaining | None = Field(
        default=None,
        exclude_if=lambda v: v is None,  # a full explanation has no such key, in the log as here
        description=(
            "compact explanations only (batch `explanation=compact`): every feature not worded above, "
            "by name and exact contribution; base value plus all contributions is the log-odds"
        ),
    )


class ScoreResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    decision_id: str
    domain: Literal["cargo", "passenger"]
    model: ModelRef
    score: float = Field(ge=0, le=1, description="calibrated probability of a finding if inspected")
    channel: Literal["green", "yellow", "red"]
    selection: Literal["random", "risk", "none"] = Field(
        description="why it is (not) selected for inspection: drawn at random, red channel, or neither"
    )
    inspect: bool = Field(
        description="selected for inspection (random or risk); an officer reviews every hit"
    )
    thresholds: dict[str, float] = Field(description="calibrated score at which yellow and red begin")
    explanation: Explanation


class BatchResponse(BaseModel):
    decisions: list[ScoreResponse]


class ReviewRequest(BaseModel):
    """An officer's review: confirm the channel, or override it with a reason."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "action": "override",
                    "channel": "green",
                    "reason": "known regular importer, documents checked",
                }
            ],
            # The rule of ``_override_needs_channel_and_reason``, stated in the schema too, so that a
            # client (and a schema-driven fuzzer) knows an override without channel or reason is invalid.
            "oneOf": [
                {"properties": {"action": {"const": "confirm"}}},
                {
                    "properties": {
                        "action": {"const": "override"},
                        "channel": {"enum": ["green", "yellow", "red"]},
                        "reason": {"type": "string", "pattern": "\\S"},
                    },
                    "required": ["channel", "reason"],
                },
            ],
        },
    )

    action: Literal["confirm", "override"]
    channel: Literal["green", "yellow", "red"] | None = Field(
        default=None, description="the new channel (override); omitted on confirm"
    )
    reason: str = Field(default="", max_length=10_000, description="required for an override")

    @model_validator(mode="after")
    def _override_needs_channel_and_reason(self) -> ReviewRequest:
        if self.action == "override":
            if self.channel is None:
                raise ValueError("an override must name the new channel")
            if not self.reason.strip():
                raise ValueError("an override needs a reason")
        return self


class ReviewResponse(BaseModel):
    review_id: str
    decision_id: str
    action: str
    channel: str
    previous_channel: str


class OutcomeRequest(BaseModel):
    """The result of the inspection."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"finding": True, "revenue_recovered": 1840.0, "note": "undervalued invoice"}]
        },
    )

    finding: bool
    revenue_recovered: float | None = Field(default=None, ge=0, le=1e13, allow_inf_nan=False)
    note: str | None = Field(default=None, max_length=10_000)


class OutcomeResponse(BaseModel):
    outcome_id: str
    decision_id: str
    finding: bool


class ReloadResponse(BaseModel):
    domain: str
    name: str
    version: str
    sha256: str
    previous_version: str | None


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


class CargoBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    declarations: list[CargoDeclaration] = Field(min_length=1, description="at most BORDERRISK_BATCH_MAX")


class PassengerBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[PassengerRecord] = Field(min_length=1, description="at most BORDERRISK_BATCH_MAX")
