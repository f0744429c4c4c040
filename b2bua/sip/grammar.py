"""Lexical helpers for RFC 3261 section 25: tokens, quoted strings, parameters.

Everything works on ``str`` values (header values are decoded from UTF-8 with
``surrogateescape``) and raises :class:`SIPParseError` on malformed input.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from .errors import SIPParseError

WS = " \t"
#: RFC 3261 ``token``: alphanum and -.!%*_+`'~
_TOKEN_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~\[\]:-]+")
_TOKEN = r"[A-Za-z0-9.!%*_+`'~-]+"
_VALUE = r"[A-Za-z0-9.!%*_+`'~\[\]:-]+"
#: ``name[=value]`` pairs without quotes or whitespace, separated by ``;``.
_SIMPLE_PARAMS_RE = re.compile(f"{_TOKEN}(?:={_VALUE})?(?:;{_TOKEN}(?:={_VALUE})?)*")


class _SharedEmpty(dict[Any, Any]):
    """An empty dict that refuses every change: one instance serves as the
    parameters or URI headers of every value that has none.

    URIs, Vias and NameAddrs are frozen and their copies build new dicts, so a shared
    empty one saves a dict per value (64 bytes; a held call keeps about twenty) and
    can only be changed by mistake, which raises TypeError instead of changing all.
    """

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("shared empty parameters: build a new dict (with_params, replace)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    setdefault = update = pop = popitem = clear = _refuse


#: The shared empty parameters (see _SharedEmpty).
NO_PARAMS: dict[str, str | None] = _SharedEmpty()
#: The shared empty URI headers (the same object).
NO_HEADERS: dict[str, str] = NO_PARAMS  # type: ignore[assignment]


def no_params() -> dict[str, str | None]:
    """NO_PARAMS, as a dataclass default_factory."""
    return NO_PARAMS


def no_headers() -> dict[str, str]:
    """NO_HEADERS, as a dataclass default_factory."""
    return NO_HEADERS


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 ``token``."""
    return _TOKEN_RE.fullmatch(text) is not None


def quote(text: str) -> str:
    """Return ``text`` as a quoted-string, escaping ``"`` and ``\\``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted-string whose opening quote is at ``start``.

    Returns the unescaped content and the index just past the closing quote.
    """
    end = text.find('"', start + 1)
    if end > 0 and "\\" not in text[start + 1 : end]:
        content = text[start + 1 : end]
        if "\r" in content or "\n" in content:
            raise SIPParseError(400, "line break in quoted string")
        return content, end + 1
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= n:
                break
            nxt = text[i + 1]
            if nxt in "\r\n":
                raise SIPParseError(400, "bad escape in quoted string")
            out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    raise SIPParseError(400, "unterminated quoted string")


def split_outside_quotes(text: str, sep: str, *, brackets: bool = True) -> list[str]:
    """Split ``text`` at ``sep`` characters that are not inside quotes or ``<...>``."""
    if '"' not in text and (sep not in text or not brackets or "<" not in text):
        return text.split(sep)
    parts: list[str] = []
    depth = 0
    i = 0
    n = len(text)
    begin = 0
    while i < n:
        c = text[i]
        if c == '"':
            _, i = read_quoted(text, i)
            continue
        if brackets and c == "<":
            depth += 1
        elif brackets and c == ">":
            depth = max(0, depth - 1)
        elif c == sep and depth == 0:
            parts.append(text[begin:i])
            begin = i + 1
        i += 1
    parts.append(text[begin:])
    return parts


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """Parse ``;name[=value]`` sequences (``text`` starts after the first ``;``).

    Names are lowercased; quoted values are kept with their quotes so the value
    serializes back unchanged.  ``what`` names the header for the error message.
    """
    if '"' not in text and _SIMPLE_PARAMS_RE.fullmatch(text) is not None:
        # the common case, validated and split by two regular expressions
        return checked_params(text)
    params: dict[str, str | None] = {}
    if not text.strip(WS):
        raise SIPParseError(400, f"empty parameter in {what}")
    for part in split_outside_quotes(text, ";", brackets=False):
        name, eq, value = part.partition("=")
        name = name.strip(WS)
        if not is_token(name):
            raise SIPParseError(400, f"bad parameter name {name!r} in {what}")
        if not eq:
            params[name.lower()] = None
            continue
        value = value.strip(WS)
        if value.startswith('"'):
            _, end = read_quoted(value, 0)
            if end != len(value):
                raise SIPParseError(400, f"junk after quoted parameter {name} in {what}")
        elif _PARAM_VALUE_RE.fullmatch(value) is None:
            raise SIPParseError(400, f"bad value for parameter {name} in {what}")
        params[name.lower()] = value
    return params


def checked_params(text: str) -> dict[str, str | None]:
    """The ``name[=value]`` pairs of ``text`` (``;``-separated) as parse_params gives
    them, for a text a pattern has checked: no ``;`` or ``=`` inside a name or value.

    Cutting at those characters costs less than a findall and a dict comprehension;
    a single pair (the usual tag, transport or lr) is cut without a loop.
    """
    if ";" not in text:
        name, _, value = text.partition("=")
        return {name.lower(): value or None}
    params: dict[str, str | None] = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        params[name.lower()] = value or None
    return params


def format_params(params: dict[str, str | None]) -> str:
    """Serialize a parameter dict as ``;name=value`` pairs."""
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params.items()])


def unquote_param(value: str | None) -> str | None:
    """The content of a parameter value, without quotes if it was quoted."""
    if value is not None and value.startswith('"'):
        return read_quoted(value, 0)[0]
    return value
