"""The Send API client on real sockets: which failures may have reached Meta. A refused
connection certainly did not (tried again); a connection dropped after the request was written,
or an answer that never comes, may have (unknown, never repeated by itself)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import aiohttp

from convohook.meta.send import Refused, Sent, TryAgain, Unknown
from convohook.outbound.graph_client import GraphClient

from harness import free_socket

BODY: dict[str, object] = {"recipient": {"id": "123"}, "message": {"text": "Hi"}}


async def _send(base: str, *, timeout: float = 2.0, token: str = "IGAA-tok") -> object:
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, base, timeout=timeout)
        return await client.send_message("1784", token, BODY)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handle: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v24.0"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def test_a_refused_connection_is_tried_again() -> None:
    sock: socket.socket = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    outcome = await _send(f"http://127.0.0.1:{port}/v24.0")
    assert isinstance(outcome, TryAgain)
    assert "unreachable" in outcome.reason


async def test_a_connection_dropped_after_the_request_is_unknown() -> None:
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await _read_request(reader))
        writer.transport.abort()  # a reset, no answer

    server, base = await _serve(handle)
    async with server:
        outcome = await _send(base)
    assert isinstance(outcome, Unknown)
    assert "may have reached Instagram" in outcome.reason
    assert len(requests) == 1
    assert b"Authorization: Bearer IGAA-tok" in requests[0]
    assert b"POST /v24.0/1784/messages" in requests[0]


async def test_an_answer_that_never_comes_is_unknown() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    server, base = await _serve(handle)
    async with server:
        outcome = await _send(base, timeout=0.3)
    assert isinstance(outcome, Unknown)
    assert "within 0.3 s" in outcome.reason


async def test_an_answer_is_read_and_a_missing_token_is_refused_without_a_call() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        body = b'{"recipient_id":"123","message_id":"aWdf-1"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()

    server, base = await _serve(handle)
    async with server:
        assert await _send(base) == Sent("aWdf-1")
    assert isinstance(await _send("http://127.0.0.1:9/v24.0", token=""), Refused)
