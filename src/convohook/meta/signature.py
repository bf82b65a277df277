"""`X-Hub-Signature-256`: how Meta proves a notification came from it.

Meta signs the raw request body with the app secret (HMAC-SHA256) and sends
`sha256=<hex digest>`. The check must run on the exact bytes received, before any parsing,
because re-serialised JSON would not hash the same.
"""

from __future__ import annotations

import hashlib
import hmac
import string

_SCHEME = "sha256"
_HEX_LENGTH = hashlib.sha256().digest_size * 2
_HEX_DIGITS = frozenset(string.hexdigits)


def _digest(app_secret: str, body: bytes) -> str:
    return hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_body(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta would send for `body` (used by simulators and tests)."""
    return f"{_SCHEME}={_digest(app_secret, body)}"


def verify_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is Meta's signature of `body`; any missing or malformed header is False.

    Meta's hex is lowercase, but proxies and hand-written clients sometimes upper-case it;
    accepting either costs nothing since the digest is compared, not the spelling.
    """
    if not header:
        return False
    scheme, separator, claimed = header.strip().partition("=")
    if not separator or scheme.lower() != _SCHEME:
        return False
    # Checking the shape first keeps compare_digest to equal-length ASCII, which it requires;
    # this leaks only the header's own format, never anything about the secret.
    if len(claimed) != _HEX_LENGTH or not _HEX_DIGITS.issuperset(claimed):
        return False
    expected = _digest(app_secret, body)
    return hmac.compare_digest(expected.encode("ascii"), claimed.lower().encode("ascii"))
