"""``/openapi.json`` (app/runtime/openapi.json): a valid OpenAPI 3.1 document naming every
route the worker's router serves, and nothing else."""

from __future__ import annotations

import orjson
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts as spec_versions
from openapi_spec_validator.versions.shortcuts import get_spec_version

from app.runtime.faust_app import create_app
from app.runtime.web import OPENAPI_DOCUMENT
from config import Settings

_DOCUMENT = orjson.loads(OPENAPI_DOCUMENT)
_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def test_the_document_is_valid_openapi_3_1():
    assert get_spec_version(_DOCUMENT) == spec_versions.OPENAPIV31
    validate(_DOCUMENT)


def _served_routes(settings: Settings) -> set[tuple[str, str]]:
    app = create_app(settings)
    return {
        (route.method, route.resource.canonical)
        for route in app.web.web_app.router.routes()
        if route.resource is not None
        # Faust answers HEAD on every view (like GET where there is one): the document
        # says so once instead of on each path.
        and route.method != "HEAD"
    }


def _documented_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in _DOCUMENT["paths"].items()
        for method in item
        if method in _HTTP_METHODS
    }


def test_every_served_route_is_documented_and_every_documented_route_served():
    served = _served_routes(Settings(demo=True))
    assert served == _documented_routes()


def test_without_the_demo_only_the_demo_routes_are_gone():
    served = _served_routes(Settings(demo=False))
    missing = _documented_routes() - served
    assert {path for _, path in missing} == {"/demo", "/demo/", "/demo/{file}"}


def test_every_operation_says_who_may_call_it_and_what_a_refusal_looks_like():
    for path, item in _DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method not in _HTTP_METHODS:
                continue
            assert "security" in operation, (method, path)
            secured = [req for req in operation["security"] if req]
            if path.startswith("/v1/") and method != "options" and path != "/v1/tracker.js":
                assert secured, (method, path)
                for status in ("401", "429"):
                    assert status in operation["responses"], (method, path, status)
            else:
                assert not secured, (method, path)


@pytest.mark.parametrize("name", ["TooManyRequests", "Unavailable"])
def test_retry_after_is_documented(name):
    headers = _DOCUMENT["components"]["responses"][name]["headers"]
    assert headers["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}


def test_the_security_schemes():
    schemes = _DOCUMENT["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header",
                                 "name": "X-Api-Key"}  # fmt: skip
    assert schemes["StreamToken"]["in"] == "query" and schemes["StreamToken"]["name"] == "token"
