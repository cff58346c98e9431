"""Train AutoGluon (presets medium_quality) within a budget and write test predictions."""

import json
import sys
import tempfile

import numpy as np
import pandas as pd
from autogluon.tabular import TabularPredictor

train_path, test_path, task, metric, budget, out = sys.argv[1:7]
train, test = pd.read_parquet(train_path), pd.read_parquet(test_path)
ag_metric = {"roc_auc": "roc_auc", "log_loss": "log_loss",
             "rmse": "root_mean_squared_error"}[metric]
problem = {"roc_auc": "binary", "log_loss": "multiclass", "rmse": "regression"}[metric]
with tempfile.TemporaryDirectory() as path:
    predictor = TabularPredictor(label="target", eval_metric=ag_metric, problem_type=problem,
                                 path=path, verbosity=0)
    predictor.fit(train, time_limit=float(budget), presets="medium_quality",
                  num_cpus=2, num_gpus=0)
    X_test = test.drop(columns="target")
    if task == "classification":
        proba = predictor.predict_proba(X_test)
        np.save(out + ".npy", proba.to_numpy())
        json.dump({"classes": [str(c) for c in proba.columns]}, open(out + ".json", "w"))
    else:
        np.save(out + ".npy", predictor.predict(X_test).to_numpy())
        json.dump({}, open(out + ".json", "w"))
