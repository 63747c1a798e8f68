"""Code pools: uploads and generated codes, one pool per code, and reservation that never hands a code out twice."""

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from partners import codes, offer_actions
from partners.db import unit_of_work
from partners.errors import Conflict, Invalid
from partners.offer_rules import CodeMode, OfferAction
from partners.offers import Offer, OfferSettings
from partners.retailers import Tenant
from tests.factories_offers import actor

POOL = OfferSettings(code_mode=CodeMode.pool)


@pytest.fixture
def shop(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant()


def test_upload_normalizes_and_dedupes(session: Session, shop: Tenant, make_offer: Callable[..., Offer]) -> None:
    offer = make_offer(shop, settings=POOL)
    first = codes.upload(session, shop.id, offer.id, ["beds-001", "BEDS-001 ", "BEDS-002"])
    assert (first.added, first.already_in_pool) == (2, 0)
    again = codes.upload(session, shop.id, offer.id, ["BEDS-002", "BEDS-003"])
    assert (again.added, again.already_in_pool) == (1, 1)
    assert codes.counts(session, shop.id, offer.id) == codes.CodeCounts(total=3, available=3)


def test_codes_of_another_pool_of_the_tenant_are_refused(
    session: Session, shop: Tenant, make_offer: Callable[..., Offer], make_tenant: Callable[..., Tenant]
) -> None:
    first, second = make_offer(shop, settings=POOL), make_offer(shop, settings=POOL)
    codes.upload(session, shop.id, first.id, ["BEDS-001", "BEDS-002"])
    with pytest.raises(Invalid, match="already used by another of your offers: BEDS-002") as refused:
        codes.upload(session, shop.id, second.id, ["BEDS-002", "BEDS-009"])
    assert refused.value.param == "codes"
    assert codes.counts(session, shop.id, second.id).total == 0, "the whole upload is refused"
    other_shop = make_tenant()
    theirs = make_offer(other_shop, settings=POOL)
    assert codes.upload(session, other_shop.id, theirs.id, ["BEDS-002"]).added == 1, "pools are per tenant"


def test_a_pool_code_cannot_be_another_offers_shared_code(
    session: Session, shop: Tenant, make_offer: Callable[..., Offer]
) -> None:
    make_offer(shop, settings=OfferSettings(code_mode=CodeMode.shared, shared_code="BEDS10"))
    pooled = make_offer(shop, settings=POOL)
    with pytest.raises(Invalid, match="BEDS10"):
        codes.upload(session, shop.id, pooled.id, ["beds10"])
    codes.upload(session, shop.id, pooled.id, ["POOL-1"])
    with pytest.raises(Invalid) as refused:
        make_offer(shop, settings=OfferSettings(code_mode=CodeMode.shared, shared_code="pool-1"))
    assert refused.value.param == "codes.shared_code"


def test_bad_uploads(session: Session, shop: Tenant, make_offer: Callable[..., Offer]) -> None:
    shared = make_offer(shop, settings=OfferSettings(code_mode=CodeMode.shared, shared_code="BEDS10"))
    with pytest.raises(Conflict, match="shared"):
        codes.upload(session, shop.id, shared.id, ["A-CODE"])
    pooled = make_offer(shop, settings=POOL)
    with pytest.raises(Invalid):
        codes.upload(session, shop.id, pooled.id, ["has space"])
    with pytest.raises(Invalid):
        codes.upload(session, shop.id, pooled.id, [])
    offer_actions.change_state(session, actor(shop), pooled.id, OfferAction.archive)
    with pytest.raises(Conflict, match="archived"):
        codes.upload(session, shop.id, pooled.id, ["LATE-1"])


def test_generated_codes_are_unique_and_unambiguous(
    session: Session, shop: Tenant, make_offer: Callable[..., Offer]
) -> None:
    offer = make_offer(shop, settings=POOL)
    made = codes.generate(session, shop.id, offer.id, 500, prefix="pb-")
    assert len(set(made)) == 500
    for code in made:
        assert code.startswith("PB-")
        assert len(code) == 3 + codes.GENERATED_LENGTH
        assert set(code[3:]) <= set(codes.ALPHABET)
        assert not set(code[3:]) & set("0O1IL")
    assert codes.counts(session, shop.id, offer.id).available == 500
    with pytest.raises(Invalid) as refused:
        codes.generate(session, shop.id, offer.id, 0)
    assert refused.value.param == "count"
    with pytest.raises(Invalid) as bad_prefix:
        codes.generate(session, shop.id, offer.id, 1, prefix="no spaces")
    assert bad_prefix.value.param == "prefix"


def test_reserve_gives_each_customer_its_own_code_and_the_same_one_again(
    session: Session, shop: Tenant, make_offer: Callable[..., Offer]
) -> None:
    offer = make_offer(shop, settings=POOL)
    codes.upload(session, shop.id, offer.id, ["C-1", "C-2"])
    first = codes.reserve_code(session, shop.id, offer.id, "cus_a")
    second = codes.reserve_code(session, shop.id, offer.id, "cus_b")
    assert {first, second} == {"C-1", "C-2"}
    assert codes.reserve_code(session, shop.id, offer.id, "cus_a") == first
    assert codes.reserve_code(session, shop.id, offer.id, "cus_c") is None, "the pool is dry"
    assert codes.counts(session, shop.id, offer.id) == codes.CodeCounts(total=2, available=0)


def test_a_redeemed_code_is_not_handed_out_again(
    session: Session, shop: Tenant, make_offer: Callable[..., Offer]
) -> None:
    offer = make_offer(shop, settings=POOL)
    codes.upload(session, shop.id, offer.id, ["C-1", "C-2"])
    first = codes.reserve_code(session, shop.id, offer.id, "cus_a")
    assert first is not None
    assert codes.mark_redeemed(session, shop.id, first.lower()) == offer.id
    assert codes.mark_redeemed(session, shop.id, first) is None, "used once only"
    again = codes.reserve_code(session, shop.id, offer.id, "cus_a")
    assert again not in (None, first)


def test_shared_and_codeless_offers(session: Session, shop: Tenant, make_offer: Callable[..., Offer]) -> None:
    shared = make_offer(shop, settings=OfferSettings(code_mode=CodeMode.shared, shared_code="beds10"))
    assert codes.reserve_code(session, shop.id, shared.id, "cus_a") == "BEDS10"
    assert codes.reserve_code(session, shop.id, shared.id, "cus_b") == "BEDS10"
    codeless = make_offer(shop)
    assert codes.reserve_code(session, shop.id, codeless.id, "cus_a") is None


def test_concurrent_reservations_never_hand_out_a_code_twice(
    engine: Engine, session: Session, shop: Tenant, make_offer: Callable[..., Offer]
) -> None:
    offer = make_offer(shop, settings=POOL)
    pool = codes.generate(session, shop.id, offer.id, 30)
    session.commit()
    workers, per_worker = 8, 6  # 48 customers for 30 codes
    barrier = threading.Barrier(workers)
    handed: list[tuple[str, str | None]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        barrier.wait()
        try:
            for n in range(per_worker):
                customer = f"cus_{worker}_{n}"
                with unit_of_work(engine) as s:
                    code = codes.reserve_code(s, shop.id, offer.id, customer)
                with lock:
                    handed.append((customer, code))
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    given = [code for _, code in handed if code is not None]
    assert len(given) == len(set(given)), "a code went to two customers"
    assert sorted(given) == sorted(pool), "every code was handed out, and only pool codes"
    assert sum(code is None for _, code in handed) == workers * per_worker - len(pool)
    assert codes.counts(session, shop.id, offer.id).available == 0


def test_concurrent_open_transactions_take_different_codes(
    engine: Engine, session: Session, shop: Tenant, make_offer: Callable[..., Offer]
) -> None:
    """Reservers whose transactions overlap (each holds its row until commit) still get distinct codes."""
    offer = make_offer(shop, settings=POOL)
    codes.upload(session, shop.id, offer.id, [f"C-{n}" for n in range(10)])
    session.commit()
    workers = 5
    barrier, handed, errors = threading.Barrier(workers), [], []

    def work(worker: int) -> None:
        try:
            with unit_of_work(engine) as s:
                barrier.wait()
                code = codes.reserve_code(s, shop.id, offer.id, f"cus_{worker}")
                time.sleep(0.2)  # hold the reserved row while the others reserve
                handed.append(code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert None not in handed and len(set(handed)) == workers
