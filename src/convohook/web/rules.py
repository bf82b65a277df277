"""What is checked before a use case runs, shared by the API and the UI (both answer 422 with
the message): the webhook URL against the SSRF guard (it resolves the name) and custom headers."""

from __future__ import annotations

from convohook.delivery.request import check_custom_headers
from convohook.delivery.ssrf import BlockedTarget, InvalidTarget, check_url, is_exempt
from convohook.outbound.resolver import check_target
from convohook.runtime.services import Services
from convohook.web.errors import ApiError


class TargetRefused(ApiError):
    """The SSRF guard refused the URL's address. The message is for an API client, who runs or
    configures convohook (how to allow such targets); `refused` says what was refused, so the
    UI can put it in a browser user's words."""

    def __init__(self, refused: BlockedTarget) -> None:
        super().__init__(422, f"url: {refused}")
        self.refused = refused


async def check_webhook_url(svc: Services, url: str) -> None:
    try:
        check_url(url)
        if not is_exempt(url, svc.exempt_origins):
            await check_target(
                url,
                allow_private=svc.settings.allow_private_targets,
                allowed_networks=svc.settings.allowed_target_networks,
            )
    except BlockedTarget as exc:
        raise TargetRefused(exc) from exc
    except InvalidTarget as exc:
        raise ApiError(422, f"url: {exc}") from exc


def check_headers(headers: dict[str, str] | None) -> None:
    problem = check_custom_headers(headers or {})
    if problem is not None:
        raise ApiError(422, f"headers: {problem}")
