"""Optional hyper-parameter search (``borderrisk train … --tune N``) with Optuna.

The search never sees the validation period on which the run's metrics are reported: it splits the
*training* period again by time (an inner training and an inner validation period, the same
``valid_fraction``, history frozen at the inner cut as in the real split) and maximises the inner
validation's PR-AUC (average precision: the quality of the top of the ranking, where inspections
are spent, and smoother than precision at one budget). The chosen parameters then train the model
on the full training period, early-stopped and judged on the untouched validation period.

TPE with a fixed seed: the same data, seed and budget give the same trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from features.domains import builder_class
from training.pipeline import TUNABLE, TrainConfig, fit_booster, prepare, time_split


def search_space(trial: Any) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 200, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
    }


def tune(df: pd.DataFrame, config: TrainConfig, trials: int) -> tuple[TrainConfig, dict[str, Any]]:
    """Search ``trials`` parameter sets on the inner split; the config to train with, and the record."""
    import optuna

    if trials < 1:
        raise ValueError("--tune needs at least one trial")
    cls = builder_class(config.domain)
    times = df[cls.time_field]
    outer_cut = time_split(times, config.valid_fraction)
    inner = df[(times < outer_cut).to_numpy()]
    p = prepare(inner, config)
    val = p.val_rows
    if p.y[p.fit_rows].sum() == 0 or p.y[val].sum() == 0:
        raise ValueError("too few positive rows in the training period to tune (inner split)")

    def objective(trial: Any) -> float:
        candidate = config.model_copy(update=search_space(trial))
        booster, best, _ = fit_booster(p, candidate)
        margin = booster.predict(p.X[val], raw_score=True, num_threads=1)
        trial.set_user_attr("best_iteration", best)
        return float(average_precision_score(p.y[val], margin))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    # The defaults go first, so the search reports how much it gained over them.
    study.enqueue_trial({k: getattr(config, k) for k in TUNABLE})
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    record = {
        "trials": [
            {
                "number": t.number,
                "value": t.value,
                **t.params,
                "best_iteration": t.user_attrs.get("best_iteration"),
            }
            for t in study.trials
        ],
        "objective": "PR-AUC on the inner validation period (inside the training period)",
        "inner_validation_starts": str(p.cut),
        "outer_validation_starts": str(outer_cut),
        "default_value": float(study.trials[0].value or np.nan),
        "best_value": float(best.value or np.nan),
        "best_params": dict(best.params),
        "n_trials": len(study.trials),
    }
    return config.model_copy(update=best.params), record
