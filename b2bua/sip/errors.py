"""The one exception the SIP message layer raises for bad input."""

from __future__ import annotations


class SIPParseError(Exception):
    """Input that is not a well-formed SIP message (or part of one).

    ``status`` is the response code a UAS answers the offending request with
    (400, 413, 414, 416, 420, 505, 513, ...); ``reason`` says what was wrong, for
    humans and logs.  Parsing raises this and nothing else, whatever the bytes.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
