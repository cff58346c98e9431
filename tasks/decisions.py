"""Champion/challenger decisions: whether a retrained model replaces the registry's champion,
and the record of each decision (``decisions.jsonl``, the ``promotion`` artifact)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

__all__ = ["Decision", "decide", "decided_now", "kept_by_hand"]


@dataclass
class Decision:
    """A champion/challenger comparison on the same validation rows."""

    name: str
    challenger_version: int
    champion_version: Optional[int]
    metric: str
    challenger_score: float
    champion_score: Optional[float]
    margin: float
    promoted: bool
    reason: str
    decided_at: str = ""
    rows: Optional[int] = None  # the validation rows both were scored on (None: not compared)
    std_error: Optional[float] = None  # bootstrap standard error of the gain on those rows
    std_errors_needed: float = 0.0  # the gain had to exceed this many standard errors

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON and artifacts."""
        return asdict(self)


def kept_by_hand(version: int, champion: bool = True) -> str:
    """What stays when version ``version`` is not promoted, and how to promote it by hand
    (``champion`` False: there is no champion to keep)."""
    stays = "the champion stays" if champion else "no champion is set"
    return f"{stays} (make v{version} the champion with rollback {version} if it should be)"


def decided_now() -> str:
    """The time of a decision, as recorded (UTC, ISO 8601)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def decide(name: str, challenger_version: int, champion_version: Optional[int], metric: str,
           greater_is_better: bool, challenger: float, champion: Optional[float],
           margin: float, unscored: str = "", rows: Optional[int] = None,
           std_error: Optional[float] = None, std_errors_needed: float = 0.0) -> Decision:
    """Whether the challenger replaces the champion.

    It does when there is no champion, or when its gain over the champion (in the metric's
    direction) exceeds both ``margin`` (in the metric's units, e.g. 0.002 ROC AUC) and
    ``std_errors_needed`` times ``std_error``, the standard error of that gain (None: not
    estimated, so only ``margin`` counts). ``champion`` None with a champion version means it
    could not be scored; ``unscored`` says why, and the champion stays. So it does when the
    standard error is needed but could not be estimated (not finite).
    """
    by_hand = kept_by_hand(challenger_version)
    weighs_noise = std_error is not None and std_errors_needed > 0
    if champion_version is None:
        promoted, reason = True, "no champion yet"
    elif champion is None:  # no comparison, so no change
        promoted, reason = False, (
            f"{unscored or 'the champion could not be scored on these rows'}; {by_hand}")
    elif weighs_noise and not math.isfinite(std_error):
        promoted, reason = False, (
            f"{metric} {challenger:.6g} against the champion's {champion:.6g}, but the gain's "
            f"standard error could not be estimated on these {rows} rows; {by_hand}")
    else:
        gain = (challenger - champion) if greater_is_better else (champion - challenger)
        # A zero standard error: the gain is the same on every resample, so only its sign counts.
        noise = std_errors_needed * std_error if weighs_noise and std_error > 0 else 0.0
        promoted = bool(gain > max(margin, noise))
        needed = f"more than {margin:g}"
        if weighs_noise:
            needed += (f" and {std_errors_needed:g} standard errors of the gain "
                       f"({std_errors_needed:g} x {std_error:.3g} = {noise:.3g})")
        reason = (f"{metric} {challenger:.6g} against the champion's {champion:.6g}: the "
                  f"challenger {'beats' if promoted else 'does not beat'} it by {needed}")
    return Decision(name, challenger_version, champion_version, metric, challenger, champion,
                    margin, promoted, reason, decided_now(), rows, std_error, std_errors_needed)
