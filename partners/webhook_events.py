"""The webhook event catalogue, subscription patterns, and the (thin, versioned) message body.

A subscription names an event type exactly (`offer.approved`) or a family (`offer.*`). A body is
`{"id", "type", "version", "timestamp", "source_tenant_id", "data"}`; `data` holds ids and what
changed, never customer details. `version` changes only when a type's data changes incompatibly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from partners.errors import Invalid

PAYLOAD_VERSION = 1
# Types whose data changed shape incompatibly; an event keeps the version it was written with.
PAYLOAD_VERSIONS: dict[str, int] = {"consent.withdrawn": 2, "erasure.requested": 2}

EVENT_TYPES: dict[str, str] = {
    "partnership.proposed": "A retailer proposed a partnership with you (or you with it).",
    "partnership.accepted": "A partnership was accepted and is active.",
    "partnership.countered": "The other side answered a proposal with other terms.",
    "partnership.declined": "A proposal was declined.",
    "partnership.terms_proposed": "New terms were proposed for an active partnership.",
    "partnership.paused": "A partnership was paused.",
    "partnership.resumed": "A paused partnership was resumed.",
    "partnership.ended": "A partnership ended.",
    "offer.submitted": "A partner submitted an offer (or a new version) for you to approve.",
    "offer.updated": "A partner changed an offer you host.",
    "offer.approved": "Your offer was approved by the hosting partner.",
    "offer.rejected": "Your offer was rejected by the hosting partner.",
    "offer.paused": "A partner paused an offer you host.",
    "offer.resumed": "A partner resumed an offer you host.",
    "offer.archived": "A partner archived an offer you host.",
    "redemption.recorded": "A redemption of an offer was recorded.",
    "redemption.reversed": "A recorded redemption was reversed (refund, cancellation).",
    "consent.withdrawn": "A customer you received data about withdrew consent.",
    "erasure.requested": "A customer you received data about asked to be erased.",
    "survey.answered": "One of your customers answered one of your surveys.",
    "webhook_endpoint.disabled": "One of your webhook endpoints was disabled (gone, or failing for days).",
}
FAMILIES = frozenset(name.split(".", 1)[0] for name in EVENT_TYPES)
MAX_SUBSCRIPTIONS = 50


def normalize_subscriptions(patterns: Sequence[str]) -> list[str]:
    """Known types and `family.*` patterns, deduplicated and sorted; Invalid names the first bad one."""
    if not patterns:
        raise Invalid("Subscribe to at least one event type.", param="events")
    if len(patterns) > MAX_SUBSCRIPTIONS:
        raise Invalid(f"At most {MAX_SUBSCRIPTIONS} event patterns.", param="events")
    for index, pattern in enumerate(patterns):
        family, _, rest = pattern.partition(".")
        if pattern not in EVENT_TYPES and not (rest == "*" and family in FAMILIES):
            raise Invalid(
                f"Unknown event type '{pattern}'; use one of the documented types or a family such as 'offer.*'.",
                param=f"events[{index}]",
            )
    return sorted(set(patterns))


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether a subscription covers an event type (exactly, or by its `family.*`)."""
    return any(
        pattern == event_type or (pattern.endswith(".*") and event_type.startswith(pattern[:-1]))
        for pattern in patterns
    )


def payload_version(event_type: str) -> int:
    """The version of the data shape events of this type are written with now."""
    return PAYLOAD_VERSIONS.get(event_type, PAYLOAD_VERSION)


def render_body(
    event_id: str,
    event_type: str,
    created_at: datetime,
    source_tenant_id: str,
    recipient_tenant_id: str,
    payload: Mapping[str, Any],
    version: int = PAYLOAD_VERSION,
) -> bytes:
    """The exact bytes sent (and signed) for an event; the same for every attempt and replay."""
    data = {key: value for key, value in payload.items() if not (key == "partner_id" and value == recipient_tenant_id)}
    message = {
        "id": event_id,
        "type": event_type,
        "version": version,
        "timestamp": created_at.isoformat(),
        "source_tenant_id": source_tenant_id,
        "data": data,
    }
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
