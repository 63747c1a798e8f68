"""The consent fold as a pure function: what each sequence of events leaves in force."""

from datetime import UTC, datetime, timedelta

from partners.consent_rules import ALL_PARTNERS, EventFacts, Method, Purpose, Status, consenting, fold

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OFFERS = Purpose.partner_offers
X, Y = "ten_x", "ten_y"


class Log:
    """Builds events in arrival order; `at` is minutes after T0."""

    def __init__(self) -> None:
        self.events: list[EventFacts] = []

    def _add(self, action: str, at: int, partner: str, method: str, confirms: str | None = None) -> str:
        seq = len(self.events) + 1
        event_id = f"e{seq}"
        occurred = T0 + timedelta(minutes=at)
        self.events.append(
            EventFacts(f"cev{seq}", event_id, seq, occurred, OFFERS, partner, action, method, "ntc_1", confirms)
        )
        return event_id

    def grant(self, at: int = 0, partner: str = X, doi: bool = False) -> str:
        return self._add("granted", at, partner, Method.double_opt_in if doi else Method.checkbox)

    def withdraw(self, at: int = 0, partner: str = X) -> str:
        return self._add("withdrawn", at, partner, Method.preference_link)

    def confirm(self, grant: str, at: int = 0) -> str:
        partner = next(e.partner for e in self.events if e.event_id == grant)
        return self._add("confirmed", at, partner, Method.email_confirmation, confirms=grant)

    def consents(self, partner: str = X, active: bool = True) -> bool:
        return consenting(fold(self.events), OFFERS, partner, partner_active=active)


def test_no_events_is_no_consent() -> None:
    assert fold([]) == {}
    assert not Log().consents()


def test_a_grant_is_consent_for_that_partner_only() -> None:
    log = Log()
    log.grant(partner=X)
    assert log.consents(X)
    assert not log.consents(Y)


def test_double_opt_in_is_pending_until_confirmed() -> None:
    log = Log()
    grant = log.grant(doi=True)
    assert fold(log.events)[(OFFERS, X)].status is Status.pending
    assert not log.consents()
    log.confirm(grant, at=5)
    assert log.consents()


def test_confirming_after_a_withdrawal_changes_nothing() -> None:
    log = Log()
    grant = log.grant(at=0, doi=True)
    log.withdraw(at=1)
    log.confirm(grant, at=2)
    assert fold(log.events)[(OFFERS, X)].status is Status.withdrawn


def test_a_pending_grant_does_not_lower_a_valid_one() -> None:
    log = Log()
    log.grant(at=0)
    log.grant(at=1, doi=True)
    assert log.consents()


def test_the_later_event_by_time_wins_whatever_the_arrival_order() -> None:
    log = Log()
    log.withdraw(at=10)
    log.grant(at=5)  # arrives later, happened earlier
    assert not log.consents()


def test_at_the_same_time_the_later_arrival_wins() -> None:
    granted_last, withdrawn_last = Log(), Log()
    withdrawn_last.grant(at=3)
    withdrawn_last.withdraw(at=3)
    granted_last.withdraw(at=3)
    granted_last.grant(at=3)
    assert not withdrawn_last.consents()
    assert granted_last.consents()


def test_all_partners_covers_active_partners_until_one_is_withdrawn() -> None:
    log = Log()
    log.grant(at=0, partner=ALL_PARTNERS)
    assert log.consents(X) and log.consents(Y)
    assert not log.consents(Y, active=False)
    log.withdraw(at=1, partner=X)
    assert not log.consents(X)
    assert log.consents(Y)


def test_withdrawing_all_ends_a_named_grant_and_a_later_grant_restores_it() -> None:
    log = Log()
    log.grant(at=0, partner=X)
    log.withdraw(at=1, partner=ALL_PARTNERS)
    assert not log.consents(X)
    log.grant(at=2, partner=X)
    assert log.consents(X)
    assert not log.consents(Y)


def test_a_later_all_grant_covers_a_partner_withdrawn_before() -> None:
    log = Log()
    log.withdraw(at=0, partner=X)
    log.grant(at=1, partner=ALL_PARTNERS)
    assert log.consents(X)


def test_confirming_an_all_partners_grant_covers_named_partners() -> None:
    log = Log()
    log.grant(at=0, partner=X, doi=True)
    grant_all = log.grant(at=1, partner=ALL_PARTNERS, doi=True)
    log.confirm(grant_all, at=2)
    assert log.consents(X) and log.consents(Y)


def test_the_state_names_the_deciding_event_and_notice() -> None:
    log = Log()
    grant = log.grant(at=0, doi=True)
    log.confirm(grant, at=4)
    state = fold(log.events)[(OFFERS, X)]
    assert state.decided_by == "cev2"
    assert state.decided_at == T0 + timedelta(minutes=4)
    assert state.notice_id == "ntc_1"
