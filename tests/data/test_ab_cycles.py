"""A/B tests spanning daily cycles: one stored look per cycle, the mSPRT decision judged against
an independent computation on the same counts, and a rollback when a promoted variant's
guardrail later fails (on the ``cycle_platform`` of tests/conftest.py)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn.abtest.decision import Decision
from churn.abtest.manager import ABTestManager
from churn.abtest.phase import TrafficPlan, ab_test_name, run_ab_test, watch_promotion
from churn.modeling.lifecycle import register_result
from churn.modeling.train import train_model
from churn.monitoring.phase import decide_retraining, run_monitor
from churn.store import abtests, offline

# the cycle world and its trained platform are session fixtures: one worker makes them for both
# modules (test_ab_cycles.py, test_monitoring_over_time.py)
pytestmark = pytest.mark.xdist_group("cycle_world")

MONITOR = {"alpha": 0.05, "expected_drift": ["tenure_days"], "alert_auc_min": 0.65, "alert_churn_rate_max": 0.03}
RETRAIN = {"horizon_days": 30, "n_valid_snapshots": 2, "min_drifted": 2, "max_auc_drop": 0.05,
           "min_new_labels": 1500, "code_version": "abc1234", "cooldown_days": 0, "min_fresh_labels": 0}  # fmt: skip
# env.yaml's ab_* values, spelt out: the library has no defaults for them
TRAFFIC = {"traffic_split": 0.5, "offer_share": 0.2, "offer_effect": 0.4, "window_days": 30, "mde_relative": 0.3,
           "seed": 42}  # fmt: skip
FIRST = date(2026, 1, 2)


def reference_msprt(looks: pd.DataFrame, tau: float) -> np.ndarray:
    """Always-valid p-values written out from Johari et al. (2017), independent of the package:
    Lambda = sqrt(V / (V + tau^2)) exp(tau^2 d^2 / (2 V (V + tau^2))), p_n = min(1, min_k 1/Lambda_k)."""
    pc, pv = looks.conv_control / looks.n_control, looks.conv_variant / looks.n_variant
    v = pc * (1 - pc) / looks.n_control + pv * (1 - pv) / looks.n_variant
    d = pv - pc
    lam = np.sqrt(v / (v + tau**2)) * np.exp(tau**2 * d**2 / (2 * v * (v + tau**2)))
    return np.minimum.accumulate(np.minimum(1.0, 1.0 / lam.to_numpy()))


def test_one_look_per_cycle_until_the_msprt_or_the_maximum_duration_decides(cycle_platform):
    """A test started on a cycle's candidate takes one look per day (a re-run of a day adds none),
    each look's counts are the outcomes observed by its test day, and it stops exactly at the
    first look whose independent mSPRT p-value reaches alpha, else at day max_days (futility);
    the last look carries the decision, which the test row and the registry record."""
    wh, registry, _ = cycle_platform
    run_monitor(wh, registry, "churn_model", **MONITOR, as_of=str(FIRST))
    candidate = decide_retraining(wh, registry, "churn_model", **RETRAIN, as_of=str(FIRST)).candidate
    assert candidate is not None
    production = registry.get_production("churn_model")
    plan = TrafficPlan(**TRAFFIC, max_days=6)
    name = ab_test_name("churn_model", production.version, candidate.version)
    decided = None
    for k in range(plan.max_days + 2):
        day = FIRST + timedelta(days=k)
        ab = run_ab_test(wh, registry, "churn_model", plan, as_of=str(day))
        again = run_ab_test(wh, registry, "churn_model", plan, as_of=str(day))
        assert again.look is None and again.decision is None  # the day's look is stored once
        if ab.decision is not None:
            decided = (k + 1, ab.decision)
            break
    looks = abtests.read_looks(wh, name)
    assert decided is not None and list(looks.look) == list(range(1, decided[0] + 1))
    assert [d.date() for d in looks.as_of] == [FIRST + timedelta(days=k) for k in range(decided[0])]
    outcomes = abtests.read_results(wh, name)
    for look in looks.itertuples():
        seen = outcomes[outcomes.observed_day <= look.test_day]
        assert (
            look.n_variant == (seen.arm == "variant").sum()
            and look.conv_control == seen[seen.arm == "control"].churned.sum()
        )
    test = abtests.get_test(wh, name)
    p = reference_msprt(looks, tau=test["params"]["mde"])
    np.testing.assert_allclose(looks.p_value, p, rtol=1e-9)
    hits = np.flatnonzero(p <= 0.05)
    expected_stop = hits[0] + 1 if hits.size else plan.max_days
    assert decided[0] == expected_stop
    assert list(looks.decision[:-1]) == ["continue"] * (len(looks) - 1)
    assert looks.decision.iloc[-1] == decided[1].action == test["decision"] and test["status"] == "concluded"
    if not hits.size:
        assert any("futility" in r for r in test["reasons"])
    events = registry.list_events("churn_model")
    assert events.reason.str.contains(f"A/B test {name}").any()
    assert registry.get_production("churn_model").version == (
        candidate.version if decided[1].action == "promote" else production.version
    )


def test_a_pair_a_full_build_decided_at_once_is_tested_live_over_the_cycles(cycle_platform):
    """The full build's test concludes at once and takes no look; the first cycle starts the live
    test of the same pair (other name, its own looks), and the full build's row is untouched."""
    wh, registry, _ = cycle_platform
    run_monitor(wh, registry, "churn_model", **MONITOR)
    assert decide_retraining(wh, registry, "churn_model", **RETRAIN).candidate is not None
    build = run_ab_test(wh, registry, "churn_model", TrafficPlan(**TRAFFIC, max_days=6))
    assert build.final["status"] == "concluded" and abtests.read_looks(wh, build.test_name).empty
    if build.outcome == "promote":
        return  # nothing left to test: the candidate is production
    before = abtests.get_test(wh, build.test_name)
    live = run_ab_test(wh, registry, "churn_model", TrafficPlan(**TRAFFIC, max_days=6), as_of=str(FIRST))
    assert live.test_name == build.test_name + "-live" and live.look.number == 1
    assert list(abtests.read_looks(wh, live.test_name).look) == [1]
    assert abtests.get_test(wh, build.test_name) == before


def test_a_promoted_variant_is_rolled_back_when_a_guardrail_later_fails(cycle_platform):
    """A variant promoted by a test, whose AUC on newly matured labels turns out far below the
    control's, is rolled back by the next cycle: control is production again, the test is marked
    rolled back with the failing guardrail, in one transaction; the next cycle does nothing more."""
    wh, registry, _ = cycle_platform
    control = registry.get_production("churn_model")
    feature_set, features = offline.feature_set(wh)
    frame = offline.read_features(wh)
    frame = frame[frame.snapshot_at <= pd.Timestamp("2026-01-01")]
    # a model that learnt nothing: labels shuffled within each snapshot
    shuffled = frame.assign(label=frame.groupby("snapshot_at").label.transform(
        lambda s: s.sample(frac=1.0, random_state=0).to_numpy()))  # fmt: skip
    bad = register_result(registry, train_model(shuffled, features, horizon_days=30, n_valid=2), shuffled,
                          model_name="churn_model", feature_set=feature_set, horizon_days=30,
                          fingerprint="shuffled", code_version="abc1234", reason="a bad candidate",
                          stage="staging")  # fmt: skip
    manager = ABTestManager(wh, registry, "churn_model")
    name = ab_test_name("churn_model", control.version, bad.version)
    manager.start_test(name, control.version, bad.version, traffic_split=0.5, user_ids=frame.user_id.unique(),
                       started_on=str(FIRST), max_days=6)  # fmt: skip
    manager.conclude(name, decision=Decision("promote", ["Promote the variant (forced for this test)."]))
    assert registry.get_production("churn_model").version == bad.version

    reason = watch_promotion(wh, registry, "churn_model", FIRST + timedelta(days=1))
    assert reason is not None and "AUC" in reason and "FAILS" in reason
    assert registry.get_production("churn_model").version == control.version
    test = abtests.get_test(wh, name)
    assert test["status"] == "rolled_back" and test["reasons"][-1] == reason
    events = registry.list_events("churn_model")
    assert (events.event == "rolled_back").sum() == 1
    assert watch_promotion(wh, registry, "churn_model", FIRST + timedelta(days=2)) is None
