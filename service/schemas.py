"""Pydantic response and request models of the HTTP API."""

from typing import Literal

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """An RFC 9457 problem document, the body of every error response."""

    type: str = Field(description="Stable URI naming the kind of error.")
    title: str
    status: int
    detail: str
    instance: str = Field(description="Path of the request that failed.")


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"
    version: str


class Readiness(BaseModel):
    """Readiness: what the service needs to serve requests, and whether each part is there."""

    ready: bool
    checks: dict[str, bool]
