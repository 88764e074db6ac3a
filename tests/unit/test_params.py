"""Pipeline parameters are checked before anything runs (churn.params)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from churn.params import (
    MIN_EXPECTED_VALID_CHURNERS,
    ParameterError,
    env_args,
    expected_valid_churners,
    parse_env_args,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "env.yaml").read_text().replace("{{here}}", str(ROOT)))
KNOWN = list(DEFAULTS)


def test_default_parameters_are_valid():
    """env.yaml itself passes every check."""
    assert validate(DEFAULTS) == DEFAULTS


def test_abbreviated_name_is_refused_naming_the_full_one():
    """argparse would take --env--n_user as --env--n_users; we refuse it and name the right one."""
    with pytest.raises(
        ParameterError, match=r"unknown parameter --env--n_user \(did you mean --env--n_users\?\); abbreviations"
    ):
        parse_env_args(["--env--n_user", "10"], KNOWN)


def test_misspelt_name_is_refused_naming_the_closest():
    with pytest.raises(ParameterError, match=r"--env--horizon_day.*did you mean --env--horizon_days"):
        parse_env_args(["--env--horizon_day=10"], KNOWN)
    with pytest.raises(ParameterError, match=r"unknown parameter --env--zzz$"):
        parse_env_args(["--env--zzz", "1"], KNOWN)


def test_env_args_are_split_from_other_arguments_in_both_spellings():
    overrides, rest = parse_env_args(["--force", "--env--n_users", "300", "--env--scenario=stable", "-p", "x"], KNOWN)
    assert overrides == {"n_users": "300", "scenario": "stable"}
    assert rest == ["--force", "-p", "x"]
    assert env_args(overrides) == ["--env--n_users", "300", "--env--scenario", "stable"]


def test_missing_and_repeated_values_are_refused():
    with pytest.raises(ParameterError, match="needs a value"):
        parse_env_args(["--env--n_users"], KNOWN)
    with pytest.raises(ParameterError, match="given twice"):
        parse_env_args(["--env--seed", "1", "--env--seed=2"], KNOWN)


@pytest.mark.parametrize(("override", "reason"), [
    ({"n_users": "ten"}, r"n_users='ten' must be a whole number"),
    ({"n_users": "0"}, r"n_users=0 must be at least 1"),
    ({"churn_rate": "2"}, r"churn_rate=2.0 must be in \(0, 0.9\]"),
    ({"churn_rate": "nan"}, r"churn_rate=.* must be a finite number"),
    ({"scenario": "chaos"}, r"scenario='chaos' must be one of drift, stable"),
    ({"start": "2025-13-01"}, r"start='2025-13-01' must be an ISO date"),
    ({"drift_expected": "tenure_days"}, r"must be a list"),
    ({"ab_traffic_split": "1"}, r"ab_traffic_split=1.0 must be in \(0, 1\)"),
    ({"redis_url": "localhost:6379"}, r"redis://"),
])  # fmt: skip
def test_bad_values_are_refused_with_the_reason(override, reason):
    with pytest.raises(ParameterError, match=reason):
        validate(DEFAULTS, override)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ParameterError) as info:
        validate(DEFAULTS, {"seed": "-1", "n_users": "x"})
    assert str(info.value).count("\n") == 1


def test_too_few_users_for_snapshots_and_horizon_is_refused_with_how_many_are_needed():
    """The issue's case: 10 users cannot give a validation set with churners."""
    with pytest.raises(
        ParameterError, match=r"n_users=10 is too few .* about 0.2 churners .* \(use n_users >= (\d+)\)"
    ) as info:
        validate(DEFAULTS, {"n_users": "10"})
    needed = int(str(info.value).rsplit(">= ", 1)[1].rstrip(")"))
    validate(DEFAULTS, {"n_users": str(needed)})  # the advice is enough ...
    with pytest.raises(ParameterError):
        validate(DEFAULTS, {"n_users": str(needed - 1)})  # ... and not more than needed


@pytest.mark.slow  # the default build's 1,000-user simulation and features (make test-fast skips it)
def test_expected_churners_match_the_simulated_default_build(default_features):
    """The up-front estimate (users x churn share x horizon / span, per validation snapshot)
    agrees with the churners the simulator actually puts in the default build's labelled
    snapshots (1,000 users, seed 42): within 35% of the mean count per snapshot."""
    labelled = default_features[default_features["label_mature"].astype(bool)]
    per_snapshot = labelled.groupby("snapshot_at")["label"].sum().astype(float)
    estimate = expected_valid_churners(1000, 0.10, 30, 1, 365)
    assert len(per_snapshot) == 8
    assert abs(estimate - per_snapshot.mean()) / per_snapshot.mean() < 0.35, (estimate, per_snapshot.tolist())
    assert 2 * estimate > MIN_EXPECTED_VALID_CHURNERS  # the default build passes the check


def test_the_ci_sized_build_is_accepted():
    """tests/pipeline builds with 300 users: that must stay a valid configuration."""
    validate(DEFAULTS, {"n_users": "300"})


def test_too_few_training_snapshots_are_refused():
    with pytest.raises(ParameterError, match=r"n_snapshots=4 leaves 2 training snapshot\(s\).*use n_snapshots >= 5"):
        validate(DEFAULTS, {"n_snapshots": "4"})
    validate(DEFAULTS, {"n_snapshots": "5", "n_users": "1000"})


def test_snapshots_that_do_not_fit_the_data_are_refused_with_the_library_reason():
    with pytest.raises(ParameterError, match="do not fit"):
        validate(DEFAULTS, {"n_snapshots": "400", "horizon_days": "30"})
    with pytest.raises(ParameterError, match="must be more than 30 days after start"):
        validate(DEFAULTS, {"end": "2025-01-15"})


def test_range_pairs_must_be_ordered():
    with pytest.raises(ParameterError, match="label_rate_min=0.2 must be below label_rate_max=0.1"):
        validate(DEFAULTS, {"label_rate_min": "0.2"})


def test_own_files_skip_the_synthetic_user_count_check():
    validate(DEFAULTS, {"source": "files", "n_users": "10"})
