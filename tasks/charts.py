"""PNG charts of a run, drawn with matplotlib's object API (no pyplot state, safe in threads).

Every chart function returns a :class:`Chart`: the PNG bytes, a caption, and the numbers the
chart shows, so that reports and tests can check them against ``metrics.json``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib import colormaps, font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics as skm

from tasks.evaluate import METRICS, compute_metrics

__all__ = ["STAND_IN_NOTE", "Chart", "classification_charts", "drawable", "family_chart",
           "importance_chart", "regression_charts", "run_chart"]

MAX_CLASSES_DRAWN = 10


@dataclass
class Chart:
    """One PNG and what it shows."""

    name: str
    caption: str
    png: bytes
    numbers: dict[str, float] = field(default_factory=dict)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _family_colours(families: Sequence[str]) -> dict[str, tuple]:
    """One colour per model family, the same in every chart of the run."""
    palette = colormaps["tab10"].colors
    return {f: palette[i % len(palette)] for i, f in enumerate(sorted(set(families)))}


def _few_ticks(ax: Axes) -> None:
    """At most five ticks per axis: large values (300000) would otherwise run together."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))


def _short(label: str, width: int = 32) -> str:
    """A label that leaves room for the plot: long column names end in an ellipsis."""
    return label if len(label) <= width else label[:width - 1] + "\u2026"


STAND_IN_NOTE = "; a name its font cannot draw is shown by number"


def drawable(text: str, stand_in: str) -> str:
    """``text``, or ``stand_in`` when matplotlib's font has no glyph for one of its characters
    (Chinese, Japanese or Korean names with the default DejaVu Sans): drawn, they would be
    empty boxes and a warning for each character."""
    # get_font caches one font object per thread, as matplotlib itself uses them.
    font = font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))
    if all(c.isspace() or font.get_char_index(ord(c)) for c in text):
        return text
    return stand_in


def _figure(width: float = 6.0, height: float = 4.5) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def _class(classes: Sequence, i: int) -> str:
    """A class's name as a chart shows it: ``#i`` (its ``predict_proba`` column) for one the
    font cannot draw."""
    return drawable(str(classes[i]), f"#{i}")


def _class_note(classes: Sequence) -> str:
    if all(_class(classes, i) == str(c) for i, c in enumerate(classes)):
        return ""
    return STAND_IN_NOTE + " (#i: the class's predict_proba column)"


def _drawn_classes(classes: Sequence, y: np.ndarray) -> list[int]:
    counts = np.bincount(y, minlength=len(classes))
    return [int(i) for i in np.argsort(-counts, kind="stable")[:MAX_CLASSES_DRAWN]]


def _roc(y: np.ndarray, proba: np.ndarray, classes: Sequence, auc: float) -> Chart:
    figure, ax = _figure()
    if proba.shape[1] == 2:
        fpr, tpr, _ = skm.roc_curve(y, proba[:, 1])
        ax.plot(fpr, tpr, label=f"positive class {_class(classes, 1)}")
    else:
        for i in _drawn_classes(classes, y):
            fpr, tpr, _ = skm.roc_curve(y == i, proba[:, i])
            ax.plot(fpr, tpr, linewidth=1, label=f"{_class(classes, i)} vs rest")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title=f"ROC curve (validation), ROC AUC = {auc:.4f}")
    ax.legend(loc="lower right", fontsize="small")
    return Chart("roc.png", "ROC curve of the chosen model on validation rows"
                 + _class_note(classes), _png(figure), {"roc_auc": auc})


def _precision_recall(y: np.ndarray, proba: np.ndarray, classes: Sequence,
                      ap: float) -> Chart:
    figure, ax = _figure()
    drawn = [1] if proba.shape[1] == 2 else _drawn_classes(classes, y)
    for i in drawn:
        precision, recall, _ = skm.precision_recall_curve(y == i, proba[:, i])
        ax.plot(recall, precision, linewidth=1.5 if len(drawn) == 1 else 1,
                label=f"class {_class(classes, i)}")
    ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02),
           title=f"Precision-recall (validation), average precision = {ap:.4f}")
    ax.legend(loc="lower left", fontsize="small")
    return Chart("precision_recall.png", "Precision against recall on validation rows"
                 + _class_note(classes), _png(figure), {"average_precision": ap})


def _confusion(y: np.ndarray, predicted: np.ndarray, classes: Sequence,
               accuracy: float) -> Chart:
    matrix = skm.confusion_matrix(y, predicted, labels=np.arange(len(classes)))
    size = min(12.0, 3.0 + 0.45 * len(classes))
    figure, ax = _figure(size, size * 0.85)
    ax.imshow(matrix, cmap="Blues")
    names = [_class(classes, i) for i in range(len(classes))]
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 4 else 0, ha="right")
    ax.set_yticks(range(len(names)), names)
    if len(names) <= 20:
        high = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize="small",
                    color="white" if count > high else "black")
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix, accuracy = {accuracy:.4f}")
    return Chart("confusion_matrix.png", "Validation rows by true and predicted class"
                 + _class_note(classes), _png(figure),
                 {"accuracy": accuracy, "rows": float(matrix.sum())})


def _reliability(hit: np.ndarray, confidence: np.ndarray,
                 n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean confidence and observed frequency in bins of equal counts."""
    order = np.argsort(confidence, kind="stable")
    bins = [b for b in np.array_split(order, min(n_bins, len(order))) if len(b)]
    return (np.array([confidence[b].mean() for b in bins]),
            np.array([hit[b].mean() for b in bins]))


def _calibration(y: np.ndarray, proba: np.ndarray, classes: Sequence) -> Chart:
    figure, ax = _figure()
    if proba.shape[1] == 2:
        hit, confidence, label = y == 1, proba[:, 1], f"positive class {_class(classes, 1)}"
    else:
        top = proba.argmax(axis=1)
        hit, confidence, label = top == y, proba.max(axis=1), "predicted class"
    hit = hit.astype(float)
    predicted_rate, true_rate = _reliability(hit, confidence)
    brier = float(np.mean((confidence - hit) ** 2))
    ax.plot(predicted_rate, true_rate, marker="o", label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.set(xlabel="predicted probability", ylabel="observed frequency",
           title=f"Calibration (validation), Brier score = {brier:.4f}")
    ax.legend(loc="upper left", fontsize="small")
    return Chart("calibration.png", "Predicted probabilities against observed frequencies",
                 _png(figure), {"brier": brier})


def classification_charts(y: np.ndarray, proba: np.ndarray, classes: Sequence) -> list[Chart]:
    """ROC, precision-recall, confusion matrix and calibration of validation predictions.

    Parameters
    ----------
    y : ndarray
        Encoded labels ``0..k-1`` of the validation rows.
    proba : ndarray of shape (n, k)
        The chosen model's out-of-fold probabilities for those rows.
    classes : sequence
        Original labels, index = encoded label.
    """
    predicted = proba.argmax(axis=1)
    scores = compute_metrics("classification", y, predicted, proba)
    charts = [_confusion(y, predicted, classes, scores["accuracy"]),
              _calibration(y, proba, classes)]
    if not math.isnan(scores["roc_auc"]):
        charts.insert(0, _roc(y, proba, classes, scores["roc_auc"]))
    if not math.isnan(scores["average_precision"]):
        charts.insert(1, _precision_recall(y, proba, classes, scores["average_precision"]))
    return charts


def regression_charts(y: np.ndarray, prediction: np.ndarray) -> list[Chart]:
    """Residuals and predicted-against-true of validation predictions."""
    scores = compute_metrics("regression", y, prediction)
    residual = y - prediction
    figure, ax = _figure()
    ax.scatter(prediction, residual, s=8, alpha=0.5)
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="predicted", ylabel="true - predicted",
           title=f"Residuals (validation), MAE = {scores['mae']:.4g}")
    _few_ticks(ax)
    residuals = Chart("residuals.png", "Validation residuals against predictions", _png(figure),
                      {"mae": scores["mae"]})
    figure, ax = _figure()
    ax.scatter(y, prediction, s=8, alpha=0.5)
    low, high = float(min(y.min(), prediction.min())), float(max(y.max(), prediction.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="true", ylabel="predicted",
           title=f"Predicted vs true (validation)\nRMSE = {scores['rmse']:.4g}, "
                 f"R² = {scores['r2']:.3f}")
    _few_ticks(ax)
    truth = Chart("predicted_vs_true.png", "Validation predictions against true values",
                  _png(figure), {"rmse": scores["rmse"], "r2": scores["r2"]})
    return [residuals, truth]


def run_chart(leaderboard: pd.DataFrame, metric: str) -> Chart:
    """The primary metric of every candidate by the time it finished, and the best so far."""
    done = leaderboard[(leaderboard["status"] == "ok") & (leaderboard["family"] != "ensemble")
                       & (leaderboard["fraction"] >= 1.0)].sort_values("finished_seconds")
    figure, ax = _figure(7.0, 4.5)
    colours = _family_colours(done["family"])
    for family, group in done.groupby("family"):
        ax.scatter(group["finished_seconds"], group[metric], s=14, label=family,
                   color=colours[family])
    better = np.fmax if METRICS[metric].greater_is_better else np.fmin
    best = better.accumulate(done[metric].to_numpy()) if len(done) else np.array([])
    ax.step(done["finished_seconds"], best, where="post", color="black", linewidth=1,
            label="best so far")
    ax.set(xlabel="seconds since the run started", ylabel=f"{metric} (validation)",
           title=f"{metric} of each candidate as the search went on")
    ax.legend(fontsize="small", ncol=2)
    final = float(best[-1]) if len(best) else math.nan
    return Chart("run_chart.png", "The search over time: each candidate's validation score",
                 _png(figure), {"best_single": final, "candidates": float(len(done))})


def family_chart(leaderboard: pd.DataFrame, metric: str) -> Chart:
    """Every candidate's score by model family, best family on top."""
    done = leaderboard[(leaderboard["status"] == "ok") & (leaderboard["fraction"] >= 1.0)]
    greater = METRICS[metric].greater_is_better
    best = done.groupby("family")[metric].agg("max" if greater else "min")
    order = best.sort_values(ascending=not greater).index.tolist()
    figure, ax = _figure(7.0, 1.2 + 0.45 * max(1, len(order)))
    # The run chart's colours (it has no blend: the blend's dots are grey).
    colours = _family_colours(done.loc[done["family"] != "ensemble", "family"])
    for row, family in enumerate(reversed(order)):
        values = done.loc[done["family"] == family, metric]
        ax.scatter(values, np.full(len(values), row), s=14, alpha=0.6,
                   color=colours.get(family, "grey"))
        ax.scatter([best[family]], [row], marker="D", color="black", s=28)
    ax.set_yticks(range(len(order)), list(reversed(order)))
    ax.set(xlabel=f"{metric} (validation)", title="Leaderboard by family (best: diamond)")
    return Chart("leaderboard_by_family.png", "Validation score of every candidate by family",
                 _png(figure), {f"best_{f}": float(best[f]) for f in order})


def importance_chart(table: pd.DataFrame, top: int = 20) -> Chart:
    """The most important raw columns with their spread over the shuffles."""
    shown = table.head(top).iloc[::-1]
    figure, ax = _figure(7.0, 1.2 + 0.32 * max(1, len(shown)))
    names = [str(f) for f in shown["feature"]]
    labels = [drawable(_short(f), f"#{rank} in the table")
              for f, rank in zip(names, range(len(names), 0, -1))]
    ax.barh(labels, shown["importance"], xerr=shown["std"], color="#4c72b0")
    metric = table["metric"].iloc[0] if len(table) else ""
    ax.set(xlabel=f"how much worse {metric} gets when the column is shuffled",
           title="Permutation importance of the raw columns")
    caption = "Raw-column permutation importance (mean ± std)"
    if labels != [_short(f) for f in names]:
        caption += STAND_IN_NOTE + " (its rank in the importance table)"
    return Chart("feature_importance.png", caption, _png(figure),
                 {str(r.feature): float(r.importance) for r in table.head(top).itertuples()})
