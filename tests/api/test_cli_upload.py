"""`partnerloop upload`: streams each kind of file, draws a progress bar, prints a summary."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api import cli, cli_upload
from partners.customers import Customer
from partners.notices import ConsentNotice
from partners.retailers import Tenant
from tests.flows import bearer


@pytest.fixture
def through_app(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Send the CLI's request to the app under test; remembers what each request looked like."""
    seen: list[dict[str, Any]] = []

    def post(url: str, **kwargs: Any) -> Any:
        kwargs.pop("timeout")
        body = kwargs.pop("content")
        seen.append({"url": url, "streamed": not isinstance(body, bytes), "type": kwargs["headers"]["Content-Type"]})
        return client.post(url.removeprefix("http://testserver"), content=b"".join(body), **kwargs)

    monkeypatch.setattr(httpx, "post", post)
    return seen


def run(kind: str, path: Path, token: str) -> int:
    try:
        cli.main(["upload", kind, str(path), "--url", "http://testserver", "--token", token])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_customers_then_purchases_csv(
    through_app: list[dict[str, Any]],
    make_tenant: Callable[..., Tenant],
    token_for: Callable[..., str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant = make_tenant()
    token = token_of(bearer(token_for(["customers:write"], tenant=tenant)))
    people = tmp_path / "customers.ndjson"
    people.write_text("".join(json.dumps({"external_id": f"c-{i}"}) + "\n" for i in range(100)))
    assert run("customers", people, token) == 0
    out = capsys.readouterr()
    assert "100 rows kept, 0 failed of 100" in out.out
    assert "Next: upload their purchases" in out.out
    assert "100.0%" in out.err and "rows/s" in out.err

    orders = tmp_path / "orders.csv"
    rows = [f"c-{i},o-{i},2025-05-01T10:00:00Z,EUR,cat_dog_food,{1000 + i},2,physical" for i in range(50)]
    rows.insert(10, "c-999,o-x,2025-05-01T10:00:00Z,EUR,cat_dog_food,100,1,physical")
    header = "external_id,order_id,ordered_at,currency,category_id,unit_price_minor,quantity,channel"
    orders.write_text("\n".join([header, *rows]) + "\n")
    assert run("purchases", orders, token) == 2  # some rows refused
    out = capsys.readouterr()
    assert "50 rows kept, 1 failed of 51" in out.out
    assert "line 12 [external_id]: No customer with external id 'c-999'" in out.out
    assert "idempotent by order_id" in out.out
    assert [(s["url"].rsplit("/", 1)[-1], s["streamed"], s["type"]) for s in through_app] == [
        ("customers", True, "application/x-ndjson"),
        ("purchases", True, "text/csv"),
    ]


def test_consent_events(
    through_app: list[dict[str, Any]],
    make_tenant: Callable[..., Tenant],
    make_partner: Callable[..., Tenant],
    make_customer: Callable[..., Customer],
    make_notice: Callable[..., ConsentNotice],
    token_for: Callable[..., str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant = make_tenant()
    partner = make_partner(tenant)
    make_customer(tenant, "c-1")
    notice = make_notice(tenant)
    event = {
        "external_id": "c-1",
        "event_id": "g-1",
        "action": "granted",
        "purposes": ["partner_offers"],
        "partner": partner.id,
        "notice_id": notice.id,
        "method": "checkbox",
        "source": "checkout",
        "occurred_at": "2025-05-01T10:00:00Z",
    }
    path = tmp_path / "consents.ndjson"
    path.write_text(json.dumps(event) + "\n")
    token = token_of(bearer(token_for(["consents:write"], tenant=tenant)))
    assert run("consent-events", path, token) == 0
    assert "1 rows kept, 0 failed" in capsys.readouterr().out


def test_refused_upload_and_missing_file(
    through_app: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text("{}\n")
    with pytest.raises(SystemExit, match="upload refused \\(401\\)"):
        cli.main(["upload", "customers", str(path), "--url", "http://testserver", "--token", "nope"])
    with pytest.raises(SystemExit, match="no file"):
        cli.main(["upload", "customers", str(tmp_path / "missing.csv"), "--token", "t"])


def test_progress_bar_counts_bytes_and_rows() -> None:
    out = io.StringIO()
    bar = cli_upload.ProgressBar(total=20, out=out, every=0.0)
    bar.add(b"a\nb\n")
    bar.add(b"c\n" * 8)
    assert bar.rows == 10 and bar.sent == 20
    assert "100.0%" in out.getvalue() and "10 rows" in out.getvalue()


def test_summary_points_at_the_job_when_errors_are_many() -> None:
    errors = [{"line": i, "field": None, "message": "bad"} for i in range(1000)]
    job = {"id": "ing_1", "status": "done", "rows_seen": 5000, "rows_ok": 2000, "rows_failed": 3000, "errors": errors}
    lines = cli_upload.summary("customers", job, 3, 2.0)
    assert lines[0].endswith("(2,500 rows/s).")
    assert len([line for line in lines if line.startswith("  line ")]) == 3
    assert "2,997 more; the first 1,000 are in GET /v1/uploads/ing_1" in lines[4]
