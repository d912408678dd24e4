"""Download one image over http(s) for a request, on the event loop, within time and size limits.

A small HTTP/1.1 GET on asyncio streams (no new dependency, nothing blocks the loop, and the whole
fetch - connects, redirects, body - shares one deadline). The first URL may point anywhere, the LAN
included: home users' cameras live there, and whoever may call the API names it on purpose. A
redirect is where a URL can lead somewhere the caller never chose, so a redirect to another origin
is followed only when every address its host resolves to is public (no loopback, private,
link-local, multicast, unspecified or reserved address), and the connection goes to the address
that was checked, so a second DNS answer cannot swap in a private one. A redirect within the same
origin reconnects to the address already in use.

Errors are 400s naming the request field: a URL the client chose that cannot be fetched is the
request's problem, and a 5xx would make OpenAI's SDKs retry the same slow URL twice more.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit

from api.errors import APIError
from api.image_intake import image_too_large

_REDIRECTS = (301, 302, 303, 307, 308)
_READ_CHUNK = 64 * 1024
_MAX_HEADERS = 100
_USER_AGENT = "hailo-vision"
_URL_SAFE = "/?:@!$&'()*+,;=%[]"


@dataclass(frozen=True)
class _Target:
    """One URL, taken apart into what a request to it needs."""

    url: str
    scheme: str
    host: str
    port: int
    host_header: str
    path: str
    authorization: str | None

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host.lower(), self.port

    @property
    def shown(self) -> str:
        """The URL for messages, without any user:password."""
        return f"{self.scheme}://{self.host_header}{self.path}"


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str


async def fetch_image(url: str, *, param: str, max_bytes: int, timeout_s: float, max_redirects: int) -> bytes:
    """The body of a successful GET of `url`, following up to `max_redirects` safe redirects.

    Raises APIError: 400 `image_fetch_failed` (bad URL, unreachable, non-2xx, refused or too many
    redirects), 400 `image_fetch_timeout` (the whole fetch took over `timeout_s`), 413
    `image_too_large` (the body is over `max_bytes`; reading stops there).
    """
    target = _parse_url(url, param)
    try:
        async with asyncio.timeout(timeout_s):
            return await _follow(target, param, max_bytes, max_redirects)
    except TimeoutError:
        raise APIError(
            400,
            f"Fetching the image at {target.shown} took longer than {timeout_s:g} s.",
            "image_fetch_timeout",
            param,
        ) from None


async def _follow(target: _Target, param: str, max_bytes: int, max_redirects: int) -> bytes:
    address: str | None = None  # None: connect by name (the first URL is the caller's choice)
    for _ in range(max_redirects + 1):
        response = await _get(target, address, param)
        try:
            if response.status in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise _failed(f"{target.shown} answered {response.status} without a Location", param)
                next_target = _parse_url(urljoin(target.url, location), param)
                if next_target.origin == target.origin:
                    address = response.peer
                else:
                    address = await _public_address(next_target, param)
                target = next_target
                continue
            if not 200 <= response.status < 300:
                raise _failed(f"{target.shown} answered HTTP {response.status}", param)
            return await _read_body(response, target, param, max_bytes)
        finally:
            response.writer.close()
    raise _failed(f"more than {max_redirects} redirects, the last to {target.shown}", param)


def _parse_url(url: str, param: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as error:
        raise _failed(f"the URL is malformed ({error})", param) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise _failed(f"only http and https URLs with a host can be fetched, not {url[:200]!r}", param)
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise _failed(f"the host name {parts.hostname[:200]!r} is malformed", param) from None
    authorization = None
    if parts.username is not None:  # cameras often take user:password@ in the URL
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    # Spaces, control and non-ASCII characters are percent-encoded: none may reach the request line.
    path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_URL_SAFE)
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return _Target(url, scheme, host, port, host_header, path, authorization)


async def _public_address(target: _Target, param: str) -> str:
    """An address of the redirect target's host, after checking that all of them are public."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
    except OSError as error:
        raise _failed(f"the redirect target {target.host} does not resolve ({error})", param) from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if not _is_public(address):
            raise _failed(
                f"a redirect to {target.shown} was refused: it leads to the non-public address {address}",
                param,
            )
    return addresses[0]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _get(target: _Target, address: str | None, param: str) -> _Response:
    """Send the GET and read the status line and headers; the body is left in the reader."""
    tls = ssl.create_default_context() if target.scheme == "https" else None
    try:
        reader, writer = await asyncio.open_connection(
            address or target.host, target.port, ssl=tls, server_hostname=target.host if tls else None
        )
    except (OSError, ssl.SSLError) as error:
        raise _failed(f"could not connect to {target.shown} ({error})", param) from None
    lines = [
        f"GET {target.path} HTTP/1.1",
        f"Host: {target.host_header}",
        f"User-Agent: {_USER_AGENT}",
        "Accept: image/*",
        "Accept-Encoding: identity",
        "Connection: close",
    ]
    if target.authorization:
        lines.append(f"Authorization: {target.authorization}")
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status_line = await reader.readline()
        version, _, rest = status_line.decode("latin-1").partition(" ")
        status = int(rest.split(" ", 1)[0])
        if not version.startswith("HTTP/"):
            raise ValueError(f"not an HTTP status line: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ValueError(f"more than {_MAX_HEADERS} header lines")
    except BaseException as error:  # a timeout's cancellation included: never leak the connection
        writer.close()
        if isinstance(error, OSError | ValueError | UnicodeError):
            raise _failed(f"{target.shown} did not answer with valid HTTP ({error})", param) from None
        raise
    return _Response(status, headers, reader, writer, str(writer.get_extra_info("peername")[0]))


async def _read_body(response: _Response, target: _Target, param: str, max_bytes: int) -> bytes:
    """The response body, refused with 413 as soon as it is known to exceed `max_bytes`."""
    reader, headers = response.reader, response.headers
    body = bytearray()
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while size := int((await reader.readline()).split(b";")[0].strip(), 16):
                if len(body) + size > max_bytes:
                    raise image_too_large(max_bytes, param)
                body += await reader.readexactly(size)
                await reader.readexactly(2)  # the CRLF after each chunk
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > max_bytes:
                raise image_too_large(max_bytes, param)
            body += await reader.readexactly(length)
        else:
            while chunk := await reader.read(_READ_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise image_too_large(max_bytes, param)
    except (OSError, ValueError, asyncio.IncompleteReadError) as error:
        raise _failed(f"the body from {target.shown} was cut short or malformed ({error})", param) from None
    return bytes(body)


def _failed(problem: str, param: str) -> APIError:
    return APIError(400, f"Could not fetch the image: {problem}.", "image_fetch_failed", param)
