from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import respx
from sqlalchemy import Engine
from standardwebhooks import Webhook, WebhookVerificationError

from partners import webhook_signing as signing
from partners import worker
from partners.retailers import Tenant
from partners.settings import Settings
from partners.webhooks import IssuedEndpoint
from tests.factories_webhooks import PARTNER_URL, fake_resolver

BODY = b'{"data":{"offer_id":"off_1"},"id":"evt_1","type":"offer.approved"}'


def test_a_secret_is_whsec_and_32_random_bytes_in_base64() -> None:
    secret = signing.new_signing_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert signing.new_signing_secret() != secret


@pytest.mark.parametrize("bad", ["abc", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()])
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        signing.secret_key(bad)


def test_the_reference_library_verifies_our_signature() -> None:
    secret = signing.new_signing_secret()
    headers = signing.headers([secret], "evt_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_our_signature_is_the_reference_librarys_byte_for_byte() -> None:
    secret = signing.new_signing_secret()
    stamp = 1_700_000_000
    ours = signing.sign(secret, "msg_2", stamp, BODY)
    theirs = Webhook(secret).sign("msg_2", datetime.fromtimestamp(stamp, UTC), BODY.decode())
    assert ours == theirs


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    old, new = signing.new_signing_secret(), signing.new_signing_secret()
    headers = signing.headers([new, old], "evt_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(BODY, headers)
        signing.verify(secret, headers, BODY, now=int(time.time()))


def test_a_changed_body_a_wrong_secret_or_an_old_message_fail() -> None:
    secret = signing.new_signing_secret()
    now = int(time.time())
    headers = signing.headers([secret], "evt_1", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(signing.InvalidSignature, match="no signature"):
        signing.verify(secret, headers, BODY + b" ", now=now)
    with pytest.raises(signing.InvalidSignature, match="no signature"):
        signing.verify(signing.new_signing_secret(), headers, BODY, now=now)
    with pytest.raises(signing.InvalidSignature, match="tolerance"):
        signing.verify(secret, headers, BODY, now=now + 301)
    with pytest.raises(signing.InvalidSignature, match="missing"):
        signing.verify(secret, {"webhook-id": "evt_1"}, BODY, now=now)


def test_a_delivered_message_verifies_with_the_reference_library(
    engine: Engine,
    worker_settings: Settings,
    make_tenant: Callable[..., Tenant],
    make_endpoint: Callable[..., IssuedEndpoint],
    make_event: Callable[..., object],
) -> None:
    shop = make_tenant()
    issued = make_endpoint(shop)
    make_event(shop, "offer.approved", version=2)
    with respx.mock(assert_all_called=True) as partner:
        route = partner.post(PARTNER_URL).mock(return_value=httpx.Response(204))
        worker.deliver_due(engine, worker_settings, resolver=fake_resolver())
    request = route.calls.last.request
    message = Webhook(issued.secret).verify(request.content, dict(request.headers))
    assert message["type"] == "offer.approved"
    assert message["data"] == {"offer_id": "off_x", "version": 2}
    assert request.headers["webhook-id"] == message["id"]
    assert request.headers["content-type"] == "application/json"
