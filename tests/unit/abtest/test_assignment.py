"""Deterministic hash assignment: stable, split as configured, independent across tests."""

import subprocess
import sys

import numpy as np
import pytest

from churn.abtest import CONTROL, VARIANT, assign, buckets_of

USERS = np.arange(100_000)


@pytest.mark.parametrize("split", [0.5, 0.2, 0.9])
def test_realised_split_matches_configured_split(split):
    """The variant share is within a binomial 99.9% band of the configured split."""
    share = (assign(USERS, "offer-test", split) == VARIANT).mean()
    tolerance = 3.3 * np.sqrt(split * (1 - split) / USERS.size)
    assert abs(share - split) < tolerance


def test_assignment_is_identical_on_rerun_and_in_another_process():
    """Same (test, user) gives the same arm, even in a fresh interpreter (no salted hash())."""
    first = assign(USERS[:50], "offer-test")
    assert np.array_equal(first, assign(USERS[:50], "offer-test"))
    code = ("import numpy as np; from churn.abtest import assign; "
            "print(''.join('v' if a == 'variant' else 'c' for a in assign(np.arange(50), 'offer-test')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "".join("v" if a == VARIANT else "c" for a in first)


def test_another_test_name_reshuffles_users_independently():
    """Arms of two tests agree for about half the users, as for independent coin flips."""
    agree = (assign(USERS, "test-a") == assign(USERS, "test-b")).mean()
    assert abs(agree - 0.5) < 0.01


def test_ids_are_hashed_as_strings_and_only_two_arms_exist():
    """7 and "7" are the same user; only 'control' and 'variant' come out."""
    assert assign([7], "t")[0] == assign(["7"], "t")[0]
    assert set(assign(USERS[:1000], "t")) == {CONTROL, VARIANT}
    assert buckets_of(USERS[:1000], "t", buckets=100).max() < 100


@pytest.mark.parametrize("split", [0.0, 1.0, -0.1, 1.5])
def test_split_outside_open_unit_interval_is_rejected(split):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        assign(USERS[:10], "t", split)


def test_empty_test_name_is_rejected():
    with pytest.raises(ValueError, match="test_name"):
        assign(USERS[:10], "")
