"""API clients of the organization: create (secret shown once), list, rotate, revoke."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.principal import ClientsWrite
from api.deps import SessionDep
from api.idempotency import IdempotentRoute
from api.pagination import Page, Paging
from partners import clients, scopes, tokens

router = APIRouter(prefix="/v1", tags=["clients"], route_class=IdempotentRoute)


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=30, description="Scopes the client may request")


class ClientOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class ClientWithSecret(ClientOut):
    client_secret: str = Field(description="Shown once; we keep only a hash.")


def _out(client: clients.ApiClient) -> ClientOut:
    return ClientOut(
        id=client.id,
        name=client.name,
        scopes=sorted(scopes.parse(client.scope)),
        created_at=client.created_at,
        rotated_at=client.rotated_at,
        revoked_at=client.revoked_at,
    )


def _with_secret(issued: clients.IssuedClient) -> ClientWithSecret:
    return ClientWithSecret(**_out(issued.client).model_dump(), client_secret=issued.secret)


@router.get("/clients", summary="The organization's API clients")
def list_clients(caller: ClientsWrite, session: SessionDep, paging: Paging) -> Page[ClientOut]:
    rows, more = clients.list_clients(session, caller.tenant_id, paging.after, paging.limit)
    return paging.page([_out(c) for c in rows], more, rows[-1].id if rows else None)


@router.post("/clients", status_code=201, summary="Create a confidential client (client credentials)")
def create_client(body: ClientIn, caller: ClientsWrite, session: SessionDep) -> ClientWithSecret:
    issued = clients.create_client(session, caller.tenant_id, body.name, body.scopes, caller.scopes, caller.caller_id)
    return _with_secret(issued)


@router.get("/clients/{client_id}", summary="One API client")
def get_client(client_id: str, caller: ClientsWrite, session: SessionDep) -> ClientOut:
    return _out(clients.get_client(session, caller.tenant_id, client_id))


@router.post("/clients/{client_id}/rotate-secret", summary="Issue a new secret; the old one stops working")
def rotate(client_id: str, caller: ClientsWrite, session: SessionDep) -> ClientWithSecret:
    issued = clients.rotate_secret(session, caller.tenant_id, client_id, caller.scopes)
    tokens.revoke_families_of(session, caller.tenant_id, client_id=client_id)
    return _with_secret(issued)


@router.delete("/clients/{client_id}", status_code=204, summary="Revoke a client and every token it holds")
def revoke(client_id: str, caller: ClientsWrite, session: SessionDep) -> Response:
    clients.revoke_client(session, caller.tenant_id, client_id)
    tokens.revoke_families_of(session, caller.tenant_id, client_id=client_id)
    return Response(status_code=204)
