"""Log filter that keeps personal data out of log lines: paths and query strings can hold subject ids, and the
messages of third-party exceptions in a traceback can hold anything the failing call was given (a database
error quotes the row it could not write: memory text, user id, metadata)."""

import logging
import re
import traceback
from types import TracebackType

_ENTITY_PATH = re.compile(r"(/v2/entities/[^/\s]+/)[^/\s]+")
_STATUS_PATH = re.compile(r"(/privacy/status/[^/\s]+/)[^\s\"']+")
_QUERY = re.compile(r"\?[^\s\"']*")
_REQUEST_LINE = re.compile(r"\"[A-Z]+ [^\"]*\"")


def redact(text: str) -> str:
    text = _ENTITY_PATH.sub(r"\1<redacted>", text)
    text = _STATUS_PATH.sub(r"\1<redacted>", text)
    return _QUERY.sub("?<redacted>", text)


# Exceptions of these packages follow the house rule (no personal data in exception messages) and keep theirs.
OWN_PACKAGES = ("memories", "erasure", "config")


def _own(exc_type: type[BaseException]) -> bool:
    return exc_type.__module__.split(".")[0] in OWN_PACKAGES


def redacted_traceback(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
) -> str:
    """The traceback as logging prints it (the whole chain, file/line/function and source line of each frame),
    with the message of every exception not raised by this project replaced by "<redacted>". No frame locals."""
    chain: list[traceback.TracebackException] = []
    current: traceback.TracebackException | None = traceback.TracebackException(
        *exc_info, capture_locals=False
    )
    while current is not None and len(chain) < 20:
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    parts: list[str] = []
    for index, item in enumerate(reversed(chain)):
        if index:
            parts.append("\nThe above exception led to the following exception:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(item.stack.format())
        exc_type = item.exc_type
        name = f"{exc_type.__module__}.{exc_type.__qualname__}" if exc_type else "Exception"
        if exc_type is not None and _own(exc_type):
            parts.append("".join(item.format_exception_only()))
        else:
            parts.append(f"{name}: <redacted>\n")
    return "".join(parts).rstrip("\n")


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
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc_value, exc_tb = record.exc_info
            if exc_value is not None:
                record.exc_text = redacted_traceback((exc_type, exc_value, exc_tb))
                record.exc_info = None
        return True
