"""Names that matplotlib's font cannot draw (Chinese, Japanese, Korean with the default DejaVu
Sans) are shown by number, with a note in the caption, not as empty boxes and a warning per
character."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tasks.backtest import actuals, mase_scales
from tasks.charts import STAND_IN_NOTE, classification_charts, drawable, importance_chart
from tasks.forecast_charts import forecast_charts
from tasks.forecast_data import Panel


def test_a_name_the_font_cannot_draw_gets_its_stand_in():
    assert drawable("città größe ñ", "x") == "città größe ñ"
    assert drawable("年龄", "#1") == "#1" and drawable("売上 (円)", "#2") == "#2"


def test_charts_of_cjk_names_draw_without_glyph_warnings():
    rng = np.random.default_rng(0)
    y, proba = rng.integers(0, 3, 200), rng.dirichlet([1, 1, 1], 200)
    table = pd.DataFrame({"feature": ["年龄", "收入", "città"], "importance": [0.3, 0.2, 0.1],
                          "std": [0.01] * 3, "metric": "log_loss"})
    values = [50 + rng.normal(0, 1, 96) for _ in range(2)]
    panel = Panel([("北京",), ("city",)], values, [pd.Timestamp("2024-03-04 23:00")] * 2, "h", 24)
    actual = actuals(panel, 24, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph 24180 ... missing from font(s)" would raise
        charts = [*classification_charts(y, proba, ["猫", "dog", "鸟"]), importance_chart(table),
                  *forecast_charts(panel, actual, actual, np.zeros((2, 24)), {},
                                   mase_scales(panel, 24, 2), "销售额", None, ["城市"])]
    captions = {c.name: c.caption for c in charts}
    for name in ("roc.png", "precision_recall.png", "confusion_matrix.png",
                 "feature_importance.png", "forecast.png"):
        assert STAND_IN_NOTE in captions[name], name
    assert STAND_IN_NOTE not in captions["calibration.png"]  # it names no class
    assert charts[4].numbers["年龄"] == 0.3  # the numbers keep the real names
    plain = importance_chart(table.assign(feature=["age", "income", "città"]))
    assert STAND_IN_NOTE not in plain.caption
