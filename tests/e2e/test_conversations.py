"""Conversation semantics (DESIGN section 2) through the real server: what opens a conversation,
exactly once, with the exact DoubleTick payload (section 3)."""

from __future__ import annotations

import asyncio

import pytest

from convohook.meta import notifications as n

from e2e_support import (
    CUSTOMER_ID,
    FIXTURE_ACCOUNTS,
    FIXTURE_CUSTOMERS,
    FIXTURES,
    Stack,
    doubletick_body,
    header,
    iso_to_ms,
    new_mid,
)

pytestmark = pytest.mark.e2e

# Every fixture holding one customer message (tests/unit/test_meta_parse.py classifies them).
CUSTOMER_MESSAGE_FIXTURES = [
    "text",
    "image",
    "video",
    "audio",
    "file",
    "share",
    "ig_post",
    "ig_reel",
    "story_mention",
    "story_reply",
    "quick_reply",
    "postback",
    "unsupported",
    "message_referral",
    "standby",
]
# Fixtures that must change nothing: not customer messages, or not for a connected account.
NOT_OPENING_FIXTURES = [
    "echo",
    "unsend",
    "reaction",
    "read",
    "referral",
    "message_edit",
    "dashboard_test",
]


def test_the_fixture_lists_cover_every_fixture() -> None:
    # A new fixture must be classified here too.
    names = {p.stem for p in FIXTURES.glob("*.json")}
    assert names == {*CUSTOMER_MESSAGE_FIXTURES, *NOT_OPENING_FIXTURES, "batched"}


@pytest.mark.parametrize("kind", CUSTOMER_MESSAGE_FIXTURES)
async def test_every_kind_of_customer_message_opens_a_conversation(stack: Stack, kind: str) -> None:
    customer = await stack.new_customer()
    assert await stack.post(stack.fixture(kind, customer)) == 200

    delivery = await stack.assert_opened_once(customer)

    assert CUSTOMER_ID.fullmatch(delivery.json()["dtCustomerId"])
    assert header(delivery, "content-type") == "application/json"
    await stack.assert_nothing_else_delivered(1)
    (opened,) = await stack.conversations(
        contact_id=(await stack.contacts(customer.username))[0]["id"]
    )
    assert (opened["status"], opened["contact"]["igsid"]) == ("open", customer.igsid)


@pytest.mark.parametrize("kind", NOT_OPENING_FIXTURES)
async def test_notifications_that_are_not_customer_messages_open_nothing(
    stack: Stack, kind: str
) -> None:
    customer = await stack.new_customer()

    assert await stack.post(stack.fixture(kind, customer)) == 200

    await stack.assert_nothing_else_delivered(0)
    assert all(c["contact"]["igsid"] != customer.igsid for c in await stack.conversations())


async def test_a_batched_notification_opens_one_conversation_per_new_customer(
    stack: Stack,
) -> None:
    # batched.json: two accounts; customer 1 (text, then the business's echo to them) and
    # customer 2 (image) on the first, customer 3 (postback, then a read) on the second. A
    # standby[] entry from a fourth customer rides in the same notification.
    second = await stack.create_channel()
    await stack.api.ok(
        "PATCH",
        f"/api/v1/webhooks/{stack.webhook['id']}",
        {"channel_ids": [stack.channel["id"], second["id"]]},
    )
    customers = [await stack.new_customer() for _ in range(4)]
    accounts = {FIXTURE_ACCOUNTS[0]: stack.account_id, FIXTURE_ACCOUNTS[1]: second["account_id"]}
    batch = stack.fixture(
        "batched", dict(zip(FIXTURE_CUSTOMERS, customers[:3], strict=True)), accounts
    )
    standby = stack.fixture("standby", {FIXTURE_CUSTOMERS[1]: customers[3]})
    batch["entry"] += standby["entry"]

    assert await stack.post(batch) == 200

    await stack.wait_for_deliveries(4)
    for customer in (customers[0], customers[1], customers[3]):
        await stack.assert_opened_once(customer)
    await stack.assert_opened_once(customers[2], second)
    await stack.assert_nothing_else_delivered(4)


async def test_duplicates_and_further_messages_while_open_change_nothing(stack: Stack) -> None:
    customer = await stack.new_customer()
    notification = stack.text_notification(customer)

    for _ in range(3):
        assert await stack.post(notification) == 200
    await stack.assert_opened_once(customer)
    for text in ("Hello again", "Anyone there?"):
        await stack.dm(customer, text=text)
    assert await stack.post(stack.fixture("image", customer)) == 200

    await stack.assert_nothing_else_delivered(1)
    assert len(stack.deliveries_of(customer)) == 1


async def test_done_then_late_message_stays_closed_and_a_new_message_reopens(
    stack: Stack,
) -> None:
    customer = await stack.new_customer()
    await stack.dm(customer)
    (first,) = await stack.wait_for_deliveries_of(customer)
    (conversation,) = await stack.conversations(status="open")
    assert conversation["contact"]["igsid"] == customer.igsid
    assert conversation.keys() >= {"id", "status", "channel_id", "contact", "opened_at", "done_at"}
    assert (conversation["channel_id"], conversation["done_at"]) == (stack.channel["id"], None)

    done = await stack.api.ok("POST", f"/api/v1/conversations/{conversation['id']}/done")
    assert (done["id"], done["status"]) == (conversation["id"], "done")
    done_at_ms = iso_to_ms(done["done_at"])
    assert await stack.conversations(status="open") == []

    # The business writing to them after the mark reopens nothing (an echo is never a
    # customer message), and neither does a message written a millisecond before the mark
    # that Meta delivers after it: that one is history of the closed conversation.
    echo = n.echo(stack.account_id, customer.igsid, new_mid(), done_at_ms + 5, "Anything else?")
    assert await stack.post(n.notification([n.entry(stack.account_id, [echo])])) == 200
    await stack.dm(customer, text="sent before done", timestamp_ms=done_at_ms - 1)
    await stack.assert_nothing_else_delivered(1)

    # Not earlier than the mark (the same millisecond) is a new conversation.
    await stack.dm(customer, text="back again", timestamp_ms=done_at_ms)
    reopened = (await stack.wait_for_deliveries_of(customer, 2))[1]

    assert reopened.body == first.body  # same dtCustomerId, same profile: the same bytes
    assert reopened.body == await stack.expected_opening(customer)
    assert header(reopened, "webhook-id") != header(first, "webhook-id")  # another event
    (contact,) = await stack.contacts(customer.username)
    assert contact["customer_id"] == first.json()["dtCustomerId"]
    assert contact.keys() >= {"id", "customer_id", "handle", "name", "igsid", "channel_id"}
    assert (contact["handle"], contact["name"], contact["igsid"], contact["channel_id"]) == (
        customer.username,
        customer.name,
        customer.igsid,
        stack.channel["id"],
    )
    assert await stack.profile_lookups(customer) == 1  # the profile is cached per customer
    (now_open,) = [
        c
        for c in await stack.conversations(status="open")
        if c["contact"]["igsid"] == customer.igsid
    ]
    assert now_open["id"] != conversation["id"]
    assert [c["id"] for c in await stack.conversations(status="done")] == [conversation["id"]]


async def test_forty_parallel_messages_of_a_new_customer_open_one_conversation(
    stack: Stack,
) -> None:
    customer = await stack.new_customer()
    notifications = [stack.text_notification(customer, text=f"message {i}") for i in range(40)]

    statuses = await asyncio.gather(*(stack.post(body) for body in notifications))

    assert statuses == [200] * 40
    await stack.assert_opened_once(customer)
    await stack.assert_nothing_else_delivered(1)
    mine = [c for c in await stack.conversations() if c["contact"]["igsid"] == customer.igsid]
    assert len(mine) == 1


async def test_without_a_profile_the_opening_is_sent_with_the_igsid(stack: Stack) -> None:
    # The stand-in answers an unknown IGSID as Instagram does (code 100, subcode 2018001): not
    # worth retrying, so the event goes out at once with the IGSID as username and name.
    customer = await stack.new_customer(register=False)

    await stack.dm(customer)

    (delivery,) = await stack.wait_for_deliveries_of(customer.igsid)
    igsid = customer.igsid
    assert delivery.body == doubletick_body(
        handle=stack.handle,
        username=igsid,
        name=igsid,
        customer_id=await stack.customer_id_of(igsid),
    )


async def test_a_customer_without_a_display_name_is_named_by_username(stack: Stack) -> None:
    customer = await stack.new_customer(with_name=False)

    await stack.dm(customer)

    delivery = await stack.assert_opened_once(customer)
    assert delivery.json()["customerName"] == customer.username


async def test_marking_done_sends_conversation_closed_to_subscribers(stack: Stack) -> None:
    await stack.api.ok(
        "PATCH",
        f"/api/v1/webhooks/{stack.webhook['id']}",
        {"events": ["conversation.opened", "conversation.closed"]},
    )
    customer = await stack.new_customer()
    await stack.dm(customer)
    opened = await stack.assert_opened_once(customer)
    (conversation,) = await stack.conversations(status="open")

    await stack.api.ok("POST", f"/api/v1/conversations/{conversation['id']}/done")

    (_, closed) = await stack.wait_for_deliveries_of(customer, 2)
    expected = opened.body.removesuffix(b'"conversationOpened":true}')
    assert closed.body == expected + b'"conversationOpened":false,"conversationClosed":true}'
    types = sorted(d["event_type"] for d in await stack.delivery_log())
    assert types == ["conversation.closed", "conversation.opened"]


async def test_lists_page_newest_first_with_a_cursor(stack: Stack) -> None:
    customers = [await stack.new_customer() for _ in range(3)]
    for customer in customers:  # one after the other: opened in this order
        await stack.dm(customer)
        await stack.wait_for_deliveries_of(customer)

    seen: list[str] = []
    cursor = ""
    for _ in range(4):
        page = await stack.api.ok(
            "GET", f"/api/v1/conversations?channel_id={stack.channel['id']}&limit=1{cursor}"
        )
        assert page.keys() == {"items", "next"}
        seen += [c["contact"]["igsid"] for c in page["items"]]
        if page["next"] is None:
            break
        cursor = f"&cursor={page['next']}"

    assert seen == [c.igsid for c in reversed(customers)]
