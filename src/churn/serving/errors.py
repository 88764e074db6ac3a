"""Every error is JSON ``{"detail": "..."}`` with a clear message: no stack trace, no server path."""

from __future__ import annotations

import logging
import re

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from churn.registry import RegistryError
from churn.store.online import OnlineStoreError
from churn.store.warehouse import WarehouseError

log = logging.getLogger("churn.serving")
_PATH = re.compile(r"(?:unix://)?(?:/[\w.@+-]+){2,}/?")


class ServiceUnavailable(Exception):
    """The request needs something that is not there yet (model, warehouse, Redis): 503."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidFeatureVector(Exception):
    """A stored vector that cannot be scored: a data bug, answered 500 naming the users."""


def scrub(text: str) -> str:
    """Library messages name files for the operator; a client sees ``<path>`` instead."""
    return _PATH.sub("<path>", text)


def _json(status: int, detail: str, headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return _json(exc.status_code, str(exc.detail), getattr(exc, "headers", None))


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable sentence plus the structured list (without echoing the input)."""
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return _json(422, f"invalid request: {summary}", errors=errors)


# DuckDB errors that mean "the file cannot be reached now" (locked, missing, out of memory);
# every other duckdb.Error (Binder, Catalog, Parser, Conversion ...) is a bug in our SQL: a 500.
DUCKDB_UNAVAILABLE = (duckdb.IOException, duckdb.ConnectionException, duckdb.OutOfMemoryException)


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A missing dependency the request truly needed: the library's message, paths removed."""
    if isinstance(exc, duckdb.Error) and not isinstance(exc, DUCKDB_UNAVAILABLE):
        return await internal_error(request, exc)
    log.warning("503 for %s: %s", request.url.path, exc)
    what = {OnlineStoreError: "online store", WarehouseError: "warehouse", duckdb.Error: "warehouse",
            RegistryError: "model registry"}
    prefix = next((f"{name} unavailable: " for cls, name in what.items() if isinstance(exc, cls)), "")
    return _json(503, prefix + scrub(str(getattr(exc, "detail", exc))))


async def invalid_vector(request: Request, exc: InvalidFeatureVector) -> JSONResponse:
    log.error("500 for %s: %s", request.url.path, exc)
    return _json(500, str(exc))


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: 500 for the client, the traceback in the server log."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(500, "internal server error; the details are in the server log")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    # Starlette types a handler as taking any Exception, so narrower handlers need the ignores.
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    for cls in (ServiceUnavailable, WarehouseError, OnlineStoreError, RegistryError, duckdb.Error):
        app.add_exception_handler(cls, unavailable)
    app.add_exception_handler(InvalidFeatureVector, invalid_vector)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, internal_error)
