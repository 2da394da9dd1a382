"""The exceptions clipstream raises. Callers branch on the class (and a StreamError's `code`), never on the message."""


class ClipStreamError(RuntimeError):
    """Base class of every clipstream error."""

    def __init__(self, message=""):
        # `message=` as a keyword: torch's DataLoader re-raises a worker's exception as type(e)(message=…), so a
        # StateError in a worker stays a StateError in the training loop.
        super().__init__(message)


class ServeError(ClipStreamError):
    """`clipstream serve` could not be started; the message carries the server's own error.

    Attributes: `returncode` (None if it was still running, e.g. a start-up timeout), `stderr` (its last lines).
    """

    def __init__(self, message, returncode=None, stderr=""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class StreamError(ClipStreamError):
    """A partition could not be read: the server refused the request (`status` 4xx, not retried), said the
    partition cannot deliver (`code` STREAM_EXHAUSTED: every candidate failed, the message names the reasons), or
    it stayed unreachable or kept failing after every retry (`status` None or 5xx). `url` is the last URL tried;
    `code` is the server's error code when it sent one (see docs/server.md), else None."""

    def __init__(self, message, url=None, status=None, code=None):
        super().__init__(message)
        self.url = url
        self.status = status
        self.code = code


class StateError(ClipStreamError, ValueError):
    """A resume state that does not fit this dataset: another stream, another partition count, not a state."""


class TarFormatError(ClipStreamError):
    """The bytes are not a tar archive (bad header checksum, …)."""


class TruncatedTar(TarFormatError):
    """The stream ended before the tar's end blocks: the server or the connection died mid-partition."""
