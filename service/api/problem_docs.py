"""The OpenAPI document says what the error handlers send (`service.errors`): every error response whose
body is a problem document as `application/problem+json`, and request validation errors as that same
`Problem` instead of FastAPI's own `HTTPValidationError`."""

from typing import Any

from fastapi import FastAPI

from service.errors import PROBLEM_CONTENT_TYPE

PROBLEM_REF = "#/components/schemas/Problem"
FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"


def problems_in_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document saying what the handlers send: every error response whose body is a problem
    document as `application/problem+json`, and request validation errors (FastAPI documents its own
    `HTTPValidationError`) as the `Problem` that `_validation_error` sends."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                body = content.get("application/json", {}).get("schema", {})
                if body.get("$ref") in (PROBLEM_REF, FASTAPI_VALIDATION_REF):
                    body["$ref"] = PROBLEM_REF
                    content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
    definitions = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        definitions.pop(unused, None)
    return schema


def document_problems(app: FastAPI) -> None:
    """Post-process the app's generated OpenAPI document with `problems_in_openapi` (once, cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems_in_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
