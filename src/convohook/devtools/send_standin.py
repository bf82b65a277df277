"""The stand-in's Send API: replies taken as Meta takes them (`{"recipient_id","message_id"}`, or
Meta's error shapes, with faults on demand), then Meta's signed echo posted to convohook's
callback, so that a reply makes the real round trip in the demo and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import aiohttp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convohook.devtools.graph_answers import VERSION, Fault, json_body, meta_error
from convohook.meta.notifications import encode
from convohook.meta.signature import sign_body

ECHO_TIMEOUT = 10.0

SendFaultMode = Literal["throttle", "down", "refuse", "hang"]
SEND_FAULT_MODES = ("ok", "throttle", "down", "refuse", "hang")
ECHO_DELAY_S = 0.2


@dataclass(frozen=True, slots=True)
class EchoTarget:
    """Where Meta would post the echo of a reply: convohook's callback, signed with the app
    secret."""

    callback_url: str
    app_secret: str
    delay_s: float = ECHO_DELAY_S


@dataclass(frozen=True, slots=True)
class SentReply:
    account_id: str
    recipient: str
    text: str
    mid: str
    tag: str | None


class SendState:
    """The Send API's side: replies taken (in order), the fault in force, where echoes go.

    Faults: `throttle` answers 429 and `down` 500 (Meta's error shapes; nothing is taken),
    `refuse` 400 as for a customer outside the window, `hang` takes the reply and then answers
    only after `delay` seconds (longer than the caller waits: a reply that reached Meta without
    the caller knowing)."""

    def __init__(self) -> None:
        self.sent: list[SentReply] = []
        self.fault: Fault | None = None
        self.fault_mode: SendFaultMode | None = None
        self.echo_to: EchoTarget | None = None
        self.echo_tasks: set[asyncio.Task[None]] = set()

    def set_fault(
        self, mode: SendFaultMode, *, delay: float = 0.0, count: int | None = None
    ) -> None:
        self.fault_mode = mode
        self.fault = Fault("slow", delay, count)

    def clear_fault(self) -> None:
        self.fault_mode = None
        self.fault = None

    def take_fault(self) -> tuple[SendFaultMode, float] | None:
        fault, mode = self.fault, self.fault_mode
        if fault is None or mode is None:
            return None
        if fault.remaining is not None:
            left = fault.remaining - 1
            if left > 0:
                self.fault = Fault(fault.mode, fault.delay, left)
            else:
                self.clear_fault()
        return mode, fault.delay

    def texts(self) -> Counter[str]:
        return Counter(reply.text for reply in self.sent)


def _access_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("access_token") or None


async def send_message(request: Request, state: SendState) -> Response:
    """The Send API as Meta answers it: the reply's mid, or Meta's error shapes."""
    version = request.path_params["version"]
    account_id = request.path_params["account_id"]
    fault = state.take_fault()
    if fault is not None:
        mode = fault[0]
        if mode == "throttle":
            return meta_error(
                "(#4) Application request limit reached", code=4, status=429, transient=True
            )
        if mode == "down":
            return meta_error(
                "An unexpected error has occurred. Please retry your request later.",
                code=2,
                status=500,
                transient=True,
            )
        if mode == "refuse":
            return meta_error(
                "This message is sent outside of allowed window.",
                code=10,
                subcode=2534022,
                error_type="IGApiException",
            )
    if not VERSION.fullmatch(version):
        return meta_error(f"Unknown path components: /{version}/{account_id}/messages", code=2500)
    if not _access_token(request):
        return meta_error("An active access token must be used.", code=190)
    data = await json_body(request)
    if isinstance(data, Response):
        return meta_error("(#100) The parameter recipient is required", code=100)
    recipient = data.get("recipient")
    message = data.get("message")
    recipient_id = recipient.get("id") if isinstance(recipient, dict) else None
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(recipient_id, str) or not recipient_id:
        return meta_error("(#100) The parameter recipient is required", code=100)
    if not isinstance(text, str) or not text:
        return meta_error("(#100) The parameter message is required", code=100)
    if len(text.encode()) > 1000:
        return meta_error(
            "(#100) Length of param message[text] must be less than or equal to 1000", code=100
        )
    tag = data.get("tag")
    if tag is not None and (tag != "HUMAN_AGENT" or data.get("messaging_type") != "MESSAGE_TAG"):
        return meta_error("(#100) Param tag must be HUMAN_AGENT with MESSAGE_TAG", code=100)
    mid = "aWdfZAG1f" + secrets.token_urlsafe(24)
    state.sent.append(SentReply(account_id, recipient_id, text, mid, tag))
    if state.echo_to is not None:
        task = asyncio.create_task(_post_echo(state.echo_to, account_id, recipient_id, text, mid))
        state.echo_tasks.add(task)
        task.add_done_callback(state.echo_tasks.discard)
    if fault is not None and fault[0] == "hang":
        await asyncio.sleep(fault[1])
    return JSONResponse({"recipient_id": recipient_id, "message_id": mid})


def echo_notification(
    account_id: str, recipient: str, text: str, mid: str, timestamp_ms: int
) -> dict[str, object]:
    """Meta's echo: the business is the sender, the customer the recipient, the reply's mid."""
    return {
        "object": "instagram",
        "entry": [
            {
                "id": account_id,
                "time": timestamp_ms,
                "messaging": [
                    {
                        "sender": {"id": account_id},
                        "recipient": {"id": recipient},
                        "timestamp": timestamp_ms,
                        "message": {"mid": mid, "text": text, "is_echo": True},
                    }
                ],
            }
        ],
    }


async def _post_echo(
    target: EchoTarget, account_id: str, recipient: str, text: str, mid: str
) -> None:
    await asyncio.sleep(target.delay_s)
    body = encode(echo_notification(account_id, recipient, text, mid, int(time.time() * 1000)))
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign_body(target.app_secret, body),
    }
    # Meta retries a callback that fails; an echo lost here is only a demo's missing line.
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ECHO_TIMEOUT)) as http,
            http.post(target.callback_url, data=body, headers=headers) as response,
        ):
            await response.read()
