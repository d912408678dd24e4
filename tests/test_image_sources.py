"""Image references: data URLs, bare base64, and remote fetches against a real local HTTP server."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from PIL import Image

from api.errors import APIError
from api.image_intake import ImageLimits, image_info
from api.image_sources import ImageSourcePolicy, read_image_reference

PARAM = "messages[0].content[1].image_url"
INLINE = ImageSourcePolicy()
REMOTE = ImageSourcePolicy(allow_remote=True, fetch_timeout_s=5.0)


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


PHOTO = jpeg_bytes()
B64 = base64.b64encode(PHOTO).decode("ascii")
URLSAFE = base64.urlsafe_b64encode(PHOTO).decode("ascii")


def read(ref: object, policy: ImageSourcePolicy = INLINE) -> bytes:
    return asyncio.run(read_image_reference(ref, PARAM, policy))


def refused(ref: object, policy: ImageSourcePolicy = INLINE) -> APIError:
    with pytest.raises(APIError) as caught:
        read(ref, policy)
    assert caught.value.param == PARAM
    return caught.value


def wrapped(text: str, width: int = 76, separator: str = "\n") -> str:
    return separator.join(text[i : i + width] for i in range(0, len(text), width))


# --- inline images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        f"data:image/jpeg;base64,{B64}",
        f"data:image/png;base64,{B64}",  # the declared type is ignored: the content is a JPEG
        f"data:image/jpeg;charset=utf-8;base64,{B64}",
        f"DATA:IMAGE/JPEG;BASE64,{B64}",
        f"data:;base64,{B64}",
        f"data:image/jpeg;base64,{wrapped(B64)}",
        f"data:image/jpeg;base64,{quote(B64, safe='')}",  # percent-encoded '+', '/' and '='
        f"data:image/jpeg,{quote(PHOTO)}",  # no base64: percent-encoded bytes
        f"  data:image/jpeg;base64,{B64}\n",
    ],
    ids=["jpeg", "wrong-type", "charset", "upper-case", "no-type", "wrapped", "percent", "plain", "spaces"],
)
def test_data_url_variants(ref: str) -> None:
    data = read(ref)
    assert data == PHOTO
    assert image_info(data, ImageLimits()).format == "JPEG"


@pytest.mark.parametrize(
    "ref",
    [
        B64,
        B64.rstrip("="),
        URLSAFE,
        URLSAFE.rstrip("="),
        wrapped(B64),
        wrapped(B64, 64, "\r\n"),
        wrapped(URLSAFE.rstrip("="), 60, " "),
        f"\n  {B64}  \n",
    ],
    ids=["standard", "unpadded", "urlsafe", "urlsafe-unpadded", "lines", "crlf", "spaces", "surrounded"],
)
def test_bare_base64_variants(ref: str) -> None:
    assert "=" in B64 and ("+" in B64 or "/" in B64)  # the variants really differ
    assert read(ref) == PHOTO


def test_large_inline_images_decode_the_same() -> None:
    # Over 256 KiB of base64 is decoded in a thread, piece by piece: pieces must join seamlessly.
    big = bytes(range(256)) * 3000 + PHOTO
    encoded = base64.b64encode(big).decode("ascii")
    assert len(encoded) > 1_000_000
    assert read(f"data:image/jpeg;base64,{encoded}") == big
    assert read(wrapped(base64.urlsafe_b64encode(big).decode("ascii").rstrip("="))) == big
    broken = encoded[:600_000] + "=" + encoded[600_001:]
    assert refused(broken).code == "invalid_image_url"


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://example.com/cat.jpg", "scheme 'ftp'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("C:\\photos\\cat.jpg", "scheme 'c'"),
        ("this is not an image!", "not valid base64"),
        ("abcde", "not valid base64"),
        ("ab=cd", "not valid base64"),
        ("data:image/png;base64" + B64, "without the ','"),
        ("data:image/png;base64,", "not valid base64"),
        ("data:image/png,", "no data"),
        (None, "not NoneType"),
        ({"url": B64}, "not dict"),
    ],
)
def test_anything_else_is_a_400_naming_the_field(ref: object, words: str) -> None:
    error = refused(ref)
    assert (error.status, error.code) == (400, "invalid_image_url")
    assert words in error.message
    assert "data: URL" in error.message


def test_http_urls_need_remote_images_enabled() -> None:
    error = refused("https://example.com/cat.jpg")
    assert (error.status, error.code) == (400, "remote_images_disabled")
    assert "api.allow_remote_images" in error.message


def test_the_size_limit_applies_to_decoded_bytes() -> None:
    exact = ImageSourcePolicy(max_bytes=len(PHOTO))
    assert read(B64, exact) == PHOTO
    assert read(f"data:image/jpeg;base64,{wrapped(B64)}", exact) == PHOTO  # line breaks do not count
    smaller = ImageSourcePolicy(max_bytes=len(PHOTO) - 1)
    for ref in (B64, f"data:image/jpeg;base64,{B64}", f"data:image/jpeg,{quote(PHOTO)}"):
        error = refused(ref, smaller)
        assert (error.status, error.code) == (413, "image_too_large")
        assert f"{len(PHOTO) - 1} bytes" in error.message


def test_huge_base64_is_refused_from_its_length_before_decoding() -> None:
    # Not even valid base64: had it been decoded, this would be a 400, not a 413.
    error = refused("!" * 3_000_000, ImageSourcePolicy(max_bytes=1_000_000))
    assert (error.status, error.code) == (413, "image_too_large")


# --- remote images --------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Routes for every fetch case; `self.server.release` ends the slow one at teardown."""

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {"Content-Length": str(len(body))}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        routes = {
            "/photo.jpg": lambda: self.send(200, PHOTO),
            "/missing": lambda: self.send(404, b"not here"),
            "/redirect-same": lambda: self.send(
                302, headers={"Location": "/photo.jpg", "Content-Length": "0"}
            ),
            "/redirect-loop": lambda: self.send(
                302, headers={"Location": "/redirect-loop", "Content-Length": "0"}
            ),
            "/until-eof": self.until_eof,
            "/chunked": self.chunked,
            "/endless": self.endless,
            "/declared-huge": lambda: self.send(200, b"", {"Content-Length": str(10**9)}),
            "/slow": self.slow,
            "/camera": self.camera,
        }
        if self.path.startswith("/redirect-to?"):
            target = self.path.partition("?")[2]
            self.send(302, headers={"Location": target, "Content-Length": "0"})
        else:
            routes.get(self.path, lambda: self.send(404))()

    def until_eof(self) -> None:  # HTTP/1.0 style: no length, the body ends with the connection
        self.send(200, PHOTO, {"Content-Type": "image/jpeg"})

    def chunked(self) -> None:
        self.protocol_version = "HTTP/1.1"
        self.send(200, headers={"Transfer-Encoding": "chunked", "Connection": "close"})
        for start in range(0, len(PHOTO), 100):
            piece = PHOTO[start : start + 100]
            self.wfile.write(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def endless(self) -> None:
        self.send(200, headers={"Content-Type": "image/jpeg"})
        try:
            for _ in range(1000):  # 64 MB at most, were the client to keep reading
                self.wfile.write(bytes(64 * 1024))
        except OSError:
            self.server.cut_off.set()  # type: ignore[attr-defined]

    def slow(self) -> None:
        self.server.release.wait(10)  # type: ignore[attr-defined]

    def camera(self) -> None:
        expected = "Basic " + base64.b64encode(b"admin:pa ss").decode()
        if self.headers.get("Authorization") == expected:
            self.send(200, PHOTO)
        else:
            self.send(401, headers={"WWW-Authenticate": 'Basic realm="cam"', "Content-Length": "0"})


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.release = threading.Event()  # type: ignore[attr-defined]
    httpd.cut_off = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.mark.parametrize("path", ["/photo.jpg", "/until-eof", "/chunked", "/redirect-same"])
def test_a_remote_image_is_fetched(server: ThreadingHTTPServer, path: str) -> None:
    # The first URL may be on loopback or the LAN: that is where home users' cameras are.
    assert read(url(server, path), REMOTE) == PHOTO


def test_camera_credentials_in_the_url_are_sent(server: ThreadingHTTPServer) -> None:
    port = server.server_address[1]
    assert read(f"http://admin:pa%20ss@127.0.0.1:{port}/camera", REMOTE) == PHOTO
    error = refused(url(server, "/camera"), REMOTE)
    assert (error.status, error.code) == (400, "image_fetch_failed")
    assert "HTTP 401" in error.message


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:1/photo.jpg",  # loopback, another origin
        "http://localhost:{port}/photo.jpg",  # a name that resolves to loopback
        "http://[::1]:{port}/photo.jpg",
        "http://10.20.30.40/photo.jpg",  # private
        "http://192.168.1.10/snapshot.jpg",
        "http://169.254.169.254/latest/meta-data/",  # link-local: the cloud metadata service
        "http://0.0.0.0:{port}/photo.jpg",  # unspecified
        "http://224.0.0.1/photo.jpg",  # multicast
        "http://[::ffff:127.0.0.1]:{port}/photo.jpg",  # loopback dressed as IPv6
    ],
)
def test_redirects_to_non_public_addresses_are_refused(server: ThreadingHTTPServer, target: str) -> None:
    target = target.format(port=server.server_address[1])
    error = refused(url(server, f"/redirect-to?{target}"), REMOTE)
    assert (error.status, error.code) == (400, "image_fetch_failed")
    assert "redirect" in error.message and "non-public address" in error.message


def test_redirects_are_followed_only_a_few_times(server: ThreadingHTTPServer) -> None:
    error = refused(url(server, "/redirect-loop"), ImageSourcePolicy(allow_remote=True, max_redirects=3))
    assert (error.status, error.code) == (400, "image_fetch_failed")
    assert "more than 3 redirects" in error.message


def test_a_non_2xx_answer_is_a_400_naming_the_status(server: ThreadingHTTPServer) -> None:
    error = refused(url(server, "/missing"), REMOTE)
    assert (error.status, error.code) == (400, "image_fetch_failed")
    assert "HTTP 404" in error.message


@pytest.mark.parametrize("path", ["/endless", "/declared-huge"])
def test_an_oversized_body_is_cut_off_with_413(server: ThreadingHTTPServer, path: str) -> None:
    policy = ImageSourcePolicy(allow_remote=True, max_bytes=200_000, fetch_timeout_s=10.0)
    error = refused(url(server, path), policy)
    assert (error.status, error.code) == (413, "image_too_large")
    assert "200000 bytes" in error.message
    if path == "/endless":  # the client hung up long before the server's 64 MB were sent
        assert server.cut_off.wait(5)  # type: ignore[attr-defined]


def test_a_slow_server_times_out(server: ThreadingHTTPServer) -> None:
    policy = ImageSourcePolicy(allow_remote=True, fetch_timeout_s=0.3)
    error = refused(url(server, "/slow"), policy)
    assert (error.status, error.code) == (400, "image_fetch_timeout")
    assert "0.3 s" in error.message


def test_an_unreachable_host_is_a_400() -> None:
    error = refused("http://127.0.0.1:1/photo.jpg", REMOTE)
    assert (error.status, error.code) == (400, "image_fetch_failed")
    assert "could not connect" in error.message


def test_a_redirect_target_is_resolved_once_and_connected_at_the_checked_address(
    server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address when checked and a private one after; the
    connection must go to the address that was checked, never to a second answer. (No traffic leaves
    the machine: connecting to the public address is refused here.)"""
    public, lookups, connects = "93.184.216.34", [], []
    real_getaddrinfo = asyncio.AbstractEventLoop.getaddrinfo
    real_open = asyncio.open_connection

    async def rebinding(loop: asyncio.AbstractEventLoop, host: str, *args: object, **kw: object) -> object:
        if host != "rebind.test":
            return await real_getaddrinfo(loop, host, *args, **kw)  # type: ignore[arg-type]
        lookups.append(host)
        address = public if len(lookups) == 1 else "127.0.0.1"
        return [(2, 1, 6, "", (address, 80))]

    async def guarded_open(host: str, *args: object, **kw: object) -> object:
        connects.append(host)
        if host == public:
            raise OSError("the test does not connect out")
        return await real_open(host, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", rebinding)
    monkeypatch.setattr(asyncio, "open_connection", guarded_open)
    port = server.server_address[1]
    error = refused(url(server, f"/redirect-to?http://rebind.test:{port}/photo.jpg"), REMOTE)
    assert lookups == ["rebind.test"] and connects[-1] == public
    assert (error.status, error.code) == (400, "image_fetch_failed") and "could not connect" in error.message
