"""Log filter that keeps personal data out of log lines (paths and query strings can hold subject ids)."""

import logging
import re

_ENTITY_PATH = re.compile(r"(/v2/entities/[^/\s]+/)[^/\s]+")
_STATUS_PATH = re.compile(r"(/privacy/status/[^/\s]+/)[^\s\"']+")
_QUERY = re.compile(r"\?[^\s\"']*")
_REQUEST_LINE = re.compile(r"\"[A-Z]+ [^\"]*\"")


def redact(text: str) -> str:
    text = _ENTITY_PATH.sub(r"\1<redacted>", text)
    text = _STATUS_PATH.sub(r"\1<redacted>", text)
    return _QUERY.sub("?<redacted>", text)


class RedactPersonalDataFilter(logging.Filter):
    """Rewrites a record's message so entity names, secret links and query strings never reach a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not break logging
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        # Django attaches the HttpRequest to django.request records; the JSON formatter would serialise its repr
        # (path, query string). Our own `extra={"request": <id>}` stays.
        if hasattr(getattr(record, "request", None), "META"):
            record.request = None
        return True
