"""Optional API-key authentication: checked by the request gate (`service.api.gate`) before a `/v1` request's
body is read, and declared as a FastAPI dependency on every `/v1` router (the OpenAPI security schemes).

With `api_keys` empty (the default) every request passes. Otherwise a request must carry one of the keys,
in `X-API-Key: KEY` or `Authorization: Bearer KEY`; anything else is a 401 problem document. Keys are
compared in constant time (`hmac.compare_digest`) against every configured key, so neither the position
of a match nor the length of a common prefix shows in the response time. The probes (`/healthz`,
`/readyz`) and `/metrics` carry no dependency and stay open: orchestrators and scrapers have no key.
Both schemes are declared in the OpenAPI document.
"""

import hmac

from fastapi import Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.deps import SettingsDep
from service.errors import UnauthorizedError

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="One of `DOCEXTRACT_API_KEYS` (when set)."
)
BEARER = HTTPBearer(
    auto_error=False, description="One of `DOCEXTRACT_API_KEYS` (when set), as a bearer token."
)


def key_matches(candidate: str, keys: list[str]) -> bool:
    """True when `candidate` equals one of `keys`; every key is compared, each in constant time."""
    given = candidate.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode())
    return found


def check_key(api_key: str | None, bearer: str | None, keys: list[str]) -> None:
    """UnauthorizedError unless auth is off (`keys` empty) or one of the given credentials is a key."""
    if not keys:
        return
    candidates = [value for value in (api_key, bearer) if value]
    if not candidates:
        raise UnauthorizedError("this API needs a key: send it in `X-API-Key` or `Authorization: Bearer`")
    if not any(key_matches(candidate, keys) for candidate in candidates):
        raise UnauthorizedError("the API key is not valid")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header value."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_api_key(
    settings: SettingsDep,
    api_key: str | None = Security(API_KEY_HEADER),
    bearer: HTTPAuthorizationCredentials | None = Security(BEARER),
) -> None:
    """FastAPI dependency: UnauthorizedError unless auth is off or the request has a configured key. (The
    request gate, `service.api.gate`, has already refused such requests before their body was read; this keeps
    any route outside `/v1` honest and declares the schemes in the OpenAPI document.)"""
    check_key(api_key, bearer.credentials if bearer else None, settings.api_keys)
