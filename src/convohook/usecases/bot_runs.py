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
from convohook.usecases.replies import queue_reply, window_of
from convohook.usecases.tags import change_tags

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(slots=True)
class RunReport:
    runs: int = 0
    replies: int = 0  # queued for the sender
    events: int = 0  # assignments and closes, for the dispatcher
    statuses: Counter[str] = field(default_factory=Counter)  # runs by status
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, outcome)


def carry_out_runs(
    tx: Transaction, *, clock: Clock, limit: int, profile_deadline_ms: int = 60_000
) -> RunReport:
    """Up to `limit` runs that can run now (at most one per conversation), oldest first."""
    report = RunReport()
    for run in tx.claim_bot_runs(limit):
        _carry_out(tx, run, clock, profile_deadline_ms, report)
        report.runs += 1
    return report


def has_pending_runs(tx: Transaction) -> bool:
    return tx.has_pending_bot_runs()


def fail_next_run(tx: Transaction, error: str, now_ms: int) -> None:
    """Set aside the oldest run that can run: it failed alone, again and again (a bug, not a
    refusal), and must not hold its conversation's later runs back."""
    for run in tx.claim_bot_runs(1):
        tx.finish_bot_run(run.id, FAILED, f"internal error: {error}"[:2000], (), now_ms)


def _carry_out(
    tx: Transaction, run: BotRun, clock: Clock, profile_deadline_ms: int, report: RunReport
) -> None:
    bot = tx.get_bot(run.org_id, run.bot_id)
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
        outcome = _act(tx, bot, run, action, clock, profile_deadline_ms)
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
    bot: Bot,
    run: BotRun,
    action: Action,
    clock: Clock,
    profile_deadline_ms: int,
) -> ActionOutcome:
    kind = action_type(action)
    try:
        detail = _do(tx, bot, run, action, clock, profile_deadline_ms)
    except Skip as skip:
        return ActionOutcome(kind, SKIPPED, skip.reason)
    except Invalid as refused:
        # The rules said no (the reply window, no available agent): nothing was wrong with
        # the bot, the moment did not allow it.
        return ActionOutcome(kind, SKIPPED, refused.problem)
    except (NotFound, Conflict, UseCaseError) as error:
        return ActionOutcome(kind, FAILED, error.message)
    return ActionOutcome(kind, DONE, detail)


class Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _do(
    tx: Transaction,
    bot: Bot,
    run: BotRun,
    action: Action,
    clock: Clock,
    profile_deadline_ms: int,
) -> str:
    """What the action did, in a few words; raises Skip or a use case's refusal."""
    org_id, conversation_id = run.org_id, run.conversation_id
    if isinstance(action, SendMessage):
        conversation = get_conversation(tx, org_id, conversation_id)
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
        message = queue_reply(
            tx,
            org_id,
            conversation_id,
            text=text,
            human_agent=False,  # never: HUMAN_AGENT is for a person's replies
            sent_by=SENT_BY_BOT,
            now_ms=clock(),
        )
        return f"reply {message.id} queued"
    if isinstance(action, Assign):
        before = get_conversation(tx, org_id, conversation_id).assignee_id
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
        return f"assigned to {who}"
    if isinstance(action, AddTags):
        current = get_conversation(tx, org_id, conversation_id).tags
        new = [tag for tag in action.tags if tag not in current]
        if not new:
            raise Skip("the conversation has these tags already")
        change_tags(tx, org_id, conversation_id, add=list(action.tags), now_ms=clock())
        return "added " + ", ".join(new)
    if isinstance(action, MarkDone):
        if get_conversation(tx, org_id, conversation_id).status == "done":
            raise Skip("the conversation is done already")
        mark_done(
            tx,
            org_id,
            conversation_id,
            clock=clock,
            profile_deadline_ms=profile_deadline_ms,
            reason="bot",
        )
        return "marked done"
    raise AssertionError(f"unknown action {action!r}")  # parse_actions knows every type
