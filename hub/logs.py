"""Log output: lines for a person (the default) or one JSON object per line for a log collector
(TASKHUB_LOG_FORMAT=json), for taskhub's own messages and granian's server and access logs alike."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
# Attributes every LogRecord has: whatever else a record carries was passed as `extra=` and goes into the object.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# granian's access log passes the request's fields as the record's arguments (a mapping).
_ACCESS_FIELDS = {"addr": "client", "method": "method", "path": "path", "query_string": "query",
                  "protocol": "protocol", "status": "status", "dt_ms": "duration_ms"}  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the exception if any, and the
    record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if record.name == "granian.access" and isinstance(record.args, dict):
            entry["message"] = "request"
            entry.update({name: record.args[key] for key, name in _ACCESS_FIELDS.items() if key in record.args})
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        return json.dumps(entry, default=str)


def configure_logging(log_format: str, level: str) -> None:
    """taskhub's logging, to standard error, in `log_format` ("text" or "json")."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"setting TASKHUB_LOG_FORMAT={log_format!r}: expected one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=log_format == "json")


def granian_formatters(log_format: str) -> dict[str, Any]:
    """granian's formatters (its server messages, "generic", and its access log, "access") for `log_format`;
    empty for text, which keeps granian's own."""
    if log_format != "json":
        return {}
    return {"formatters": {"generic": {"()": JsonFormatter}, "access": {"()": JsonFormatter}}}
