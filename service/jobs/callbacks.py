"""Job callback URLs, guarded against server-side request forgery.

A callback makes this server POST to an address a client chose, so by default the URL must be absolute
http(s) and every address its host resolves to must be a public one: loopback, private (RFC 1918, unique
local), link-local (cloud metadata at 169.254.169.254 included), shared, multicast, reserved and
unspecified addresses are refused, as are IPv6 forms that carry one of those (IPv4-mapped, 6to4, Teredo,
NAT64). The check runs when the job is posted (a 400 problem document) and again just before the callback
is sent (the name may resolve elsewhere by then); the request then goes to the very addresses that were
checked, with the original `Host` header and TLS server name, so no second DNS answer can redirect it (DNS
rebinding). Where the name has several addresses, each is tried in turn (IPv4 first) until one accepts the
connection. `allow_private_callbacks` turns the address check off (a receiver on the same host or network).

With `callback_secret` set, a callback is signed as common webhook providers sign theirs: the header
`X-Docextract-Timestamp` holds unix seconds, and `X-Docextract-Signature` holds `v1=` and the hex HMAC-SHA256,
keyed with the secret, of `{timestamp}.` followed by the exact body bytes sent. A receiver checks it with
`verify_signature` (the README has the same code to copy).
"""

import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from service.errors import BadRequestError, CallbackUrlRefusedError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
TIMESTAMP_HEADER = "X-Docextract-Timestamp"
SIGNATURE_HEADER = "X-Docextract-Signature"


NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix: the IPv4 address in the last 32 bits
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use (RFC 8215): never public


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, 6to4, Teredo or NAT64 (RFC 6052) forms, each of
    which a router may turn back into that IPv4 address."""
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in NAT64_PREFIX:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ipv4 for ipv4 in found if ipv4 is not None]


def is_public(address: IpAddress) -> bool:
    """True for a globally routable unicast address that carries no non-public IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL or not all(is_public(ipv4) for ipv4 in embedded_ipv4(address)):
            return False
        if address.ipv4_mapped is not None:
            return True  # its IPv4 address is public (checked just above)
    return address.is_global and not address.is_multicast


def resolve(host: str) -> list[IpAddress]:
    """Every address `host` (a name or a literal address) stands for; CallbackUrlRefusedError when it
    does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise CallbackUrlRefusedError(f"the callback host {host!r} does not resolve: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]


def _parsed(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BadRequestError(f"callback_url {url!r} is not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadRequestError(f"callback_url must be an absolute http(s) URL, got {url!r}")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise BadRequestError(f"callback_url {url!r} has port {parsed.port}: a TCP port is 1 to 65535")
    return parsed


def _checked_addresses(url: str, parsed: httpx.URL, allow_private: bool) -> list[IpAddress]:
    addresses = resolve(parsed.host)
    refused = [str(address) for address in addresses if not is_public(address)]
    if refused and not allow_private:
        raise CallbackUrlRefusedError(
            f"callback_url {url!r} points at a non-public address ({', '.join(refused)}); "
            "set DOCEXTRACT_ALLOW_PRIVATE_CALLBACKS=true to allow loopback and private networks"
        )
    return addresses


def check_callback_url(url: str, allow_private: bool) -> str:
    """The URL when it may be called back; BadRequestError (not a URL) or CallbackUrlRefusedError."""
    parsed = _parsed(url)
    if not allow_private:
        _checked_addresses(url, parsed, allow_private)
    return url


@dataclass(frozen=True)
class CallbackTarget:
    """Where a callback goes: the URL with its host replaced by the address that was checked, and the
    `Host` header and TLS server name of the original host (the certificate is verified against it)."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def callback_targets(url: str, allow_private: bool) -> list[CallbackTarget]:
    """Check the URL (as `check_callback_url`) and pin it to each address checked, so that the request
    cannot reach another address through a second DNS answer (DNS rebinding). IPv4 addresses come first: on
    a host without IPv6 routes, an IPv6 connect may only fail at the timeout."""
    parsed = _parsed(url)
    addresses = list(dict.fromkeys(_checked_addresses(url, parsed, allow_private)))
    addresses.sort(key=lambda address: address.version)  # stable: the resolver's order within a family
    headers = {"Host": parsed.netloc.decode("ascii")}
    targets = []
    for address in addresses:
        is_name = parsed.host != str(address)
        extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" and is_name else {}
        targets.append(CallbackTarget(str(parsed.copy_with(host=str(address))), headers, extensions))
    return targets


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: `v1=` and the hex HMAC-SHA256 of `{timestamp}.{body}`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def signature_headers(secret: str | None, body: bytes, now: float) -> dict[str, str]:
    """The timestamp and signature headers of a callback sent at `now` (none without a secret)."""
    if not secret:
        return {}
    timestamp = int(now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: float = 300
) -> bool:
    """True when `signature` (the signature header) signs `timestamp` (the timestamp header) and the raw
    `body` with `secret`, and the timestamp is within `tolerance_s` seconds of `now` (a replayed old
    callback fails). Pure: the receiver passes the clock."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance_s:
        return False
    expected = sign(secret, sent, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in signature.split(","))


def post_to_first_reachable(
    targets: list[CallbackTarget], body: bytes, headers: dict[str, str], timeout_s: float
) -> httpx.Response:
    """POST the JSON `body` (these very bytes, with the extra `headers`) to the first target that accepts a
    connection; the last connection error when none does. Other errors (a timeout after connecting, a broken
    response) go to the caller at once: the receiver may have seen the request, and the caller's next attempt
    starts again from the first address."""
    if not targets:
        raise ValueError("no callback target to post to")
    for position, target in enumerate(targets, start=1):
        try:
            with httpx.Client(timeout=timeout_s) as client:
                return client.post(
                    target.url,
                    content=body,
                    headers={"Content-Type": "application/json", **headers, **target.headers},
                    extensions=target.extensions,
                )
        except (httpx.ConnectError, httpx.ConnectTimeout):
            if position == len(targets):
                raise
    raise AssertionError("unreachable")  # the loop returns or raises
