"""The feature policy: which attributes a model may never use, and which it may use only as allowed.

Each domain has a policy file (``training/policies/<domain>.yaml``) validated by
:class:`FeaturePolicy`. Training calls :func:`enforce_policy` on the builder's features before any
model is fitted: a feature whose name or whose sources (``FeatureDef.sources``, the record fields it
is derived from) match a *prohibited* attribute is refused, and so is one that matches a *monitored*
attribute, unless the policy allows monitored features or lists that derived use, with a written
justification, under ``allowed_derived_uses``. A *direct* use of a monitored attribute (the feature
is the attribute, or is derived from it alone) is never allowed by a derived-use entry.

Names match on whole words after splitting on ``_``, ``-``, spaces and camelCase: the alias
``ethnicity`` catches ``ethnicity_code`` and ``passengerEthnicity`` but not ``ethnicityx``; a
multi-word alias (``country_of_origin``) must appear as consecutive words.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.common import FeatureDef

POLICY_DIR = Path(__file__).parent / "policies"

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


def words(name: str) -> tuple[str, ...]:
    """``"passengerEthnicity_code"`` → ``("passenger", "ethnicity", "code")``."""
    return tuple(w for w in _SPLIT.split(_WORD_BOUNDARY.sub("_", name).lower()) if w)


def matches(name: str, alias: str) -> bool:
    """Whether ``alias`` appears in ``name`` as consecutive whole words."""
    n, a = words(name), words(alias)
    if not a or len(a) > len(n):
        return False
    return any(n[i : i + len(a)] == a for i in range(len(n) - len(a) + 1))


class PolicyViolation(ValueError):
    """A model uses an attribute its domain's feature policy does not allow; each problem is named."""

    def __init__(self, domain: str, problems: Sequence[str], policy_file: str) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"feature policy {policy_file} refuses this {domain} model ({len(problems)} problem(s)):\n{lines}"
        )


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DerivedUse(_Frozen):
    """Derived features allowed to use a monitored attribute, and why."""

    features: tuple[str, ...] = Field(min_length=1)
    justification: str = Field(min_length=80, description="why this use is necessary and proportionate")

    def allows(self, feature: str) -> bool:
        """Whether the feature is listed (names or shell-style patterns such as ``lane_*``)."""
        return any(fnmatch.fnmatchcase(feature, pattern) for pattern in self.features)


class ProxyCheck(_Frozen):
    """How the proxy check is run at training time and when it flags."""

    flag_auc: float = Field(0.8, gt=0.5, le=1.0, description="flag an attribute at or above this ROC-AUC")
    sample_rows: int = Field(20_000, ge=1_000, le=1_000_000)
    max_classes: int = Field(8, ge=2, le=50, description="most frequent values scored one-vs-rest")
    min_class_rows: int = Field(200, ge=10, description="a value needs this many sample rows to be scored")


class FeaturePolicy(_Frozen):
    domain: Literal["cargo", "passenger"]
    #: category (e.g. ``racial_or_ethnic_origin``) → attribute names and aliases
    prohibited: dict[str, tuple[str, ...]]
    #: monitored attribute → names and aliases (the attribute's own name is always included)
    monitored: dict[str, tuple[str, ...]]
    allow_monitored_features: bool = False
    allowed_derived_uses: dict[str, DerivedUse] = Field(default_factory=dict)
    proxy_check: ProxyCheck = Field(default_factory=ProxyCheck)

    @field_validator("prohibited", "monitored")
    @classmethod
    def _aliases_are_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for key, aliases in value.items():
            if not words(key):
                raise ValueError(f"{key!r} is not an attribute name")
            for alias in aliases:
                if not words(alias):
                    raise ValueError(f"{key}: alias {alias!r} has no letters or digits")
        return value

    @model_validator(mode="after")
    def _derived_uses_are_of_monitored_attributes(self) -> FeaturePolicy:
        if not self.prohibited:
            raise ValueError("a policy must list prohibited attributes")
        unknown = set(self.allowed_derived_uses) - set(self.monitored)
        if unknown:
            raise ValueError(
                f"allowed_derived_uses names {sorted(unknown)}: only monitored attributes can have "
                "derived uses (prohibited ones never)"
            )
        return self

    def aliases(self, attribute: str) -> tuple[str, ...]:
        return (attribute, *self.monitored[attribute])


def policy_path(domain: str) -> Path:
    return POLICY_DIR / f"{domain}.yaml"


def load_policy(domain: str, path: Path | None = None) -> FeaturePolicy:
    """Read and validate a policy file; a malformed file is an error naming the file and the field."""
    path = path or policy_path(domain)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"feature policy {path}: cannot be read ({exc})") from None
    try:
        policy = FeaturePolicy.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"feature policy {path} is invalid:\n{exc}") from None
    if policy.domain != domain:
        raise ValueError(f"feature policy {path} is for {policy.domain}, not {domain}")
    return policy


def _hit(names: Iterable[str], aliases: Iterable[str]) -> tuple[str, str] | None:
    for name in names:
        for alias in aliases:
            if matches(name, alias):
                return name, alias
    return None


def check_features(policy: FeaturePolicy, features: Sequence[FeatureDef]) -> tuple[list[str], list[dict]]:
    """Problems (empty when the model complies) and the allowed uses of monitored attributes."""
    problems: list[str] = []
    allowed: list[dict[str, Any]] = []
    for f in features:
        names = (f.name, *f.sources)
        for category, aliases in policy.prohibited.items():
            hits: dict[str, str] = {}
            for name in names:
                alias = next((a for a in aliases if matches(name, a)), None)
                if alias is not None:
                    hits.setdefault(name, alias)
            if hits:
                via = "; ".join(
                    f"its name matches '{a}'" if n == f.name else f"its source field '{n}' matches '{a}'"
                    for n, a in hits.items()
                )
                problems.append(
                    f"feature '{f.name}' uses a prohibited attribute ({category.replace('_', ' ')}): {via}"
                )
        for attribute in policy.monitored:
            aliases = policy.aliases(attribute)
            hit = _hit(names, aliases)
            if not hit:
                continue
            # Direct use: the feature *is* the attribute (same name) or is derived from it alone.
            direct = any(words(f.name) == words(a) for a in aliases)
            direct = direct or all(_hit([s], aliases) for s in f.sources)
            derived = policy.allowed_derived_uses.get(attribute)
            if policy.allow_monitored_features:
                allowed.append(
                    {"attribute": attribute, "feature": f.name, "basis": "allow_monitored_features"}
                )
            elif derived is not None and derived.allows(f.name) and not direct:
                allowed.append(
                    {
                        "attribute": attribute,
                        "feature": f.name,
                        "sources": list(f.sources),
                        "basis": "allowed_derived_uses",
                        "justification": derived.justification,
                    }
                )
            else:
                kind = "directly" if direct else "in a derived feature the policy does not list"
                problems.append(
                    f"feature '{f.name}' uses the monitored attribute '{attribute}' {kind} "
                    f"(via '{hit[0]}'); monitored attributes are not model inputs"
                )
    return problems, allowed


def enforce_policy(
    domain: str,
    features: Sequence[FeatureDef],
    policy: FeaturePolicy | None = None,
    schema_fields: Iterable[str] | None = None,
    policy_file: Path | None = None,
) -> dict[str, Any]:
    """Refuse a non-compliant model (:class:`PolicyViolation`); else the record for the model card.

    ``schema_fields`` (default: the domain's declaration schema) are the inputs a model could use;
    those no feature is derived from are listed as excluded.
    """
    if schema_fields is None:
        from features.schemas import SCHEMAS

        schema_fields = SCHEMAS[domain].model_fields
    path = policy_file or policy_path(domain)
    if policy is None:
        policy = load_policy(domain, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        source = (
            str(path.relative_to(POLICY_DIR.parent.parent)) if path.is_relative_to(POLICY_DIR) else str(path)
        )
    else:
        digest = hashlib.sha256(policy.model_dump_json().encode()).hexdigest()
        source = "(policy given to train())"
    problems, allowed = check_features(policy, features)
    if problems:
        raise PolicyViolation(domain, problems, source)
    used = {s for f in features for s in f.sources}
    return {
        "file": source,
        "sha256": digest,
        "result": "passed",
        "prohibited_categories": sorted(policy.prohibited),
        "monitored_attributes": sorted(policy.monitored),
        "monitored_as_features": "allowed" if policy.allow_monitored_features else "refused",
        "allowed_uses": allowed,
        "excluded_inputs": sorted(set(schema_fields) - used),
        "proxy_check": policy.proxy_check.model_dump(),
    }
