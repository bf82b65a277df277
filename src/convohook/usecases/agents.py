"""Agents: an org's users as the people conversations are assigned to (DESIGN section 7). An
agent signs in to the UI only if given a password; `available` decides only whom round robin
picks, a person may assign any agent of the org."""

from __future__ import annotations

import re
from dataclasses import dataclass

from convohook.domain.ids import new_id
from convohook.domain.model import User
from convohook.domain.text import NUL_MESSAGE, has_nul, trimmed
from convohook.storage.base import Transaction
from convohook.usecases.errors import Conflict, Invalid, NotFound

NAME_MAX_LENGTH = 100
EMAIL_MAX_LENGTH = 254  # RFC 5321's longest path
# One @, something on each side, a dot in the domain, no spaces: what a person can mistype,
# not RFC 5322 (an address is proven only by mail reaching it, which convohook never sends).
EMAIL_PATTERN = r"^[^@\x00 \t\n\r\f\v]+@[^@\x00 \t\n\r\f\v]+\.[^@\x00 \t\n\r\f\v]+$"


@dataclass(frozen=True, slots=True)
class NewAgent:
    name: str
    email: str
    available: bool = True
    password_hash: str = ""  # '' : never signs in to the UI


@dataclass(frozen=True, slots=True)
class AgentChanges:
    """None leaves a field as it is."""

    name: str | None = None
    available: bool | None = None


def clean_name(name: str) -> str:
    cleaned = trimmed(name)
    if not cleaned:
        raise Invalid("name", "required: the agent's name as colleagues know it")
    if len(cleaned) > NAME_MAX_LENGTH:
        raise Invalid("name", f"at most {NAME_MAX_LENGTH} characters")
    if has_nul(cleaned):
        raise Invalid("name", NUL_MESSAGE)
    return cleaned


def clean_email(email: str) -> str:
    cleaned = trimmed(email)
    if len(cleaned) > EMAIL_MAX_LENGTH:
        raise Invalid("email", f"at most {EMAIL_MAX_LENGTH} characters")
    if not re.fullmatch(EMAIL_PATTERN, cleaned):
        raise Invalid("email", f"{email[:100]!r} is not an email address (name@example.com)")
    return cleaned.lower()


def create_agent(tx: Transaction, org_id: str, new: NewAgent, now_ms: int) -> User:
    email = clean_email(new.email)
    agent = User(
        id=new_id("usr", now_ms),
        org_id=org_id,
        email=email,
        password_hash=new.password_hash,
        created_at_ms=now_ms,
        name=clean_name(new.name),
        available=new.available,
    )
    # Emails are unique across orgs: one signs in with an email alone.
    if tx.user_by_email(email) is not None:
        raise Conflict(f"email: {email} is already in use: each agent has an email of their own")
    tx.insert_user(agent)
    return agent


def update_agent(tx: Transaction, org_id: str, agent_id: str, changes: AgentChanges) -> User:
    name = None if changes.name is None else clean_name(changes.name)
    changed = tx.update_agent(org_id, agent_id, name=name, available=changes.available)
    if changed is None:
        raise NotFound("agent", agent_id)
    return changed


def get_agent(tx: Transaction, org_id: str, agent_id: str) -> User:
    agent = tx.get_agent(org_id, agent_id)
    if agent is None:
        raise NotFound("agent", agent_id)
    return agent


def list_agents(tx: Transaction, org_id: str, cursor: str | None, limit: int) -> list[User]:
    """Newest first."""
    return tx.list_agents(org_id, cursor, limit)
