"""What the exchange left about one of a host's customers, on both sides of each partnership.

The host holds its answers and the offers it showed (`exchange_answers`, `impressions`, naming the
customer); each offering partner holds the same impressions without the customer
(`received_impressions`), the single-use codes reserved for it (`offer_codes.reserved_for`, a
pseudonym) and the redemptions credited to those impressions. Export reads all of it; erasure
unlinks it; withdrawal and erasure tell each partner only the references that partner holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Table, update
from sqlmodel import Session, col, select

from partners import live_offers, outbox, webhook_events
from partners.codes import OfferCode
from partners.deliveries import WebhookDelivery
from partners.impressions import ExchangeAnswer, Impression
from partners.redemptions import Redemption
from partners.survey_answers import SURVEY_ANSWERED

_CHUNK = 500
# Event types whose data named the host's internal customer id before payload version 2.
_CUSTOMER_EVENTS = (outbox.CONSENT_WITHDRAWN, outbox.ERASURE_REQUESTED)
# Events to the tenant itself about its own customer, and the fields that name the customer.
_OWN_CUSTOMER_EVENTS = (SURVEY_ANSWERED,)
_OWN_CUSTOMER_FIELDS = ("customer_id", "customer_external_id")


@dataclass(frozen=True)
class Traces:
    """The offers shown to one customer and what the offering partners hold because of them."""

    impressions: Sequence[Impression]
    codes: Sequence[OfferCode]
    redemptions: Sequence[Redemption]


@dataclass(frozen=True)
class PartnerReferences:
    """What one partner holds about the customer, in the partner's own terms."""

    impression_ids: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    redemption_ids: list[str] = field(default_factory=list)

    def as_payload(self) -> dict[str, list[str]]:
        return {"impression_ids": self.impression_ids, "codes": self.codes, "redemption_ids": self.redemption_ids}


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def collect(session: Session, host_tenant_id: str, customer_id: str) -> Traces:
    """The host's impressions of the customer, and the codes and redemptions they led to at each partner."""
    shown = session.exec(
        select(Impression)
        .where(col(Impression.tenant_id) == host_tenant_id, col(Impression.customer_id) == customer_id)
        .order_by(col(Impression.created_at), col(Impression.id))
    ).all()
    by_partner: dict[str, list[Impression]] = {}
    for row in shown:
        by_partner.setdefault(row.offering_tenant_id, []).append(row)
    held: list[OfferCode] = []
    credited: list[Redemption] = []
    for partner_id, rows in sorted(by_partner.items()):
        # A pool code is unique within its tenant, and only ever reserved for the one customer shown it.
        shown_codes = sorted({row.code for row in rows if row.code is not None})
        for chunk in _chunks(shown_codes):
            held.extend(
                session.exec(
                    select(OfferCode).where(
                        col(OfferCode.tenant_id) == partner_id,
                        col(OfferCode.code).in_(chunk),
                        col(OfferCode.reserved_for).is_not(None),
                    )
                ).all()
            )
        for chunk in _chunks(sorted(row.id for row in rows)):
            credited.extend(
                session.exec(
                    select(Redemption).where(
                        col(Redemption.tenant_id) == partner_id, col(Redemption.impression_id).in_(chunk)
                    )
                ).all()
            )
    held.sort(key=lambda c: (c.tenant_id, c.reserved_at is None, c.reserved_at, c.code))
    credited.sort(key=lambda r: (r.redeemed_at, r.id))
    return Traces(shown, held, credited)


def answers_about(session: Session, host_tenant_id: str, customer_id: str) -> Sequence[ExchangeAnswer]:
    """Every exchange answer the host asked about the customer, oldest first."""
    query = select(ExchangeAnswer).where(
        col(ExchangeAnswer.tenant_id) == host_tenant_id, col(ExchangeAnswer.customer_id) == customer_id
    )
    return session.exec(query.order_by(col(ExchangeAnswer.created_at), col(ExchangeAnswer.id))).all()


def references(traces: Traces, partner_id: str) -> PartnerReferences:
    """What `partner_id` holds about the customer: its impressions, its single-use codes, its redemptions."""
    return PartnerReferences(
        impression_ids=sorted(row.id for row in traces.impressions if row.offering_tenant_id == partner_id),
        codes=sorted(row.code for row in traces.codes if row.tenant_id == partner_id),
        redemption_ids=sorted(row.id for row in traces.redemptions if row.tenant_id == partner_id),
    )


def unlink(session: Session, host_tenant_id: str, customer_id: str, traces: Traces) -> None:
    """Take the customer out of every row that must stay for the partners' reports and ledgers.

    Impressions and answers lose their customer (they still count as shown); codes lose the
    pseudonym, and those not yet redeemed go back to the pool. Redemptions keep their amounts: once
    the impression has no customer, nothing leads from them to the person.
    """
    for model in (Impression, ExchangeAnswer):
        table: Table = model.__table__  # type: ignore[union-attr]
        session.execute(
            update(table)
            .where(table.c.tenant_id == host_tenant_id, table.c.customer_id == customer_id)
            .values(customer_id=None)
        )
    codes: Table = OfferCode.__table__  # type: ignore[attr-defined]
    released: set[tuple[str, str]] = set()
    for code in traces.codes:
        values: dict[str, None] = {"reserved_for": None}
        if code.redeemed_at is None:
            values["reserved_at"] = None
            released.add((code.tenant_id, code.offer_id))
        session.execute(
            update(codes).where(codes.c.tenant_id == code.tenant_id, codes.c.id == code.id).values(**values)
        )
    for tenant_id, offer_id in sorted(released):
        # A pool that had run dry can serve again.
        live_offers.refresh_offer(session, tenant_id, offer_id)
    session.flush()


def rewrite_earlier_events(session: Session, host_tenant_id: str, customer_id: str, traces: Traces) -> int:
    """Events written before payload version 2 named the customer's internal id: give them the
    current shape (the recipient's own references instead), in the outbox and in the bodies of their
    deliveries. Returns how many events were rewritten."""
    events = _naming(session, host_tenant_id, _CUSTOMER_EVENTS, customer_id)
    for event in events:
        payload = {key: value for key, value in event.payload.items() if key != "customer_id"}
        event.payload = payload | references(traces, event.recipient).as_payload()
        event.payload_version = webhook_events.payload_version(event.type)
        _store(session, event)
    session.flush()
    return len(events)


def blank_own_events(session: Session, tenant_id: str, customer_id: str) -> int:
    """Events to the tenant itself that name the customer keep their shape with the customer's
    fields null, in the outbox and in their deliveries' bodies (erasure). Returns how many."""
    events = _naming(session, tenant_id, _OWN_CUSTOMER_EVENTS, customer_id)
    for event in events:
        event.payload = event.payload | dict.fromkeys(_OWN_CUSTOMER_FIELDS)
        _store(session, event)
    session.flush()
    return len(events)


def _naming(session: Session, tenant_id: str, types: Sequence[str], customer_id: str) -> Sequence[outbox.OutboxEvent]:
    """The tenant's events of these types whose data holds `customer_id`."""
    query = select(outbox.OutboxEvent).where(
        col(outbox.OutboxEvent.tenant_id) == tenant_id,
        col(outbox.OutboxEvent.type).in_(types),
        col(outbox.OutboxEvent.payload)["customer_id"].as_string() == customer_id,
    )
    return session.exec(query).all()


def _store(session: Session, event: outbox.OutboxEvent) -> None:
    """Save a changed event, and the body its deliveries send (or logged), rendered again."""
    session.add(event)
    body = webhook_events.render_body(
        event.id, event.type, event.created_at, event.tenant_id, event.recipient, event.payload, event.payload_version
    )
    deliveries: Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    session.execute(
        update(deliveries)
        .where(deliveries.c.tenant_id == event.recipient, deliveries.c.event_id == event.id)
        .values(body=body.decode())
    )
