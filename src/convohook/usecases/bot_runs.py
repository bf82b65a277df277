"""Carrying out bots' runs (DESIGN section 7): a run's conditions are read and its actions
done in one transaction, with the run marked finished in the same commit. A crash before the
commit leaves the run pending and nothing of it done; after it, it never runs again. So each
run happens once, and a reply it queues is sent at most once (runtime/workers/sender.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from convohook.domain.bots import (
    Action,
    AddTags,
    Assign,
    Facts,
    MarkDone,
    SendMessage,
    action_type,
    render_text,
    unmet_condition,
)
from convohook.domain.model import ActionOutcome, Bot, BotRun, Conversation
from convohook.domain.replies import MAX_TEXT_BYTES, SENT_BY_BOT, WindowState
from convohook.storage.base import Transaction
from convohook.usecases.assignment import BY_BOT, assign, assign_round_robin
from convohook.usecases.clock import Clock
from convohook.usecases.conversations import get_conversation, mark_done
from convohook.usecases.errors import Conflict, Invalid, NotFound, UseCaseError
from convohook.usecases.replies import queue_reply_to, window_of
from convohook.usecases.tags import change_tags

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
# A run waits for the first attempt of its conversation's webhooks (bots act beside the
# webhook, never before it), but not longer than this after the event: an endpoint that is
# down, or a FIFO webhook stuck behind one, never holds a welcome reply back for long.
WEBHOOK_FIRST_MS = 10_000


@dataclass(slots=True)
class RunReport:
    runs: int = 0
    replies: int = 0  # queued for the sender
    events: int = 0  # assignments and closes, for the dispatcher
    statuses: Counter[str] = field(default_factory=Counter)  # runs by status
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, outcome)
    left: bool = False  # runs still pending (waiting for a profile, a webhook or their turn)


def carry_out_runs(
    tx: Transaction, *, clock: Clock, limit: int, profile_deadline_ms: int = 60_000
) -> RunReport:
    """Up to `limit` runs that can run now (at most one per conversation), oldest first."""
    report = RunReport()
    # A batch's runs are mostly of the same few bots: each is read (and its definition
    # parsed) once per batch.
    bots: dict[str, Bot | None] = {}
    for run in tx.claim_bot_runs(limit, clock(), WEBHOOK_FIRST_MS):
        if run.bot_id not in bots:
            bots[run.bot_id] = tx.get_bot(run.org_id, run.bot_id)
        _carry_out(tx, run, bots[run.bot_id], clock, profile_deadline_ms, report)
        report.runs += 1
    report.left = tx.has_pending_bot_runs()
    return report


def has_pending_runs(tx: Transaction) -> bool:
    return tx.has_pending_bot_runs()


def fail_next_run(tx: Transaction, error: str, now_ms: int) -> None:
    """Set aside the oldest run that can run: it failed alone, again and again (a bug, not a
    refusal), and must not hold its conversation's later runs back."""
    for run in tx.claim_bot_runs(1, now_ms, WEBHOOK_FIRST_MS):
        tx.finish_bot_run(run.id, FAILED, f"internal error: {error}"[:2000], (), now_ms)


def _carry_out(
    tx: Transaction,
    run: BotRun,
    bot: Bot | None,
    clock: Clock,
    profile_deadline_ms: int,
    report: RunReport,
) -> None:
    if bot is None or not bot.enabled:
        _finish(tx, run, SKIPPED, "the bot was disabled before it ran", clock, report)
        return
    try:
        conversation = get_conversation(tx, run.org_id, run.conversation_id)
    except NotFound:
        _finish(tx, run, FAILED, "the conversation no longer exists", clock, report)
        return
    unmet = unmet_condition(bot.conditions, _facts(run, conversation))
    if unmet is not None:
        _finish(tx, run, SKIPPED, unmet, clock, report)
        return
    outcomes = []
    for action in bot.actions:
        # Each action sees what the one before did: the conversation as it left it.
        outcome, conversation = _act(tx, conversation, action, clock, profile_deadline_ms)
        outcomes.append(outcome)
        report.actions[(outcome.type, outcome.status)] += 1
        if outcome.status == DONE:
            if isinstance(action, SendMessage):
                report.replies += 1
            elif not isinstance(action, AddTags):
                report.events += 1
    tx.finish_bot_run(run.id, DONE, None, outcomes, clock())
    report.statuses[DONE] += 1


def _finish(
    tx: Transaction, run: BotRun, status: str, detail: str, clock: Clock, report: RunReport
) -> None:
    tx.finish_bot_run(run.id, status, detail, (), clock())
    report.statuses[status] += 1


def _facts(run: BotRun, conversation: Conversation) -> Facts:
    # The profile as it is now: the run waited for the customer's lookup (claim_bot_runs).
    contact = conversation.contact
    return Facts(
        trigger=run.trigger,
        reason=run.reason,
        channel_id=conversation.channel_id,
        text=run.text,
        referral=run.referral,
        follower_count=contact.follower_count,
        follows_business=contact.is_user_follow_business,
        verified=contact.is_verified_user,
        at_ms=run.happened_at_ms,
    )


def _act(
    tx: Transaction,
    conversation: Conversation,
    action: Action,
    clock: Clock,
    profile_deadline_ms: int,
) -> tuple[ActionOutcome, Conversation]:
    """The action's outcome, and the conversation as it is after it."""
    kind = action_type(action)
    try:
        detail, after = _do(tx, conversation, action, clock, profile_deadline_ms)
    except Skip as skip:
        return ActionOutcome(kind, SKIPPED, skip.reason), conversation
    except Invalid as refused:
        # The rules said no (the reply window, no available agent): nothing was wrong with
        # the bot, the moment did not allow it.
        return ActionOutcome(kind, SKIPPED, refused.problem), conversation
    except (NotFound, Conflict, UseCaseError) as error:
        return ActionOutcome(kind, FAILED, error.message), conversation
    return ActionOutcome(kind, DONE, detail), after


class Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _do(
    tx: Transaction,
    conversation: Conversation,
    action: Action,
    clock: Clock,
    profile_deadline_ms: int,
) -> tuple[str, Conversation]:
    """What the action did, in a few words, and the conversation after it; raises Skip or a
    use case's refusal."""
    org_id, conversation_id = conversation.org_id, conversation.id
    if isinstance(action, SendMessage):
        contact = conversation.contact
        # A customer whose lookup failed is known only by the IGSID, which is no name.
        known = contact.profile_status == "ok"
        text = render_text(
            action.text,
            name=contact.name if known else None,
            username=contact.username if known else None,
            customer_id=contact.customer_id,
        )
        size = len(text.encode())
        if size > MAX_TEXT_BYTES:
            raise Conflict(
                f"the text is {size} bytes once its placeholders are filled in, over "
                f"Instagram's {MAX_TEXT_BYTES}: shorten it"
            )
        window = window_of(tx, conversation.channel_id, contact.id, clock())
        if window.state is not WindowState.OPEN:
            # Said here, after the size (a text too long is the bot's fault, at any moment):
            # queue_reply's refusal would advise setting human_agent, which a bot never may.
            raise Skip(window.reason)
        message = queue_reply_to(
            tx,
            conversation,
            window,
            text=text,
            human_agent=False,  # never: HUMAN_AGENT is for a person's replies
            sent_by=SENT_BY_BOT,
            now_ms=clock(),
        )
        return f"reply {message.id} queued", conversation
    if isinstance(action, Assign):
        before = conversation.assignee_id
        if action.strategy == "round_robin":
            after = assign_round_robin(
                tx,
                org_id,
                conversation_id,
                by=BY_BOT,
                clock=clock,
                profile_deadline_ms=profile_deadline_ms,
            )
        else:
            assert action.agent_id is not None  # parse_actions requires it
            after = assign(
                tx,
                org_id,
                conversation_id,
                action.agent_id,
                by=BY_BOT,
                clock=clock,
                profile_deadline_ms=profile_deadline_ms,
            )
        agent = tx.get_agent(org_id, after.assignee_id) if after.assignee_id else None
        who = f"{agent.name} ({agent.id})" if agent is not None else str(after.assignee_id)
        if before == after.assignee_id:
            raise Skip(f"already assigned to {who}")
        return f"assigned to {who}", after
    if isinstance(action, AddTags):
        new = [tag for tag in action.tags if tag not in conversation.tags]
        if not new:
            raise Skip("the conversation has these tags already")
        after = change_tags(tx, org_id, conversation_id, add=list(action.tags), now_ms=clock())
        return "added " + ", ".join(new), after
    if isinstance(action, MarkDone):
        if conversation.status == "done":
            raise Skip("the conversation is done already")
        after = mark_done(
            tx,
            org_id,
            conversation_id,
            clock=clock,
            profile_deadline_ms=profile_deadline_ms,
            reason="bot",
        )
        return "marked done", after
    raise AssertionError(f"unknown action {action!r}")  # parse_actions knows every type
