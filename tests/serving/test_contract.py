"""The OpenAPI document says what the API sends: a small, deterministic schemathesis run against
the launched server checks every operation's responses against it (status codes, schemas,
content types, no 5xx), plus the corrections the generated document needed."""

from __future__ import annotations

import json

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode

ADMIN = "admin-secret"


@pytest.fixture(scope="module")
def api_schema(launch):
    port = launch(CHURN_RATE_LIMIT_PER_MINUTE="0", CHURN_ADMIN_KEY=ADMIN)
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")


SETTINGS = hypothesis.settings(max_examples=12, derandomize=True, deadline=None, database=None,
                               suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_conforms_to_the_openapi_document(api_schema, mode):
    """Valid and invalid requests to every operation, with and without the admin key: each
    answer's status is documented, its body matches the documented schema, no 5xx."""
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @SETTINGS
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode), admin=hypothesis.strategies.booleans())
        def run(case, admin):
            case.call_and_validate(headers={"X-API-Key": ADMIN} if admin else None)

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # no invalid input exists (no parameters)
        except Exception as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_document_describes_the_real_error_bodies(client):
    text = client.get("/openapi.json").text
    spec = json.loads(text)
    assert "9223372036854775807" in text and "e+18" not in text  # the id bound as an integer
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and set(schemas["ValidationErrorOut"]["required"]) == {"detail", "errors"}
    examples = set()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status in ("401", "403", "429", "500"):
                assert status in responses, (path, method, status)
            if operation.get("parameters") or operation.get("requestBody"):
                assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("ValidationErrorOut")
            examples |= {json.dumps(r["content"]["application/json"].get("example")) for s, r in responses.items()
                         if s >= "400"}
    assert "400" in spec["paths"]["/predict/batch"]["post"]["responses"]
    assert "Retry-After" in spec["paths"]["/health"]["get"]["responses"]["429"]["headers"]
    assert len(examples) >= 10  # each status has its own example, not one "user not found" for all


def test_times_carry_a_utc_offset(client, user_ids):
    assert client.get(f"/predict/{user_ids[0]}").json()["features_as_of"].endswith("Z")
    assert client.get(f"/explain/{user_ids[0]}").json()["features_as_of"].endswith("Z")
    model = client.get("/dashboard/models/production").json()
    assert model["created_at"].endswith("Z") and model["updated_at"].endswith("Z")
