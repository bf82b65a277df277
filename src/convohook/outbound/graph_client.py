"""The Instagram User Profile API client: an IGSID in, a username and display name out (with
the follower count and the follow and verified flags, when Instagram shares them).

Every way a lookup can fail is one `ProfileUnavailable` (meta/graph.py understands Meta's answers
and says whether to retry). The access token travels in the query string (the API's contract), so
exceptions are raised without their cause: aiohttp puts the full request URL into some of its
messages, and a logged traceback of the chained cause would otherwise print the token.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from convohook.domain.payload import CustomerProfile
from convohook.meta.graph import (
    MAX_BODY_BYTES,
    PROFILE_FIELDS,
    ProfileUnavailable,
    error_from_status,
    invalid_url,
    profile_from_body,
    redact,
)
from convohook.meta.send import Refused, SendOutcome, TryAgain, Unknown, outcome_of_answer


def create_graph_session() -> aiohttp.ClientSession:
    """The session for Meta's Graph API (profiles, the Send API). One for every org: no cookie
    one org's call was answered with goes with another's (nor with its next), and no proxy
    from the environment. Call it inside the running event loop; close it at shutdown."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)


class GraphClient:
    """Reads customer profiles from the Instagram Graph API over a caller-owned session."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, timeout: float = 5.0
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"the Graph API timeout must be positive, got {timeout!r}")
        self._session = session
        self._base_url = base_url.rstrip("/")
        # Per call, whatever the session's default: the enricher's deadline assumes it is bounded.
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._timeout_s = timeout

    @property
    def base_url(self) -> str:
        return self._base_url

    async def fetch_profile(self, igsid: str, access_token: str) -> CustomerProfile:
        """GET {base}/{igsid}?fields=name,username,follower_count,…; raises ProfileUnavailable
        on any failure."""
        if not igsid:
            raise ProfileUnavailable("empty IGSID", retryable=False)
        if not access_token:
            raise ProfileUnavailable(
                "the channel has no access token; set one on the channel", retryable=False
            )
        # safe="" so an IGSID can never add path segments or a query of its own.
        url = f"{self._base_url}/{quote(igsid, safe='')}"
        params = {"fields": PROFILE_FIELDS, "access_token": access_token}
        try:
            # No redirects: following one would hand the token in the query to another URL.
            async with self._session.get(
                url, params=params, timeout=self._timeout, allow_redirects=False
            ) as response:
                status = response.status
                body = await _read_capped(response)
        except TimeoutError:
            # aiohttp's own timeout errors subclass TimeoutError, so this is caught first.
            raise ProfileUnavailable(
                f"Graph API timed out after {self._timeout_s:g} s", retryable=True
            ) from None
        except aiohttp.ClientResponseError as exc:
            # Only when the caller's session was built with raise_for_status=True.
            raise error_from_status(exc.status, exc.message.encode(), access_token) from None
        except aiohttp.InvalidURL as exc:
            raise invalid_url(exc, access_token) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ProfileUnavailable(
                f"Graph API unreachable: {type(exc).__name__}: {redact(str(exc), access_token)}",
                retryable=True,
            ) from None
        except ValueError as exc:
            # yarl rejects some malformed URLs with a bare ValueError.
            raise invalid_url(exc, access_token) from None
        if status != 200:
            raise error_from_status(status, body, access_token)
        return profile_from_body(igsid, body, access_token)

    async def send_message(
        self, account_id: str, access_token: str, body: dict[str, object]
    ) -> SendOutcome:
        """POST {base}/{account_id}/messages (the Send API); never raises. The token goes in
        the Authorization header, as Meta documents for Instagram Login, so no URL holds it."""
        if not access_token:
            return Refused("the channel has no access token: set one on the channel, then retry")
        url = f"{self._base_url}/{quote(account_id, safe='')}/messages"
        headers = {"Authorization": f"Bearer {access_token}"}
        try:
            async with self._session.post(
                url, json=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                answer = await _read_capped(response)
                return outcome_of_answer(
                    response.status, answer, access_token, response.headers.get("Retry-After")
                )
        except aiohttp.ConnectionTimeoutError:
            # Not even connected: nothing was sent.
            return TryAgain(f"Graph API: no connection within {self._timeout_s:g} s")
        except aiohttp.ClientConnectorError as exc:
            # Refused or unresolvable before a byte of the request went out.
            return TryAgain(f"Graph API unreachable: {redact(str(exc), access_token)}")
        except TimeoutError:
            return Unknown(
                f"no answer from the Graph API within {self._timeout_s:g} s: the reply may have "
                "reached Instagram"
            )
        except (aiohttp.ClientError, OSError) as exc:
            # The connection dropped after the request was written (or while it was).
            return Unknown(
                f"the Graph API connection failed mid-call ({type(exc).__name__}): the reply "
                "may have reached Instagram"
            )


async def _read_capped(response: aiohttp.ClientResponse) -> bytes | None:
    """The body, or None when it is larger than any Graph answer should be."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
