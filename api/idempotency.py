"""`Idempotency-Key` on authenticated POSTs: the first answer is stored and replayed.

The key is claimed in its own short transaction before the handler runs, so a
concurrent retry sees it at once (409 while in progress). The answer is stored
after the handler's transaction committed. While the request runs, a heartbeat
renews the claim, so a long upload is never taken for dead; if the process dies, the
heartbeat stops with it and the claim is taken as abandoned after a few minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.auth.bearer import bearer_caller
from api.auth.keys import KeyRing
from api.auth.principal import Principal, current_principal, get_keyring, oauth2_scheme, verified
from api.deps import EngineDep, SettingsDep
from partners import idempotency
from partners.db import unit_of_work, utcnow

REPLAYED_HEADER = "Idempotent-Replayed"
log = logging.getLogger("partnerloop.idempotency")


class Replay(Exception):
    """Raised by the guard when the answer is already stored; the route returns it."""

    def __init__(self, stored: idempotency.StoredResponse) -> None:
        super().__init__("replay")
        self.stored = stored

    def response(self) -> Response:
        return Response(
            self.stored.body,
            status_code=self.stored.status_code,
            media_type=self.stored.content_type or None,
            headers={REPLAYED_HEADER: "true"},
        )


async def claim_idempotency_key(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    keyring: Annotated[KeyRing, Depends(get_keyring)],
    authorization: Annotated[str | None, Security(oauth2_scheme)],
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Retry safely: the same key and request return the first answer again (kept 24 h).",
        ),
    ] = None,
) -> None:
    """Claim the key for this request, or replay the answer stored for it."""
    if idempotency_key is None:
        return  # the route verifies its caller itself (the exchange without a query of its own)
    caller = await _caller(request, engine, settings, keyring, authorization)
    body = await request.body()
    fingerprint = hashlib.sha256(
        b"\n".join([request.method.encode(), request.url.path.encode(), request.url.query.encode(), body])
    ).hexdigest()
    claim = idempotency.Claim(caller.tenant_id, caller.caller_id, idempotency_key)
    ttl = timedelta(seconds=settings.idempotency_ttl_seconds)

    def claim_now() -> idempotency.StoredResponse | None:
        with unit_of_work(engine) as session:
            return idempotency.claim(session, claim, fingerprint, now=utcnow(), ttl=ttl)

    stored = await run_in_threadpool(claim_now)
    if stored is not None:
        raise Replay(stored)
    request.state.idempotency_claim = claim
    # A task of this request (cancelled when it settles), not state shared between requests.
    request.state.idempotency_heartbeat = asyncio.create_task(heartbeat(engine, claim))


async def heartbeat(engine: Engine, claim: idempotency.Claim, every: float | None = None) -> None:
    """Renew `claim` until cancelled, so a request running past ABANDONED_AFTER keeps its key."""
    interval = every if every is not None else idempotency.HEARTBEAT_EVERY.total_seconds()

    def renew() -> None:
        with unit_of_work(engine) as session:
            idempotency.renew(session, claim, utcnow())

    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(renew)
        except Exception:  # a missed beat is retried at the next; the request goes on
            log.warning("could not renew idempotency key %s", claim.key, exc_info=True)


async def _caller(
    request: Request, engine: EngineDep, settings: SettingsDep, keyring: KeyRing, authorization: str | None
) -> Principal:
    """The caller, fully verified (revocation too) before its key is claimed; 401 otherwise."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known

    def verify() -> Principal:
        with unit_of_work(engine) as session:
            return verified(request, session, settings, keyring, authorization)

    return await run_in_threadpool(verify)


def _uses_principal(dependant: Dependant) -> bool:
    return any(d.call in _PRINCIPALS or _uses_principal(d) for d in dependant.dependencies)


_PRINCIPALS = (current_principal, bearer_caller)


class IdempotentRoute(APIRoute):
    """Every authenticated POST route accepts `Idempotency-Key`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if "POST" in (self.methods or set()) and _uses_principal(self.dependant):
            dependencies: Sequence[Any] = kwargs.pop("dependencies", None) or []
            super().__init__(path, endpoint, dependencies=[*dependencies, Depends(claim_idempotency_key)], **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            response: Response | None = None
            # The request's transaction commits when FastAPI's function-scoped stack closes, after
            # this returns; settle on the outer stack so the answer is stored only once committed.
            stack: AsyncExitStack = request.scope["fastapi_inner_astack"]

            async def settle_on_exit(exc_type: type[BaseException] | None, *_: object) -> bool:
                await _settle(request, response if exc_type is None else None)
                return False

            stack.push_async_exit(settle_on_exit)
            try:
                response = await handler(request)
            except Replay as replay:
                return replay.response()
            return response

        return handle


async def _settle(request: Request, response: Response | None) -> None:
    """Store a finished answer under its key; forget the key when the request failed."""
    claim: idempotency.Claim | None = getattr(request.state, "idempotency_claim", None)
    if claim is None:
        return
    beating: asyncio.Task[None] | None = getattr(request.state, "idempotency_heartbeat", None)
    if beating is not None:
        beating.cancel()
    engine = request.app.state.engine

    def settle() -> None:
        with unit_of_work(engine) as session:
            if response is None or response.status_code >= 500:
                idempotency.release(session, claim)
            else:
                stored = idempotency.StoredResponse(
                    response.status_code, response.headers.get("content-type", ""), bytes(response.body)
                )
                idempotency.complete(session, claim, stored)

    await run_in_threadpool(settle)
