"""Structured JSON log lines, carrying request id and tenant where there is one."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Whatever shape of credential we hand out: our prefixed secrets (partners.crypto), webhook
# secrets, and JWTs (access tokens). Libraries log some of them (authlib logs issued tokens at DEBUG).
SECRET_SHAPES = re.compile(
    r"(?:plp_[a-z]{2,3}_|whsec_)[A-Za-z0-9_\-+/=]+"
    r"|eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"
)
REDACTED = "[redacted]"
# Loggers that would put credentials in their DEBUG lines: held at INFO whatever the level asked.
TALKATIVE = ("authlib",)


def redact(text: str) -> str:
    """The text with anything shaped like one of our credentials replaced."""
    return SECRET_SHAPES.sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields given to the logger are kept."""

    def __init__(self, context: Callable[[], dict[str, str | None]] | None = None) -> None:
        super().__init__()
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.context is not None:
            line.update({k: v for k, v in self.context().items() if v is not None})
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, default=str))


def configure(level: str, context: Callable[[], dict[str, str | None]] | None = None) -> None:
    """Send every log record to stderr as JSON."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(context))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in TALKATIVE:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = name != "uvicorn.access"
