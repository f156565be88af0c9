"""The tiny serving model of the service tests, for the client's server."""

from tests.service.conftest import serving_model

__all__ = ["serving_model"]
