"""HTTP with the standard library: every socket operation (connect and each read) is bounded by `timeout`."""

import http.client
import json
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from .errors import StreamError, TruncatedTar

USER_AGENT = "clipstream-python/0.1"


class RetryableError(Exception):
    """A failure worth retrying: connection refused or reset, timeout, 5xx, 429, truncated stream."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def base_url(url):
    """Accepts 'http://host:port', 'http://host:port/' or anything with a `.url` (a running `serve()`)."""
    url = getattr(url, "url", url)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"Expected an http(s) URL for url but received {url!r}")
    return url.rstrip("/")


def partition_url(base, stream, p, partitions, epoch, state=None, infinite=False):
    """`{base}/streams/{stream}/{p}.tar?partitions={P}&epoch={E}[&infinite=1][&state=…]` (docs/streaming.md)."""
    query = {"partitions": partitions, "epoch": epoch}
    if infinite:
        query["infinite"] = 1
    if state is not None:
        query["state"] = state
    name = urllib.parse.quote(stream, safe="")
    return f"{base}/streams/{name}/{p}.tar?{urllib.parse.urlencode(query)}"


# Server error codes that retrying cannot change: the partition's candidates all failed.
FINAL_CODES = frozenset({"STREAM_EXHAUSTED"})


def server_error(body):
    """(message, code) from a clipstream error body {"error", "code", "hint"}; the hint follows the message."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        hint = body.get("hint")
        return (f"{body['error']}; {hint}" if hint else body["error"]), body.get("code")
    return None, None


def _server_message(err):
    try:
        body = err.read(64 * 1024).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - the body is only decoration for the message
        body = ""
    try:
        message, code = server_error(json.loads(body))
    except ValueError:
        message, code = None, None
    return message or body.strip() or err.reason, code


def headers_for(token):
    """The request headers: our user agent, and the server's token (`clipstream serve --token`) when given."""
    headers = {"User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def open_url(url, timeout, token=None):
    """Opens url; returns the response. 4xx → StreamError with the server's message (a 401: the token is missing
    or wrong); retryable failures → RetryableError."""
    request = urllib.request.Request(url, headers=headers_for(token))
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        message, code = _server_message(err)
        err.close()
        if (err.code >= 500 or err.code == 429) and code not in FINAL_CODES:
            raise RetryableError(f"HTTP {err.code}: {message}", status=err.code) from None
        raise StreamError(f"{url}: HTTP {err.code}: {message}", url=url, status=err.code, code=code) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise RetryableError(describe(err)) from err


def describe(err):
    """A short human description of a network failure."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        err = err.reason if isinstance(err.reason, BaseException) else err
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "timed out waiting for the server"
    if isinstance(err, http.client.IncompleteRead):
        return "the connection closed mid-response (incomplete read)"
    if isinstance(err, TruncatedTar):
        return str(err)
    return f"{type(err).__name__}: {err}"


# What a read can raise when the server dies or stalls mid-stream.
READ_ERRORS = (OSError, http.client.HTTPException, TruncatedTar)


def get_json(url, timeout, token=None):
    """GET url → parsed JSON; raises StreamError (4xx) or RetryableError."""
    with open_url(url, timeout, token) as response:
        try:
            return json.loads(response.read())
        except READ_ERRORS as err:
            raise RetryableError(describe(err)) from err


class Retrier:
    """The one retry policy of the client: up to `retries` failures in a row (progress resets the count),
    `backoff × 2^(n-1)` seconds apart, jittered (× 0.5–1) and capped at `max_backoff`; then StreamError."""

    def __init__(self, retries, backoff, max_backoff=30.0):
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.failures = 0

    def progressed(self):
        self.failures = 0

    def failed(self, err, url, message=None):
        """Sleeps before the next try, or raises StreamError (with `message`, or a default) once out of retries."""
        self.failures += 1
        if self.failures > self.retries:
            text = message or f"{url}: {err} (gave up after {self.retries} retries)"
            raise StreamError(text, url=url, status=err.status) from err
        time.sleep(backoff_delay(self.failures, self.backoff, self.max_backoff))


def with_retries(call, url, retries, backoff, max_backoff=30.0):
    """call() until it does not raise RetryableError, at most retries + 1 times; then StreamError."""
    retrier = Retrier(retries, backoff, max_backoff)
    while True:
        try:
            return call()
        except RetryableError as err:
            retrier.failed(err, url)


def backoff_delay(failures, backoff, max_backoff):
    """Exponential backoff with jitter: backoff × 2^(failures-1), capped at max_backoff, times 0.5–1."""
    return min(max_backoff, backoff * 2 ** (failures - 1)) * (0.5 + random.random() / 2)


def list_streams(url, timeout=30.0, retries=3, backoff=0.5, token=None):
    """`GET {url}/streams` → the server's streams (dicts with name, queries, seed). token: as ClipStreamDataset's."""
    token = token_for(url, token)
    url = base_url(url)
    return with_retries(lambda: get_json(f"{url}/streams", timeout, token), f"{url}/streams", retries, backoff)[
        "streams"
    ]


def token_for(url, token=None):
    """The token to send: the one given, else that of a running `serve()` passed as url, else $CLIPSTREAM_TOKEN."""
    if token is not None:
        return token or None
    return getattr(url, "token", None) or os.environ.get("CLIPSTREAM_TOKEN") or None
