"""Live views over server-sent events (Bot Studio's captures and runs): the event format, the
response, and waiting for the next change with a keepalive now and then."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from convohook.runtime.signal import Broadcast

# What another process writes cannot wake this one: a stream looks at least this often.
POLL_S = 1.0
KEEPALIVE_S = 15.0  # an SSE comment now and then keeps proxies from closing an idle stream
KEEPALIVE = b": keepalive\n\n"


def sse(event: str, html: str, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in html.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


def event_stream(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class Quiet:
    """Waits for a Broadcast's next change, and says when the stream has been quiet long
    enough to need a keepalive."""

    def __init__(self, broadcast: Broadcast) -> None:
        self.broadcast = broadcast
        self.idle = 0.0

    def sent(self) -> None:
        self.idle = 0.0

    async def wait(self, change: asyncio.Event) -> bytes | None:
        """The keepalive to send, if one is due."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.broadcast.wait(change, POLL_S)
        self.idle += loop.time() - started
        if self.idle < KEEPALIVE_S:
            return None
        self.idle = 0.0
        return KEEPALIVE
