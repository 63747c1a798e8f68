"""The built-in docs client."""

from partners.clients import DOCS_REDIRECT_PATH, docs_client


def test_the_docs_client_accepts_both_spellings_of_a_local_base_url() -> None:
    local = docs_client("http://127.0.0.1:8000/")
    assert set(local.redirect_uris) == {
        "http://127.0.0.1:8000" + DOCS_REDIRECT_PATH,
        "http://localhost:8000" + DOCS_REDIRECT_PATH,
    }


def test_the_docs_client_has_one_exact_redirect_in_production() -> None:
    assert docs_client("https://api.partnerloop.example").redirect_uris == (
        "https://api.partnerloop.example" + DOCS_REDIRECT_PATH,
    )
