"""Agents, assignment, round robin and tags as use cases on both backends (DESIGN section 7):
what each writes, the conversation.assigned event each change puts in the outbox, and round
robin's turn shared by concurrent workers and kept across a restart."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from test_storage_contract import T0, apply, msg, setup_org

from convohook.domain.model import Channel, Conversation, User
from convohook.domain.payload import CustomerProfile
from convohook.storage.base import Storage, Transaction
from convohook.storage.database import Database, open_storage
from convohook.usecases.agents import AgentChanges, NewAgent, create_agent, update_agent
from convohook.usecases.assignment import BY_API, BY_BOT, assign, assign_round_robin
from convohook.usecases.conversations import get_conversation, list_conversations, mark_done
from convohook.usecases.delivery import claim_due_deliveries
from convohook.usecases.errors import Conflict, Invalid, NotFound
from convohook.usecases.orgs import create_org
from convohook.usecases.profiles import ProfileResult, apply_profile_results
from convohook.usecases.tags import MAX_TAGS, change_tags

R = TypeVar("R")
EVENTS = ("conversation.opened", "conversation.assigned")


_TICKS = itertools.count(T0 + 1_000)


def clock() -> int:
    """A millisecond later at each call: events made in turn sort in that order."""
    return next(_TICKS)


def run(db: Database, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    return db.run_sync(fn, *args, **kwargs)


_JOINED = itertools.count(T0)  # agents made in this order get ids in this order


def agent(db: Database, org_id: str, name: str, available: bool = True) -> User:
    new = NewAgent(name=name, email=f"{name.lower()}@example.com", available=available)
    return run(db, create_agent, org_id, new, next(_JOINED))


def opened(db: Database, channel: Channel, igsid: str = "111") -> Conversation:
    """A conversation opened by a customer's first message (its profile not known yet)."""
    assert apply(db, channel, msg(igsid, mid=f"m-{igsid}")) == "first_message"
    found = run(db, list_conversations, channel.org_id, status="open", limit=200)
    return next(v for v in found if v.contact.igsid == igsid)


def assigned_events(db: Database) -> list[tuple[str, dict[str, Any] | None, bytes | None]]:
    """(conversation id, details, payload) of each conversation.assigned, oldest first."""
    with db.storage.transaction() as tx:
        rows = tx._x(  # type: ignore[attr-defined]
            "SELECT conversation_id, details, payload FROM events "
            "WHERE type = 'conversation.assigned' ORDER BY created_at_ms"
        ).fetchall()
    return [
        (str(r[0]), orjson.loads(r[1]) if r[1] else None, bytes(r[2]) if r[2] else None)
        for r in rows
    ]


def known_profile(db: Database, conversation: Conversation) -> None:
    def save(tx: Transaction) -> None:
        tx.set_contact_profile(conversation.contact.id, "jane.doe", "Jane Doe", "ok", T0)

    run(db, save)


def make_storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    """Another connection to the test's database (the `storage` fixture's, same file or URL):
    what another process, or the same one restarted, has."""
    if backend == "sqlite":
        return open_storage(f"sqlite:///{tmp_path / 'convohook.db'}")
    return open_storage(str(request.getfixturevalue("postgres_url")))


# --- agents ------------------------------------------------------------------------------------


def test_agents_are_an_orgs_users_with_a_name_and_availability(db: Database) -> None:
    channel, _ = setup_org(db)
    ada = run(db, create_agent, channel.org_id, NewAgent("  Ada ", "Ada@Example.com"), T0)
    assert (ada.name, ada.email, ada.available, ada.password_hash) == (
        "Ada",
        "ada@example.com",
        True,
        "",
    )
    with pytest.raises(Conflict, match="email"):
        run(db, create_agent, channel.org_id, NewAgent("Ada again", "ada@example.COM"), T0)
    for new, field in [
        (NewAgent(" ", "x@example.com"), "name"),
        (NewAgent("X" * 101, "x@example.com"), "name"),
        (NewAgent("X", "not-an-email"), "email"),
        (NewAgent("X", "a b@example.com"), "email"),
    ]:
        with pytest.raises(Invalid) as refused:
            run(db, create_agent, channel.org_id, new, T0)
        assert refused.value.field == field

    away = run(db, update_agent, channel.org_id, ada.id, AgentChanges(available=False))
    renamed = run(db, update_agent, channel.org_id, ada.id, AgentChanges(name="Ada L."))
    assert (away.available, renamed.name, renamed.available) == (False, "Ada L.", False)
    assert db.run_sync(lambda tx: tx.get_agent(channel.org_id, ada.id)) == renamed

    other = run(db, create_org, "Other", T0).org
    with pytest.raises(NotFound):
        run(db, update_agent, other.id, ada.id, AgentChanges(name="Stolen"))
    assert db.run_sync(lambda tx: tx.list_agents(other.id, None, 10)) == []


# --- assigning by hand -------------------------------------------------------------------------


def test_each_change_of_assignee_fires_conversation_assigned_and_nothing_else_does(
    db: Database,
) -> None:
    channel, webhook = setup_org(db, events=EVENTS)
    org_id = channel.org_id
    ada, bob = agent(db, org_id, "Ada"), agent(db, org_id, "Bob", available=False)
    conversation = opened(db, channel)
    known_profile(db, conversation)

    def to(agent_id: str | None, by: str = BY_API) -> Conversation:
        return run(db, assign, org_id, conversation.id, agent_id, by=by, clock=clock)

    assert to(ada.id).assignee_id == ada.id
    assert to(ada.id).assignee_id == ada.id  # the same agent again: nothing changes
    assert to(bob.id, by="usr_someone").assignee_id == bob.id  # away agents too, by hand
    assert to(None).assignee_id is None
    assert to(None).assignee_id is None

    events = assigned_events(db)
    ada_fields = {"id": ada.id, "name": "Ada", "email": "ada@example.com"}
    bob_fields = {"id": bob.id, "name": "Bob", "email": "bob@example.com"}
    assert [details for _, details, _ in events] == [
        {"assignee": ada_fields, "previousAssignee": None, "assignedBy": "api"},
        {"assignee": bob_fields, "previousAssignee": ada_fields, "assignedBy": "usr_someone"},
        {"assignee": None, "previousAssignee": bob_fields, "assignedBy": "api"},
    ]
    payload = events[0][2]
    assert payload is not None
    body = orjson.loads(payload)
    assert list(body)[-2:] == ["conversationOpened", "assignee"]
    assert (body["conversationOpened"], body["assignee"], body["from"]) == (
        False,
        ada_fields,
        "jane.doe",
    )
    assert "conversationClosed" not in body
    # One delivery each, to the webhook subscribed to conversation.assigned.
    due = run(db, claim_due_deliveries, clock(), clock() + 60_000, 50)
    assigned = [d for d in due if d.event_type == "conversation.assigned"]
    assert len(assigned) == 3
    assert {d.webhook_id for d in assigned} == {webhook.id}


def test_an_assignment_waits_for_the_customers_profile_and_keeps_who_it_named(
    db: Database,
) -> None:
    channel, _ = setup_org(db, events=EVENTS)
    ada = agent(db, channel.org_id, "Ada")
    conversation = opened(db, channel)  # its profile is being looked up
    run(db, assign, channel.org_id, conversation.id, ada.id, by=BY_BOT, clock=clock)
    assert assigned_events(db)[0][2] is None  # not sendable yet
    # Ada is renamed meanwhile: the event still says whom it assigned, as it was then.
    run(db, update_agent, channel.org_id, ada.id, AgentChanges(name="Ada Lovelace"))

    waiting = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0 + 2, T0 + 30_000, 10))
    result = ProfileResult(waiting[0], CustomerProfile("jane.doe", "Jane Doe"))
    run(db, apply_profile_results, [result], T0 + 3)

    payload = assigned_events(db)[0][2]
    assert payload is not None
    body = orjson.loads(payload)
    assert body["customerName"] == "Jane Doe"
    assert body["assignee"] == {"id": ada.id, "name": "Ada", "email": "ada@example.com"}


def test_another_orgs_agent_or_conversation_is_not_found(db: Database) -> None:
    channel, _ = setup_org(db, events=EVENTS)
    conversation = opened(db, channel)
    other = run(db, create_org, "Other", T0).org
    stranger = agent(db, other.id, "Stranger")
    ours = agent(db, channel.org_id, "Ours")
    with pytest.raises(NotFound, match="agent"):
        run(db, assign, channel.org_id, conversation.id, stranger.id, by=BY_API, clock=clock)
    with pytest.raises(NotFound, match="conversation"):
        run(db, assign, other.id, conversation.id, stranger.id, by=BY_API, clock=clock)
    with pytest.raises(NotFound, match="conversation"):
        run(db, assign_round_robin, other.id, conversation.id, by=BY_API, clock=clock)
    with pytest.raises(NotFound, match="conversation"):
        run(db, change_tags, other.id, conversation.id, add=["x"], now_ms=T0)
    assert run(db, list_conversations, channel.org_id)[0].assignee_id is None
    assert assigned_events(db) == []
    assert ours.org_id == channel.org_id


def test_a_reopened_conversation_starts_unassigned(db: Database) -> None:
    channel, _ = setup_org(db, events=EVENTS)
    ada = agent(db, channel.org_id, "Ada")
    first = opened(db, channel)
    run(db, assign, channel.org_id, first.id, ada.id, by=BY_API, clock=clock)
    run(db, mark_done, channel.org_id, first.id, clock=lambda: T0 + 2_000)
    assert apply(db, channel, msg(mid="m-again", ts=T0 + 3_000), now=T0 + 3_000) == "reopened"
    conversations = run(db, list_conversations, channel.org_id)
    assert [(v.status, v.assignee_id) for v in conversations] == [
        ("open", None),
        ("done", ada.id),
    ]


def test_the_list_filters_by_assignee_unassigned_and_tag(db: Database) -> None:
    channel, _ = setup_org(db)
    org_id = channel.org_id
    ada = agent(db, org_id, "Ada")
    first, second, third = (opened(db, channel, igsid) for igsid in ("1", "2", "3"))
    run(db, assign, org_id, first.id, ada.id, by=BY_API, clock=clock)
    run(db, change_tags, org_id, second.id, add=["vip"], now_ms=T0)
    run(db, change_tags, org_id, first.id, add=["vip", "pricing"], now_ms=T0)

    def ids(**filters: Any) -> set[str]:
        return {v.id for v in run(db, list_conversations, org_id, **filters)}

    assert ids(assignee_id=ada.id) == {first.id}
    assert ids(unassigned=True) == {third.id, second.id}
    assert ids(tag="vip") == {second.id, first.id}
    assert ids(tag="vip", unassigned=True) == {second.id}
    assert ids(tag="pricing", assignee_id=ada.id) == {first.id}
    assert ids(tag="nope") == set()


# --- tags ------------------------------------------------------------------------------------


def test_tags_are_trimmed_deduplicated_sorted_and_bounded(db: Database) -> None:
    channel, _ = setup_org(db)
    org_id = channel.org_id
    conversation = opened(db, channel)

    def tags(**change: Any) -> tuple[str, ...]:
        return run(db, change_tags, org_id, conversation.id, now_ms=T0, **change).tags

    assert tags(add=[" vip ", "pricing", "vip"]) == ("pricing", "vip")
    assert tags(add=["vip"], remove=["nothing"]) == ("pricing", "vip")
    assert tags(add=["late"], remove=["pricing", "late"]) == ("vip",)
    for change, field in [
        ({"add": ["  "]}, "add"),
        ({"add": ["x" * 51]}, "add"),
        ({"remove": [""]}, "remove"),
    ]:
        with pytest.raises(Invalid) as refused:
            tags(**change)
        assert refused.value.field == field
    with pytest.raises(Conflict, match="at most 20 tags"):
        tags(add=[f"t{i}" for i in range(MAX_TAGS)])  # 21 with vip
    assert tags() == ("vip",)
    assert len(tags(add=[f"t{i}" for i in range(MAX_TAGS - 1)])) == MAX_TAGS


# --- round robin -----------------------------------------------------------------------------


def test_round_robin_takes_available_agents_in_turn(db: Database) -> None:
    channel, _ = setup_org(db, events=EVENTS)
    org_id = channel.org_id
    with pytest.raises(Invalid) as refused:
        run(db, assign_round_robin, org_id, opened(db, channel, "0").id, by=BY_BOT, clock=clock)
    assert refused.value.field == "strategy"
    ada, bob, cy = (agent(db, org_id, n) for n in ("Ada", "Bob", "Cy"))
    run(db, update_agent, org_id, bob.id, AgentChanges(available=False))

    def next_one(igsid: str) -> str | None:
        conversation = opened(db, channel, igsid)
        done = run(db, assign_round_robin, org_id, conversation.id, by=BY_BOT, clock=clock)
        return done.assignee_id

    assert [next_one(str(i)) for i in range(1, 5)] == [ada.id, cy.id, ada.id, cy.id]
    run(db, update_agent, org_id, bob.id, AgentChanges(available=True))
    assert [next_one(str(i)) for i in range(5, 8)] == [ada.id, bob.id, cy.id]
    assert [d["assignedBy"] for _, d, _ in assigned_events(db) if d] == ["bot"] * 7


def test_round_robin_continues_after_a_restart(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    storage = make_storage(backend, tmp_path, request)
    storage.migrate()
    db = Database(storage, threads=1)
    channel, _ = setup_org(db)
    ada, bob = agent(db, channel.org_id, "Ada"), agent(db, channel.org_id, "Bob")
    first = opened(db, channel, "1")
    run(db, assign_round_robin, channel.org_id, first.id, by=BY_BOT, clock=clock)
    storage.close()

    again = make_storage(backend, tmp_path, request)  # the same database, a new process
    try:
        db = Database(again, threads=1)
        second = opened(db, channel, "2")
        done = run(db, assign_round_robin, channel.org_id, second.id, by=BY_BOT, clock=clock)
        assert done.assignee_id == bob.id
        assert run(db, get_conversation, channel.org_id, first.id).assignee_id == ada.id
    finally:
        again.close()


@pytest.fixture
def workers(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, storage: Storage
) -> Iterator[list[Storage]]:
    """Storages for concurrent workers: PostgreSQL's pool serves them all; SQLite's connection
    is one per worker, as separate processes on one file have."""
    if backend == "postgresql":
        yield [storage] * 6
        return
    extra = [make_storage(backend, tmp_path, request) for _ in range(5)]
    yield [storage, *extra]
    for one in extra:
        one.close()


def test_concurrent_workers_share_one_fair_turn(db: Database, workers: list[Storage]) -> None:
    channel, _ = setup_org(db, events=EVENTS)
    org_id = channel.org_id
    agents = [agent(db, org_id, f"Agent{i}") for i in range(4)]
    per_worker = 10
    conversations = [opened(db, channel, str(i)) for i in range(len(workers) * per_worker)]
    start = threading.Barrier(len(workers))
    failures: list[BaseException] = []
    # The use case reads the clock while it holds the turn, so this one numbers the turns in
    # the order they were taken.
    ticks = itertools.count(T0 + 10_000)

    def work(storage: Storage, mine: list[Conversation]) -> None:
        try:
            start.wait()
            for conversation in mine:
                # Each turn in its own transaction, as a worker's use case runs.
                with storage.transaction() as tx:
                    assign_round_robin(
                        tx, org_id, conversation.id, by=BY_BOT, clock=lambda: next(ticks)
                    )
        except BaseException as exc:  # reported below, with the thread's own traceback
            failures.append(exc)

    threads = [
        threading.Thread(target=work, args=(s, conversations[i :: len(workers)]))
        for i, s in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures

    assigned = [v.assignee_id for v in run(db, list_conversations, org_id, limit=200)]
    counts = Counter(assigned)
    assert None not in counts
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert set(counts) == {a.id for a in agents}
    # No turn handed out twice: in the order turns were taken, the agents strictly rotate.
    with db.storage.transaction() as tx:
        order = [
            orjson.loads(r[0])["assignee"]["id"]
            for r in tx._x(  # type: ignore[attr-defined]
                "SELECT details FROM events WHERE type = 'conversation.assigned' "
                "ORDER BY created_at_ms"
            ).fetchall()
        ]
    assert len(order) == len(conversations)
    ring = sorted(a.id for a in agents)
    for before, after in itertools.pairwise(order):
        assert ring.index(after) == (ring.index(before) + 1) % len(ring), order
