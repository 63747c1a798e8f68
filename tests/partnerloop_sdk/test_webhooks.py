"""Webhook verification: deliveries signed by Partnerloop's own signer and by the Standard Webhooks
reference library pass; tampered, stale, unsigned or wrongly keyed ones do not."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from partnerloop_sdk import WebhookVerificationError, WebhookVerifier
from partners.webhook_signing import headers as our_signed_headers
from partners.webhook_signing import new_signing_secret

BODY = json.dumps({"id": "evt_1", "type": "offer.approved", "version": 1, "data": {"offer_id": "off_1"}}).encode()


def test_a_delivery_signed_by_partnerloop_is_accepted_and_parsed() -> None:
    secret = new_signing_secret()
    headers = our_signed_headers([secret], "evt_1", int(time.time()), BODY)
    message = WebhookVerifier(secret).verify(BODY, headers)
    assert message["type"] == "offer.approved" and message["data"] == {"offer_id": "off_1"}


def test_a_delivery_signed_by_the_reference_library_is_accepted() -> None:
    secret = new_signing_secret()
    now = datetime.now(UTC)
    signature = Webhook(secret).sign("evt_1", now, BODY.decode())
    headers = {"Webhook-Id": "evt_1", "Webhook-Timestamp": str(int(now.timestamp())), "Webhook-Signature": signature}
    assert WebhookVerifier(secret).verify(BODY, headers)["id"] == "evt_1"


def test_during_a_rotation_overlap_either_secret_verifies_the_two_signatures() -> None:
    old, new = new_signing_secret(), new_signing_secret()
    headers = our_signed_headers([new, old], "evt_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    WebhookVerifier(old).verify(BODY, headers)
    WebhookVerifier(new).verify(BODY, headers)
    WebhookVerifier([new, old]).verify(BODY, our_signed_headers([old], "evt_1", int(time.time()), BODY))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("body", "no signature matches"),
        ("secret", "no signature matches"),
        ("old", "too old"),
        ("future", "too far in the future"),
        ("unsigned", "missing"),
        ("other_id", "no signature matches"),
    ],
)
def test_a_delivery_that_is_not_genuine_and_fresh_is_refused(change: str, reason: str) -> None:
    secret = new_signing_secret()
    stamp = int(time.time()) + {"old": -301, "future": 301}.get(change, 0)
    headers = our_signed_headers([secret], "evt_1", stamp, BODY)
    body = BODY.replace(b"off_1", b"off_2") if change == "body" else BODY
    if change == "unsigned":
        del headers["webhook-signature"]
    if change == "other_id":
        headers["webhook-id"] = "evt_2"
    verifier = WebhookVerifier(new_signing_secret() if change == "secret" else secret)
    with pytest.raises(WebhookVerificationError, match=reason):
        verifier.verify(body, headers)


def test_the_tolerance_window_is_configurable() -> None:
    secret = new_signing_secret()
    headers = our_signed_headers([secret], "evt_1", int(time.time()) - 600, BODY)
    WebhookVerifier(secret, tolerance_seconds=900).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        WebhookVerifier(secret).verify(BODY, headers)
