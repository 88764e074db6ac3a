"""Explanations: exact logit decomposition, largest contribution first."""

from __future__ import annotations

import math

import numpy as np


def test_contributions_plus_intercept_equal_the_logit(client, user_ids):
    """Contributions + intercept == logit (1e-9), sigmoid(logit) == probability == /predict's."""
    for user in user_ids[:5]:
        body = client.get(f"/explain/{user}").json()
        total = body["intercept"] + sum(c["contribution"] for c in body["contributions"])
        assert abs(total - body["logit"]) <= 1e-9
        assert abs(1 / (1 + math.exp(-body["logit"])) - body["probability"]) <= 1e-12
        assert abs(client.get(f"/predict/{user}").json()["probability"] - body["probability"]) <= 1e-12


def test_contributions_are_sorted_by_absolute_size_and_cover_every_feature(client, user_ids, latest):
    body = client.get(f"/explain/{user_ids[0]}").json()
    sizes = [abs(c["contribution"]) for c in body["contributions"]]
    assert sizes == sorted(sizes, reverse=True)
    features = [c["feature"] for c in body["contributions"]]
    assert sorted(features) == sorted(latest.columns[2:-2])
    row = latest.set_index("user_id").loc[user_ids[0]]
    assert np.allclose([c["value"] for c in body["contributions"]], row[features].to_numpy(float))


def test_explaining_an_unknown_user_is_404(client, unknown_id):
    response = client.get(f"/explain/{unknown_id}")
    assert response.status_code == 404 and str(unknown_id) in response.json()["detail"]


def test_contributions_carry_the_feature_specs_description_and_unit(client, user_ids):
    """Each contribution says what the feature measures and in which unit (from the feature spec)."""
    from churn.features import default_feature_spec

    spec = default_feature_spec()
    body = client.get(f"/explain/{user_ids[0]}").json()
    by_name = {c["feature"]: c for c in body["contributions"]}
    for feature in spec.features:
        assert by_name[feature.name]["description"] == feature.description
        assert by_name[feature.name]["unit"]
    assert by_name["monthly_price"]["unit"] == "USD"
    assert by_name["events_30d"]["unit"] == "count" and by_name["days_since_last_event"]["unit"] == "days"
    assert body["band_cutoffs"] == {"medium": 0.02, "high": 0.1}
