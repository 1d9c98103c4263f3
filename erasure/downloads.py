"""A file the domain hands to a view to send (the certificate, the compliance export): domain modules build the
content, the views (erasure/views/downloads.py) build the HTTP response."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Download:
    content: bytes | Iterable[str]  # bytes: sent at once; an iterable of str: streamed
    content_type: str
    filename: str
    inline: bool = False  # shown by the browser (a PDF) rather than saved
