"""Train FLAML on train.parquet within a budget and write test predictions (run by tabular.py)."""

import json
import sys

import numpy as np
import pandas as pd
from flaml import AutoML

train_path, test_path, task, metric, budget, out = sys.argv[1:7]
train, test = pd.read_parquet(train_path), pd.read_parquet(test_path)
X, y = train.drop(columns="target"), train["target"]
automl = AutoML()
flaml_metric = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "rmse"}[metric]
automl.fit(X, y, task="classification" if task == "classification" else "regression",
           metric=flaml_metric, time_budget=float(budget), n_jobs=2, seed=0, verbose=0)
X_test = test.drop(columns="target")
if task == "classification":
    proba = automl.predict_proba(X_test)
    classes = [str(c) for c in automl.classes_]
    np.save(out + ".npy", proba)
    json.dump({"classes": classes}, open(out + ".json", "w"))
else:
    np.save(out + ".npy", automl.predict(X_test))
    json.dump({}, open(out + ".json", "w"))
