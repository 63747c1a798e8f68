"""The consent ledger on the database: checks on input, idempotency, races, and a property test
that the stored state is always the fold of the stored events and never counts the wrong people."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import event as note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session

from partners import consent, consent_ledger, disclosures, outbox, privacy
from partners.consent import ConsentInput
from partners.consent_ledger import as_key_states, count_consenting, current_state, facts, has_consent
from partners.consent_rules import ALL_PARTNERS, Action, Method, Purpose, Source, Status, fold
from partners.customers import Customer
from partners.errors import Conflict, Invalid, NotFound
from partners.notices import ConsentNotice
from partners.partnerships import is_active_partner
from partners.retailers import Tenant
from partners.settings import Settings

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
OFFERS = Purpose.partner_offers


def grant(
    event_id: str,
    notice: ConsentNotice,
    partner: str,
    at: datetime = T0,
    purposes: tuple[Purpose, ...] = (OFFERS,),
    doi: bool = False,
) -> ConsentInput:
    return ConsentInput(
        event_id=event_id,
        action=Action.granted,
        method=Method.double_opt_in if doi else Method.checkbox,
        source=Source.checkout,
        occurred_at=at,
        purposes=purposes,
        partner=partner,
        notice_id=notice.id,
    )


def withdrawal(
    event_id: str, partner: str, at: datetime = T0, purposes: tuple[Purpose, ...] = (OFFERS,)
) -> ConsentInput:
    return ConsentInput(
        event_id=event_id,
        action=Action.withdrawn,
        method=Method.preference_link,
        source=Source.account_page,
        occurred_at=at,
        purposes=purposes,
        partner=partner,
    )


def confirmation(event_id: str, confirms: str, at: datetime = T0) -> ConsentInput:
    return ConsentInput(
        event_id=event_id,
        action=Action.confirmed,
        method=Method.email_confirmation,
        source=Source.email,
        occurred_at=at,
        confirms=confirms,
    )


@dataclass
class Shop:
    tenant: Tenant
    partner: Tenant
    other_partner: Tenant
    notice: ConsentNotice
    customer: Customer


@pytest.fixture
def shop(
    make_tenant: Callable[..., Tenant],
    make_partner: Callable[..., Tenant],
    make_notice: Callable[..., ConsentNotice],
    make_customer: Callable[..., Customer],
) -> Shop:
    tenant = make_tenant()
    partner, other = make_partner(tenant), make_partner(tenant)
    return Shop(tenant, partner, other, make_notice(tenant), make_customer(tenant, "cust-1"))


def record(session: Session, shop: Shop, event: ConsentInput, external_id: str = "cust-1") -> consent.Recorded:
    recorded = consent.record_event(session, shop.tenant.id, external_id, event, is_active_partner=is_active_partner)
    session.commit()
    return recorded


def consents(session: Session, shop: Shop, partner: Tenant, purpose: Purpose = OFFERS) -> bool:
    return has_consent(
        session, shop.tenant.id, shop.customer.id, purpose, partner.id, is_active_partner=is_active_partner
    )


def test_default_is_no_consent(session: Session, shop: Shop) -> None:
    assert not consents(session, shop, shop.partner)
    assert count_consenting(session, shop.tenant.id, OFFERS, shop.partner.id, is_active_partner=is_active_partner) == 0


def test_a_grant_covers_that_partner_and_no_other(session: Session, shop: Shop) -> None:
    record(session, shop, grant("g1", shop.notice, shop.partner.id))
    assert consents(session, shop, shop.partner)
    assert not consents(session, shop, shop.other_partner)
    assert not consents(session, shop, shop.partner, Purpose.overlap_analysis)


def test_double_opt_in_counts_only_once_confirmed(session: Session, shop: Shop) -> None:
    record(session, shop, grant("g1", shop.notice, ALL_PARTNERS, doi=True))
    assert not consents(session, shop, shop.partner)
    assert [s.status for s in current_state(session, shop.tenant.id, shop.customer.id)] == ["pending"]
    record(session, shop, confirmation("c1", "g1", T0 + timedelta(minutes=3)))
    assert consents(session, shop, shop.partner)
    assert consents(session, shop, shop.other_partner)


def test_unknown_customer_is_a_clear_not_found(session: Session, shop: Shop) -> None:
    with pytest.raises(NotFound) as info:
        record(session, shop, grant("g1", shop.notice, shop.partner.id), external_id="nobody")
    assert info.value.param == "external_id"
    assert "nobody" in info.value.detail


def test_consent_for_a_retailer_that_is_not_an_active_partner_is_refused(
    session: Session, shop: Shop, make_tenant: Callable[..., Tenant], make_partner: Callable[..., Tenant]
) -> None:
    stranger, proposed_only = make_tenant(), make_partner(shop.tenant, active=False)
    for partner_id in (stranger.id, proposed_only.id, shop.tenant.id, "ten_bogus"):
        with pytest.raises(Invalid) as info:
            record(session, shop, grant(f"g-{partner_id}", shop.notice, partner_id))
        assert info.value.param == "partner"
    assert current_state(session, shop.tenant.id, shop.customer.id) == []


def test_a_withdrawal_for_a_former_partner_is_accepted(session: Session, shop: Shop) -> None:
    recorded = record(session, shop, withdrawal("w1", "ten_01m8000000000000000000000a"))
    assert not recorded.replayed
    assert [s.status for s in current_state(session, shop.tenant.id, shop.customer.id)] == ["withdrawn"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"occurred_at": datetime(2100, 1, 1, tzinfo=UTC)}, "occurred_at"),
        ({"occurred_at": datetime(1970, 1, 1, tzinfo=UTC)}, "occurred_at"),
        ({"occurred_at": datetime(2023, 1, 1, tzinfo=UTC)}, "occurred_at"),  # before the notice
        ({"notice_id": None}, "notice_id"),
        ({"purposes": ()}, "purposes"),
        ({"purposes": (OFFERS, OFFERS)}, "purposes"),
        ({"event_id": "has space"}, "event_id"),
        ({"method": Method.preference_link}, "method"),
        ({"confirms": "g0"}, "confirms"),
        ({"purposes": (Purpose.partner_contact_sharing,), "partner": ALL_PARTNERS}, "partner"),
    ],
)
def test_bad_grants_are_refused_naming_the_field(
    session: Session, shop: Shop, change: dict[str, Any], param: str
) -> None:
    base = grant("g1", shop.notice, shop.partner.id)
    event = ConsentInput(**{**base.__dict__, **change})
    with pytest.raises(Invalid) as info:
        record(session, shop, event)
    assert info.value.param == param


def test_clock_skew_of_a_few_minutes_is_tolerated_and_more_is_refused(session: Session, shop: Shop) -> None:
    now = datetime.now(UTC)
    record(session, shop, grant("soon", shop.notice, shop.partner.id, at=now + timedelta(minutes=2)))
    with pytest.raises(Invalid) as info:
        record(session, shop, grant("later", shop.notice, shop.partner.id, at=now + timedelta(minutes=10)))
    assert info.value.param == "occurred_at"


def test_a_grant_must_cite_a_notice_that_covers_it(
    session: Session, shop: Shop, make_notice: Callable[..., ConsentNotice], make_tenant: Callable[..., Tenant]
) -> None:
    overlap_only = make_notice(shop.tenant, purposes=(Purpose.overlap_analysis,), key="overlap")
    named = make_notice(shop.tenant, partners=(shop.other_partner.id,), key="named")
    foreign = make_notice(make_tenant())
    for notice, error in ((overlap_only, Invalid), (named, Invalid), (foreign, NotFound)):
        with pytest.raises(error) as info:
            record(session, shop, grant(f"g-{notice.id}", notice, shop.partner.id))
        assert info.value.param == "notice_id"


def test_contact_sharing_needs_a_notice_naming_the_partner(
    session: Session, shop: Shop, make_notice: Callable[..., ConsentNotice]
) -> None:
    sharing = (Purpose.partner_contact_sharing,)
    with pytest.raises(Invalid):
        record(session, shop, grant("g1", shop.notice, shop.partner.id, purposes=sharing))
    named = make_notice(shop.tenant, partners=(shop.partner.id,), key="sharing")
    record(session, shop, grant("g2", named, shop.partner.id, purposes=sharing))
    assert consents(session, shop, shop.partner, Purpose.partner_contact_sharing)


def test_the_same_event_id_again_is_a_no_op(session: Session, shop: Shop) -> None:
    first = record(
        session, shop, grant("g1", shop.notice, shop.partner.id, purposes=(OFFERS, Purpose.overlap_analysis))
    )
    again = record(
        session, shop, grant("g1", shop.notice, shop.partner.id, purposes=(Purpose.overlap_analysis, OFFERS))
    )
    assert again.replayed and not first.replayed
    assert {e.id for e in again.events} == {e.id for e in first.events}
    assert len(consent_ledger.all_events(session, shop.tenant.id, shop.customer.id)) == 2


def test_the_same_event_id_with_other_contents_is_a_conflict(
    session: Session, shop: Shop, make_customer: Callable[..., Customer]
) -> None:
    record(session, shop, grant("g1", shop.notice, shop.partner.id))
    make_customer(shop.tenant, "cust-2")
    for event, external_id in (
        (grant("g1", shop.notice, shop.other_partner.id), "cust-1"),
        (grant("g1", shop.notice, shop.partner.id, at=T0 + timedelta(seconds=1)), "cust-1"),
        (grant("g1", shop.notice, shop.partner.id), "cust-2"),
        (withdrawal("g1", shop.partner.id), "cust-1"),
    ):
        with pytest.raises(Conflict) as info:
            record(session, shop, event, external_id)
        assert info.value.param == "event_id"


def test_confirmations_are_checked(session: Session, shop: Shop, make_customer: Callable[..., Customer]) -> None:
    record(session, shop, grant("plain", shop.notice, shop.partner.id))
    record(session, shop, grant("doi", shop.notice, shop.partner.id, at=T0 + timedelta(minutes=5), doi=True))
    make_customer(shop.tenant, "cust-2")
    cases: list[tuple[ConsentInput, str, type[Exception]]] = [
        (confirmation("c1", "missing", T0 + timedelta(minutes=9)), "cust-1", NotFound),
        (confirmation("c2", "doi", T0 + timedelta(minutes=9)), "cust-2", NotFound),
        (confirmation("c3", "plain", T0 + timedelta(minutes=9)), "cust-1", Invalid),
        (confirmation("c4", "doi", T0 + timedelta(minutes=4)), "cust-1", Invalid),
    ]
    for event, external_id, error in cases:
        with pytest.raises(error):
            record(session, shop, event, external_id)


def test_a_withdrawal_racing_a_grant_at_the_same_time_is_decided_by_arrival(
    session: Session, shop: Shop, make_customer: Callable[..., Customer]
) -> None:
    make_customer(shop.tenant, "cust-2")
    partner = shop.partner.id
    record(session, shop, grant("a-g", shop.notice, partner), "cust-1")
    record(session, shop, withdrawal("a-w", partner), "cust-1")
    record(session, shop, withdrawal("b-w", partner), "cust-2")
    recorded = record(session, shop, grant("b-g", shop.notice, partner), "cust-2")
    assert not consents(session, shop, shop.partner)  # cust-1: the withdrawal arrived second
    second = current_state(session, shop.tenant.id, recorded.customer.id)
    assert [s.status for s in second] == [Status.granted]


def test_a_withdrawal_racing_a_grant_is_decided_by_time_not_arrival(session: Session, shop: Shop) -> None:
    record(session, shop, withdrawal("w", shop.partner.id, at=T0 + timedelta(seconds=1)))
    record(session, shop, grant("g", shop.notice, shop.partner.id, at=T0))  # arrives later, happened earlier
    assert not consents(session, shop, shop.partner)


def test_concurrent_grant_and_withdrawal_leave_the_fold_of_what_was_stored(
    engine: Engine, session: Session, shop: Shop, settings: Settings
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers by failing them; the race is meaningful on PostgreSQL")
    for round_no in range(8):
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(
            event: ConsentInput, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors
        ) -> None:
            try:
                with Session(engine, expire_on_commit=False) as own:
                    barrier.wait()
                    consent.record_event(own, shop.tenant.id, "cust-1", event, is_active_partner=is_active_partner)
                    own.commit()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        at = T0 + timedelta(minutes=round_no)
        threads = [
            threading.Thread(target=run, args=(grant(f"g{round_no}", shop.notice, shop.partner.id, at=at),)),
            threading.Thread(target=run, args=(withdrawal(f"w{round_no}", shop.partner.id, at=at),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        session.expire_all()
        events = consent_ledger.all_events(session, shop.tenant.id, shop.customer.id)
        stored = as_key_states(current_state(session, shop.tenant.id, shop.customer.id))
        assert stored == fold(facts(e) for e in events)
        last = max((e for e in events if e.occurred_at == at), key=lambda e: e.seq)
        assert stored[(OFFERS, shop.partner.id)].decided_by == last.id
        assert len({e.seq for e in events}) == len(events)


def test_withdrawal_tells_partners_that_received_something_in_the_same_transaction(
    session: Session, shop: Shop, make_partner: Callable[..., Tenant]
) -> None:
    bystander = make_partner(shop.tenant)
    record(session, shop, grant("g1", shop.notice, ALL_PARTNERS))
    for partner in (shop.partner, shop.other_partner):
        disclosures.record_disclosure(session, shop.tenant.id, shop.customer.id, partner.id)
    session.commit()

    consent.withdraw(session, shop.tenant.id, "cust-1", method=Method.customer_service, source=Source.customer_service)
    session.rollback()  # the withdrawal and its events share one transaction
    assert outbox.pending(session, shop.tenant.id, outbox.CONSENT_WITHDRAWN) == []

    consent.withdraw(session, shop.tenant.id, "cust-1", method=Method.toggle, source=Source.account_page)
    session.commit()
    assert not consents(session, shop, shop.partner)
    events = outbox.pending(session, shop.tenant.id, outbox.CONSENT_WITHDRAWN)
    told = sorted(e.payload["partner_id"] for e in events)
    assert told == sorted([shop.partner.id, shop.other_partner.id])
    assert bystander.id not in told
    assert all(e.payload["scope"] == ALL_PARTNERS and e.payload_version == 2 for e in events)
    # Our internal customer id is never sent: each partner gets only the references it holds (none here).
    assert all("customer_id" not in e.payload and e.payload["impression_ids"] == [] for e in events)


def test_withdrawing_one_partner_tells_only_that_partner(session: Session, shop: Shop) -> None:
    record(session, shop, grant("g1", shop.notice, ALL_PARTNERS))
    for partner in (shop.partner, shop.other_partner):
        disclosures.record_disclosure(session, shop.tenant.id, shop.customer.id, partner.id)
    record(session, shop, withdrawal("w1", shop.partner.id, at=T0 + timedelta(minutes=1)))
    told = [e.payload["partner_id"] for e in outbox.pending(session, shop.tenant.id, outbox.CONSENT_WITHDRAWN)]
    assert told == [shop.partner.id]
    assert not consents(session, shop, shop.partner)
    assert consents(session, shop, shop.other_partner)


# --- the property test ---------------------------------------------------------------------

PARTNER_CHOICES = ("p0", "p1", "all", "stranger")
PURPOSES = tuple(Purpose)

purposes_st = st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True).map(tuple)
minute_st = st.integers(min_value=0, max_value=12)
customer_st = st.integers(min_value=0, max_value=1)
grant_st = st.tuples(
    st.just("grant"), customer_st, purposes_st, st.sampled_from(PARTNER_CHOICES), st.booleans(), minute_st
)
steps_st = st.lists(
    st.one_of(
        grant_st,
        grant_st,  # twice as likely, so that consent is often in force
        st.tuples(st.just("withdraw"), customer_st, purposes_st, st.sampled_from(PARTNER_CHOICES), minute_st),
        st.tuples(st.just("confirm"), customer_st, st.integers(min_value=0, max_value=20), minute_st),
        st.tuples(st.just("replay"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("erase"), customer_st),
    ),
    max_size=25,
)


@dataclass
class Logged:
    event: ConsentInput
    external_id: str
    arrival: int
    purposes: tuple[str, ...]
    partner: str


@dataclass
class Model:
    """The test's own record of what was accepted, to judge the stored state independently."""

    log: list[Logged] = field(default_factory=list)
    erased: set[str] = field(default_factory=set)

    def covering(self, external_id: str, purpose: str, partner: str) -> list[Logged]:
        found = [
            e
            for e in self.log
            if e.external_id == external_id and purpose in e.purposes and e.partner in (partner, ALL_PARTNERS)
        ]
        return sorted(found, key=lambda e: (e.event.occurred_at, e.arrival))

    def consents(self, external_id: str, purpose: str, partner: str) -> bool:
        """Consenting iff some grant after the last withdrawal is either plain or confirmed."""
        if external_id in self.erased:
            return False
        events = self.covering(external_id, purpose, partner)
        last_withdrawal = max((i for i, e in enumerate(events) if e.event.action == Action.withdrawn), default=-1)
        confirmed = {e.event.confirms for e in events if e.event.action == Action.confirmed}
        return any(
            e.event.action == Action.granted
            and (e.event.method != Method.double_opt_in or e.event.event_id in confirmed)
            for e in events[last_withdrawal + 1 :]
        )


class Scenario:
    def __init__(self, session: Session, settings: Settings, world: dict[str, Any]) -> None:
        self.session, self.settings, self.world = session, settings, world
        self.tenant: Tenant = world["tenant"]
        self.partner_ids = {"p0": world["p0"].id, "p1": world["p1"].id, "all": ALL_PARTNERS}
        self.partner_ids["stranger"] = world["stranger"].id
        self.customers: dict[str, str] = {f"k{i}": world[f"k{i}"].id for i in (0, 1)}
        self.model = Model()
        self.accepted_grants: list[Logged] = []
        self.arrivals = 0
        self.steps = 0

    def _notice(self, partner: str) -> ConsentNotice:
        notice: ConsentNotice = self.world["named"] if partner in ("p0", "p1") else self.world["all"]
        return notice

    def _submit(self, event: ConsentInput, external_id: str, expect: type[Exception] | None) -> None:
        try:
            recorded = consent.record_event(
                self.session, self.tenant.id, external_id, event, is_active_partner=is_active_partner
            )
            self.session.commit()
        except (Invalid, NotFound, Conflict) as exc:
            self.session.rollback()
            refused: Exception | None = exc
        else:
            refused = None
        if refused is not None or expect is not None:
            assert expect is not None and isinstance(refused, expect), f"got {refused!r}, expected {expect} for {event}"
            return
        if recorded.replayed:
            return
        self.arrivals += 1
        entry = Logged(
            event, external_id, self.arrivals, tuple(e.purpose for e in recorded.events), recorded.events[0].partner
        )
        self.model.log.append(entry)
        if event.action == Action.granted:
            self.accepted_grants.append(entry)

    def step(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        self.steps += 1
        event_id = f"ev{self.steps}"
        if kind == "grant":
            _, who, purposes, choice, doi, minute = step
            external_id, partner = f"k{who}", self.partner_ids[choice]
            event = grant(event_id, self._notice(choice), partner, T0 + timedelta(minutes=minute), purposes, doi)
            expect: type[Exception] | None = None
            if external_id in self.model.erased:
                expect = NotFound
            elif choice == "stranger" or (choice == "all" and Purpose.partner_contact_sharing in purposes):
                expect = Invalid
            self._submit(event, external_id, expect)
        elif kind == "withdraw":
            _, who, purposes, choice, minute = step
            external_id = f"k{who}"
            event = withdrawal(event_id, self.partner_ids[choice], T0 + timedelta(minutes=minute), purposes)
            self._submit(event, external_id, NotFound if external_id in self.model.erased else None)
        elif kind == "confirm":
            _, who, index, minute = step
            external_id = f"k{who}"
            mine = [g for g in self.accepted_grants if g.external_id == external_id]
            target = mine[index % len(mine)] if mine else None
            at = T0 + timedelta(minutes=minute)
            event = confirmation(event_id, target.event.event_id if target else "none", at)
            expect = None
            if external_id in self.model.erased or target is None:
                expect = NotFound
            elif target.event.method != Method.double_opt_in or at < target.event.occurred_at:
                expect = Invalid
            self._submit(event, external_id, expect)
        elif kind == "replay":
            if self.model.log:
                entry = self.model.log[step[1] % len(self.model.log)]
                expect = NotFound if entry.external_id in self.model.erased else None
                self._submit(entry.event, entry.external_id, expect)  # a replay adds nothing
        else:
            external_id = f"k{step[1]}"
            key = self.settings.identity_hash_key.get_secret_value().encode()
            privacy.erase_customer(self.session, self.tenant.id, external_id, hash_key=key)
            self.session.commit()
            self.model.erased.add(external_id)

    def check(self) -> None:
        tenant_id = self.tenant.id
        for external_id, customer_id in self.customers.items():
            events = consent_ledger.all_events(self.session, tenant_id, customer_id)
            stored = as_key_states(current_state(self.session, tenant_id, customer_id))
            assert stored == fold(facts(e) for e in events)
            if external_id in self.model.erased:
                assert events == [] and stored == {}
        for purpose in PURPOSES:
            for choice in ("p0", "p1", "stranger"):
                partner_id = self.partner_ids[choice]
                expected = [
                    choice != "stranger" and self.model.consents(external_id, purpose, partner_id)
                    for external_id in self.customers
                ]
                actual = [
                    has_consent(self.session, tenant_id, cid, purpose, partner_id, is_active_partner=is_active_partner)
                    for cid in self.customers.values()
                ]
                assert actual == expected, (purpose, choice)
                counted = count_consenting(
                    self.session, tenant_id, purpose, partner_id, is_active_partner=is_active_partner
                )
                assert counted == sum(expected), (purpose, choice)
                if any(expected):
                    note("a customer consents at some step")


@pytest.fixture
def world(
    make_tenant: Callable[..., Tenant],
    make_partner: Callable[..., Tenant],
    make_notice: Callable[..., ConsentNotice],
    make_customer: Callable[..., Customer],
) -> Callable[[], dict[str, Any]]:
    """A fresh shop per example: two active partners, a stranger, notices and two customers."""

    def build() -> dict[str, Any]:
        tenant = make_tenant()
        p0, p1 = make_partner(tenant), make_partner(tenant)
        return {
            "tenant": tenant,
            "p0": p0,
            "p1": p1,
            "stranger": make_tenant(),
            "all": make_notice(tenant, key="all"),
            "named": make_notice(tenant, partners=(p0.id, p1.id), key="named"),
            "k0": make_customer(tenant, "k0"),
            "k1": make_customer(tenant, "k1"),
        }

    return build


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps_st)
def test_state_is_always_the_fold_and_never_counts_the_wrong_customers(
    session: Session, settings: Settings, world: Callable[[], dict[str, Any]], steps: list[tuple[Any, ...]]
) -> None:
    scenario = Scenario(session, settings, world())
    for step in steps:
        scenario.step(step)
        scenario.check()
