"""The usual way, as a peer for the request-path benchmark: dict → 1-row DataFrame → shap.TreeExplainer.

Same registered model, same features, no authentication and no decision log (both favour the peer).
Run as ``python -m bench.serve bench.usual_app:app``; it reads the same ``BORDERRISK_*`` settings
as the service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pandas as pd
import shap
from fastapi import FastAPI

from borderrisk.settings import get_settings

state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from training.registry import fetch_bundle

    bundle, reg = fetch_bundle(get_settings(), "cargo")
    state.update(
        bundle=bundle,
        builder=bundle.builder(),
        explainer=shap.TreeExplainer(bundle.booster),
        version=reg.version,
    )
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/v1/cargo/score")
def score(payload: dict[str, Any]) -> dict[str, Any]:
    builder, bundle = state["builder"], state["bundle"]
    frame = pd.DataFrame([payload])
    frame["declared_at"] = pd.to_datetime(frame["declared_at"], utc=True).dt.tz_localize(None)
    X = pd.DataFrame(builder.transform({c: frame[c] for c in frame.columns}), columns=builder.feature_names)
    contributions = np.asarray(state["explainer"].shap_values(X))[0]
    margin = float(bundle.booster.predict(X, raw_score=True)[0])
    return {
        "score": float(bundle.calibrator.apply(margin)),
        "model": state["version"],
        "contributions": dict(zip(builder.feature_names, map(float, contributions), strict=True)),
    }
