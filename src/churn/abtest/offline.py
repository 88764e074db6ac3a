"""Champion/challenger without live traffic: both models scored on the same matured rows.

On data without the simulator there is no traffic to split, so the production model (control)
and the staging candidate (variant) are compared on the newest matured snapshots that neither
was trained on, row for row:

* AUC difference: DeLong's paired test (DeLong, DeLong & Clarke-Pearson 1988), with the
  structural components computed by ranking (Sun & Xu 2014);
* log loss difference: a paired z-test on the per-row loss differences.

The variant is promoted only when its AUC is significantly higher and its log loss is not
significantly worse; otherwise control stays. Pure functions: the caller records the decision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

_EPS = 1e-15


def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong_paired(y: np.ndarray, p_control: np.ndarray, p_variant: np.ndarray) -> dict[str, float]:
    """AUCs, their difference (variant - control), its standard error and two-sided p-value."""
    y = np.asarray(y, dtype=int)
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's test needs at least 2 positives and 2 negatives (got {m} and {n})")
    aucs, v10, v01 = [], [], []
    for p in (np.asarray(p_control, float), np.asarray(p_variant, float)):
        tx, ty, tz = _midrank(p[pos]), _midrank(p[neg]), _midrank(p)
        aucs.append((tz[pos].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[pos] - tx) / n)  # per-positive structural components
        v01.append(1.0 - (tz[neg] - ty) / m)  # per-negative
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[1] - aucs[0])
    se = float(np.sqrt(max(var, 0.0)))
    p_value = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return {
        "auc_control": float(aucs[0]),
        "auc_variant": float(aucs[1]),
        "auc_diff": diff,
        "auc_diff_se": se,
        "auc_p_value": p_value,
        "auc_diff_ci_low": diff - 1.959964 * se,
        "auc_diff_ci_high": diff + 1.959964 * se,
    }


def row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-row binary log loss."""
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    y = np.asarray(y, float)
    loss: np.ndarray = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return loss


def paired_log_loss(y: np.ndarray, p_control: np.ndarray, p_variant: np.ndarray) -> dict[str, float]:
    """Mean log losses, their difference (variant - control; negative is better) and a paired
    z-test of that difference (the rows are the pairs)."""
    loss_c, loss_v = row_log_loss(y, p_control), row_log_loss(y, p_variant)
    d = loss_v - loss_c
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    mean = float(d.mean())
    p_value = float(2 * stats.norm.sf(abs(mean) / se)) if se > 0 else (1.0 if mean == 0 else 0.0)
    return {
        "log_loss_control": float(loss_c.mean()),
        "log_loss_variant": float(loss_v.mean()),
        "log_loss_diff": mean,
        "log_loss_diff_se": se,
        "log_loss_p_value": p_value,
    }


@dataclass(frozen=True)
class OfflineComparison:
    """The evidence and the decision of an offline champion/challenger comparison."""

    snapshots: list[str]
    rows: int
    positives: int
    auc_control: float
    auc_variant: float
    auc_diff: float
    auc_diff_se: float
    auc_p_value: float
    auc_diff_ci_low: float
    auc_diff_ci_high: float
    log_loss_control: float
    log_loss_variant: float
    log_loss_diff: float
    log_loss_diff_se: float
    log_loss_p_value: float
    alpha: float
    decision: str  # promote | keep_control
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluation_snapshots(
    frame: pd.DataFrame, trained_on: list[Any], n_latest: int = 2, purge_days: int = 0
) -> list[pd.Timestamp]:
    """The newest ``n_latest`` matured snapshots at least ``purge_days`` (the label horizon)
    after every snapshot either model trained on.

    A training label at ``t`` looks at ``[t, t + H)``; an evaluation snapshot inside that span
    shares outcomes with it (the same churn falls in both windows), so the model trained on the
    later data would be judged partly on answers it has seen. Purging by the horizon keeps the
    evaluation rows' outcomes unseen by both models.
    """
    if purge_days < 0:
        raise ValueError(f"purge_days must be >= 0, not {purge_days}")
    last = max(pd.Timestamp(s) for s in trained_on)
    purge = pd.Timedelta(days=int(purge_days))
    matured = sorted(pd.Timestamp(s) for s in frame.loc[frame["label_mature"].astype(bool), "snapshot_at"].unique())
    return [s for s in matured if s > last and s >= last + purge][-n_latest:]


def compare_offline(
    y: np.ndarray, p_control: np.ndarray, p_variant: np.ndarray, snapshots: list[Any], alpha: float = 0.05
) -> OfflineComparison:
    """Paired DeLong + paired log-loss tests, and the decision rule of the module docstring."""
    y = np.asarray(y, dtype=int)
    auc = delong_paired(y, p_control, p_variant)
    loss = paired_log_loss(y, p_control, p_variant)
    better = auc["auc_diff"] > 0 and auc["auc_p_value"] < alpha
    worse_loss = loss["log_loss_diff"] > 0 and loss["log_loss_p_value"] < alpha
    reasons = [
        f"AUC {auc['auc_variant']:.4f} (variant) vs {auc['auc_control']:.4f} (control): difference "
        f"{auc['auc_diff']:+.4f}, 95% CI [{auc['auc_diff_ci_low']:+.4f}, {auc['auc_diff_ci_high']:+.4f}], "
        f"DeLong paired p = {auc['auc_p_value']:.4g}",
        f"log loss {loss['log_loss_variant']:.4f} vs {loss['log_loss_control']:.4f}: difference "
        f"{loss['log_loss_diff']:+.5f}, paired p = {loss['log_loss_p_value']:.4g}",
    ]
    if better and not worse_loss:
        decision = "promote"
        reasons.insert(0, f"variant ranks churners significantly better (alpha = {alpha}) with no worse log loss")
    else:
        decision = "keep_control"
        why = (
            "its log loss is significantly worse"
            if better
            else f"its AUC is not significantly higher (alpha = {alpha})"
        )
        reasons.insert(0, f"control stays: {why}")
    return OfflineComparison(
        snapshots=[str(s) for s in snapshots],
        rows=int(len(y)),
        positives=int(y.sum()),
        **auc,
        **loss,
        alpha=float(alpha),
        decision=decision,
        reasons=reasons,
    )
