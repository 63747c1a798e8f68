"""The Partnerloop SDK for Python: typed calls over httpx, tokens by authlib, retries, webhook checks."""

from partnerloop_sdk.changes import CursorStore, FileCursorStore, MemoryCursorStore
from partnerloop_sdk.client import Partnerloop, sign_up
from partnerloop_sdk.errors import PartnerloopError, TransportError
from partnerloop_sdk.retry import RetryPolicy
from partnerloop_sdk.staff_login import log_in
from partnerloop_sdk.uploads import UploadProgress
from partnerloop_sdk.webhooks import WebhookVerificationError, WebhookVerifier

__all__ = [
    "CursorStore",
    "FileCursorStore",
    "MemoryCursorStore",
    "Partnerloop",
    "PartnerloopError",
    "RetryPolicy",
    "TransportError",
    "UploadProgress",
    "WebhookVerificationError",
    "WebhookVerifier",
    "log_in",
    "sign_up",
]
