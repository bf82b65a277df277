"""The janitor: applies the retention window in small batches, once an hour."""

from __future__ import annotations

import asyncio
import logging

from convohook.runtime.services import Services
from convohook.usecases.retention import clean_once

log = logging.getLogger(__name__)


class Janitor:
    """Applies the retention window: a few bounded batches every `INTERVAL_S`."""

    INTERVAL_S = 3600.0
    FIRST_RUN_S = 60.0

    def __init__(self, services: Services) -> None:
        self.s = services

    async def run_once(self) -> int:
        days = self.s.settings.retention_days
        if days <= 0:
            return 0
        before = self.s.clock() - int(days * 86_400_000)
        removed = 0
        while True:
            cleaned = await self.s.db.relaxed.run_retrying(clean_once, before_ms=before)
            removed += cleaned.total
            if cleaned.total == 0:
                break
            await asyncio.sleep(0)  # let the hot path in between batches
        if removed:
            log.info("retention: removed %d rows older than %g days", removed, days)
        return removed

    async def run(self) -> None:
        await asyncio.sleep(self.FIRST_RUN_S)
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention: cleanup failed, trying again next hour")
            await asyncio.sleep(self.INTERVAL_S)
