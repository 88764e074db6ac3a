"""The OpenAPI document, corrected to say what the API really sends.

FastAPI's generated document describes 422 as its own list of errors (we send ``{"detail": str,
"errors": [...]}``), leaves out the answers every route can give because of app-wide layers
(401/403 from the API key, 429 from the rate limit, 413 from the body limit, 500), marks the key
required where it is optional (only admin routes need it unless ``CHURN_API_KEY`` is set) and
gives every error the same example. :func:`install` builds the document once with those corrections, so
clients and contract tests (schemathesis, in ``tests/serving/test_contract.py``) can trust it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from churn.serving.schemas import BatchRequest, ErrorOut


class ValidationIssue(BaseModel):
    loc: list[str] = Field(description="where: body, path, query, then the field")
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """422: one readable sentence plus the structured list (the input is never echoed)."""

    detail: str
    errors: list[ValidationIssue]


EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"detail": "There was an error parsing the body"},
    401: {"detail": "missing X-API-Key header"},
    403: {"detail": "invalid API key"},
    413: {"detail": "request body larger than 1,048,576 bytes"},
    422: {"detail": "invalid request: path.user_id: Input should be greater than or equal to 0",
          "errors": [{"loc": ["path", "user_id"], "msg": "Input should be greater than or equal to 0",
                      "type": "greater_than_equal"}]},
    429: {"detail": "rate limit of 6000 requests per minute exceeded; retry in 1 s"},
    500: {"detail": "internal server error; the details are in the server log"},
    503: {"detail": "warehouse unavailable: warehouse <path> does not exist yet: run `make build` to create it"},
}
NOT_FOUND = {"/predict/{user_id}": "user 5 not found in the online or offline store: the user churned on "
                                   "2025-06-30; churned users are not scored",
             "/explain/{user_id}": "user 123456 not found in the online or offline store: the user never "
                                   "existed (no such id in raw_data.users)",
             "/dashboard/ab-tests/{test_name}": "no A/B test named 'candidate_v9'",
             "/dashboard/models/production": "churn_model has no production version yet"}
DESCRIPTIONS = {400: "the body could not be read", 401: "missing X-API-Key (when the server requires one)",
                403: "wrong API key", 413: "request body over CHURN_MAX_BODY_BYTES",
                422: "invalid path, query or body", 429: "over the per-client rate limit; see Retry-After",
                500: "a bug: the details are in the server log"}
SENT_BY_EVERY_ROUTE = (401, 403, 429, 500)  # the Guard middleware and the error handler


def _error(status: int, description: str, example: dict[str, Any], schema: str = "ErrorOut") -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}, "example": example}}}
    if status == 429:
        response["headers"] = {"Retry-After": {"description": "seconds until the next request is allowed",
                                               "schema": {"type": "integer", "minimum": 1}}}
    return response


def build(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the corrections described above."""
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    extra = ValidationErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(extra.pop("$defs", {}))
    schemas["ValidationErrorOut"] = extra
    schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
    # FastAPI writes integer bounds inside list items as floats (9.223372036854776e+18 is 2**63, one
    # above the real bound); pydantic's own schema of the request body keeps them exact
    schemas["BatchRequest"] = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    key_optional = app.state.settings.api_key is None
    spec["components"].setdefault("securitySchemes", {})["APIKeyHeader"] = {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "required on admin endpoints, and on all when CHURN_API_KEY is set"}
    for path, item in spec["paths"].items():
        for operation in item.values():
            admin = path.startswith("/cache/")
            # the Guard middleware checks the key on every route; it is needed only with CHURN_API_KEY
            operation["security"] = [{"APIKeyHeader": []}] + ([{}] if key_optional and not admin else [])
            responses = operation.setdefault("responses", {})
            has_input = bool(operation.get("parameters") or operation.get("requestBody"))
            statuses = [*SENT_BY_EVERY_ROUTE, *((422,) if has_input else ()),
                        *((400, 413) if "requestBody" in operation else ())]
            for status in statuses:
                old = responses.get(str(status), {})
                schema = "ValidationErrorOut" if status == 422 else "ErrorOut"
                responses[str(status)] = _error(status, old.get("description") or DESCRIPTIONS[status],
                                                EXAMPLES[status], schema)
            for status in (404, 503, 413):
                if str(status) in responses and status not in statuses:
                    old = responses[str(status)]
                    example = {"detail": NOT_FOUND.get(path, "not found")} if status == 404 else EXAMPLES[status]
                    responses[str(status)] = _error(status, old.get("description", ""), example)
            operation["responses"] = dict(sorted(responses.items()))
    return spec


def install(app: FastAPI) -> None:
    """Serve the corrected document at ``app.openapi_url`` (built on first use, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
