"""Number and header rules: rewrite the outgoing INVITE, translate failure codes.

Configured as::

    [[plugin]]
    module = "rules"

    [[plugin.rule]]                         # every rule that matches applies, in order
    source = "192.168.10.0/24"              # match keys: every key given must match
    request_user = { pattern = '^0(?=[1-9])', replace = '+44' }
    to_user = { pattern = '^0(?=[1-9])', replace = '+44' }
    remove_headers_matching = ['^X-Internal-']
    set_headers = { "X-Trunk" = "carrier-a" }

    [[plugin.rule]]
    replies = [{ status = 486, to = 480 }]

Match keys (a rule without any matches every call) look at the call as it
arrived: ``user_prefix`` and ``user_regex`` at the caller's Request-URI user,
``domain`` at its host, ``source`` at the address the INVITE came from; ``target``
looks at the target being called (host or host:port).

Actions run in :meth:`ICallFeature.request_out` on the INVITE about to be sent
to each target (each failover attempt gets a fresh INVITE, so rules never apply
twice): first ``remove_headers`` (exact names) and ``remove_headers_matching``
(regular expressions on names), then ``set_headers`` and ``add_headers``, then the
user rewrites ``request_user``, ``from_user`` and ``to_user`` (a regular expression
substitution on the user part only: display names, parameters and tags are kept).
Rules apply in order, each to the result of the ones before; a matching rule with
``last = true`` ends the list.  ``replies`` translate the final response a caller
gets when no target took the call (:meth:`ICallFeature.call_failed`): the first
translation of the matching rules whose ``status`` fits wins.

Every regular expression is compiled when the server starts; a bad one is a
configuration error naming its key.  plugins/README.md is the reference.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from twisted.logger import Logger

from b2bua.features import CallFeature
from b2bua.interfaces import CallInfo, Reject, Target
from b2bua.plugin_options import (
    IPAddress,
    IPNetwork,
    check_known_keys,
    in_network,
    ip_address,
    network,
    normalize_host,
    option,
    table_array,
)
from b2bua.sip import (
    Request,
    Response,
    SIPParseError,
    canonical_name,
    header_key,
    parse_name_addr,
    parse_uri,
)

if TYPE_CHECKING:
    from b2bua.plugin import PluginContext

__all__ = ["Rewrite", "Rule", "Rules", "Translation", "make_plugin", "parse_rules"]


PLUGIN_KEYS = ("rule",)
MATCH_KEYS = ("user_prefix", "user_regex", "domain", "source", "target")
USER_KEYS = ("request_user", "from_user", "to_user")
HEADER_KEYS = ("remove_headers", "remove_headers_matching", "set_headers", "add_headers")
RULE_KEYS = (*MATCH_KEYS, *USER_KEYS, *HEADER_KEYS, "replies", "last")
REWRITE_KEYS = ("pattern", "replace", "count")
REPLY_KEYS = ("status", "to", "reason")

#: Headers that are the server's (topology, transaction and dialog identity, body
#: framing): rules may not add, set or remove them.  From and To users change
#: through from_user and to_user only.
PROTECTED_HEADERS = frozenset(
    "via route record-route contact call-id from to cseq max-forwards content-length"
    " content-type".split()
)

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
#: RFC 3261 25.1 user: unreserved / escaped / user-unreserved.
_SIP_USER = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
#: RFC 3966 number digits (global or local), as far as a user part goes.
_TEL_USER = re.compile(r"\+?[0-9A-Fa-f*#().-]+")
_STATUS_CLASS = re.compile(r"([3-6])xx")

_log = Logger(namespace="b2bua.plugins.rules")


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A regular expression substitution (``re.sub``) on a user part: the first
    ``count`` matches are replaced (0: every match)."""

    pattern: re.Pattern[str]
    replace: str
    count: int = 1

    def apply(self, user: str) -> str:
        """``user`` with the pattern's matches replaced."""
        return self.pattern.sub(self.replace, user, count=self.count)


@dataclass(frozen=True, slots=True)
class Translation:
    """Turn a final status in ``low``..``high`` into ``to`` (with ``reason``)."""

    low: int
    high: int
    to: int
    reason: str | None = None

    def matches(self, status: int) -> bool:
        """True when this translation is for ``status``."""
        return self.low <= status <= self.high


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[plugin.rule]]``: what it matches and what it does."""

    # match keys (None / empty: not a condition)
    user_prefix: str | None = None
    user_regex: re.Pattern[str] | None = None
    domain: str | None = None
    sources: tuple[IPNetwork, ...] = ()
    targets: tuple[tuple[str, int | None], ...] = ()
    # actions
    request_user: Rewrite | None = None
    from_user: Rewrite | None = None
    to_user: Rewrite | None = None
    remove_headers: tuple[str, ...] = ()
    remove_headers_matching: tuple[re.Pattern[str], ...] = ()
    set_headers: tuple[tuple[str, str], ...] = ()
    add_headers: tuple[tuple[str, str], ...] = ()
    replies: tuple[Translation, ...] = ()
    last: bool = False

    def matches_call(self, user: str | None, host: str, address: IPAddress | None) -> bool:
        """True when the call-level keys match (``host`` normalised)."""
        prefix = self.user_prefix
        if prefix and (user is None or not user.startswith(prefix)):
            return False
        if self.user_regex is not None and (user is None or not self.user_regex.search(user)):
            return False
        if self.domain is not None and host != self.domain:
            return False
        if not self.sources:
            return True
        return address is not None and any(in_network(address, n) for n in self.sources)

    def matches_target(self, target: Target | None) -> bool:
        """True when the rule has no ``target`` key or ``target`` is one of them."""
        if not self.targets:
            return True
        if target is None:
            return False
        host, port = normalize_host(target.uri.host), target.uri.port or _default_port(target)
        return any(h == host and (p is None or p == port) for h, p in self.targets)

    def edit(self, request: Request) -> None:
        """Apply this rule's header and user actions to an outgoing INVITE."""
        headers = request.headers
        for name in self.remove_headers:
            headers.remove(name)
        if self.remove_headers_matching:
            doomed = {
                header_key(name)
                for name, _ in headers.items()
                if header_key(name) not in PROTECTED_HEADERS
                and any(p.search(canonical_name(name)) for p in self.remove_headers_matching)
            }
            for key in doomed:
                headers.remove(key)
        for name, value in self.set_headers:
            headers.set(name, value)
        for name, value in self.add_headers:
            headers.add(name, value)
        if self.request_user is not None:
            _rewrite_request_uri(request, self.request_user)
        if self.from_user is not None:
            _rewrite_name_addr(request, "From", self.from_user)
        if self.to_user is not None:
            _rewrite_name_addr(request, "To", self.to_user)


class Rules(CallFeature):
    """ICallFeature applying ordered rules to outgoing INVITEs and failure responses."""

    def __init__(self, rules: Sequence[Rule], key: str = "rules") -> None:
        self.rules = tuple(rules)
        #: the CallInfo.data key of the rules a call matched (one per plugin instance)
        self.key = key
        self._need_address = any(r.sources for r in self.rules)

    def matching(self, call: CallInfo, target: Target | None) -> Iterator[Rule]:
        """The rules that apply to ``call`` when calling ``target``, in order."""
        matched = cast("tuple[Rule, ...]", call.data.get(self.key, ()))
        for rule in matched:
            if rule.matches_target(target):
                yield rule
                if rule.last:
                    return

    def call_started(self, call: CallInfo, request: Request) -> Reject | None:
        """Note the rules whose call-level keys match the INVITE as it arrived."""
        ruri = request.request_uri
        host = normalize_host(ruri.host) if ruri.host else ""
        address = ip_address(call.context.source.host) if self._need_address else None
        matched = tuple(r for r in self.rules if r.matches_call(ruri.user, host, address))
        if matched:
            call.data[self.key] = matched
        return None

    def request_out(self, call: CallInfo, request: Request, target: Target) -> Reject | None:
        """Edit the INVITE for ``target`` with every rule that applies."""
        for rule in self.matching(call, target):
            rule.edit(request)
        return None

    def call_failed(self, call: CallInfo, response: Response) -> Reject | None:
        """Translate the caller's final response when a matching rule says so."""
        status = response.status
        for rule in self.matching(call, call.target):
            for translation in rule.replies:
                if translation.matches(status):
                    return Reject(translation.to, translation.reason)
        return None

    def call_ended(self, call: CallInfo, reason: str) -> None:
        """Forget the call's rules."""
        call.data.pop(self.key, None)

    def __repr__(self) -> str:
        return f"<Rules with {len(self.rules)} rules>"


# -- editing messages -------------------------------------------------------------


def _rewrite_request_uri(request: Request, rewrite: Rewrite) -> None:
    uri = request.request_uri
    if uri.user is None or uri.opaque is not None:
        return
    user = rewrite.apply(uri.user)
    if user != uri.user and _valid_user(user, uri.scheme, "Request-URI"):
        request.set_uri(uri.replace(user=user or None))


def _rewrite_name_addr(request: Request, name: str, rewrite: Rewrite) -> None:
    value = request.headers.get(name)
    if value is None:
        return
    try:
        address = parse_name_addr(value, name)
    except SIPParseError:
        return
    uri = address.uri
    if uri.user is None or uri.opaque is not None:
        return
    user = rewrite.apply(uri.user)
    if user != uri.user and _valid_user(user, uri.scheme, name):
        request.headers.set(name, str(replace(address, uri=uri.replace(user=user or None))))


def _valid_user(user: str, scheme: str, where: str) -> bool:
    if scheme == "tel":
        ok = _TEL_USER.fullmatch(user) is not None
    else:
        ok = user == "" or _SIP_USER.fullmatch(user) is not None
    if not ok:
        _log.warn(
            "Rule rewrote the {where} user to {user!r}, which is not a valid user part;"
            " left unchanged",
            where=where,
            user=user,
        )
    return ok


# -- options -----------------------------------------------------------------------


def make_plugin(options: Mapping[str, Any], context: PluginContext) -> Rules:
    """The plugin entry point: validate the options and build the feature."""
    return Rules(parse_rules(options, context), key=f"rules:{context.key}")


def parse_rules(options: Mapping[str, Any], context: PluginContext) -> tuple[Rule, ...]:
    """Validate the plugin's options into rules; ConfigError (via context) on any mistake."""
    check_known_keys(options, "", PLUGIN_KEYS, context)
    rules = table_array(options, "", "rule", context, required=True)
    return tuple(_rule(entry, f"rule[{i}]", context) for i, entry in enumerate(rules))


def _rule(entry: object, key: str, context: PluginContext) -> Rule:
    if not isinstance(entry, dict):
        raise context.error(key, "must be a table ([[plugin.rule]])")
    check_known_keys(entry, key, RULE_KEYS, context)
    prefix = option(entry, key, "user_prefix", str, context)
    regex = option(entry, key, "user_regex", str, context)
    domain = option(entry, key, "domain", str, context)
    if domain is not None:
        domain = _domain(domain, f"{key}.domain", context)
    sources = _networks(entry.get("source"), f"{key}.source", context)
    targets = _targets(entry.get("target"), f"{key}.target", context)
    rewrites = {name: _rewrite(entry.get(name), f"{key}.{name}", context) for name in USER_KEYS}
    remove = _names(entry.get("remove_headers"), f"{key}.remove_headers", context)
    matching = _patterns(
        entry.get("remove_headers_matching"), f"{key}.remove_headers_matching", context
    )
    set_ = _header_values(entry.get("set_headers"), f"{key}.set_headers", context, many=False)
    add = _header_values(entry.get("add_headers"), f"{key}.add_headers", context, many=True)
    replies = _replies(entry.get("replies"), f"{key}.replies", context)
    last = option(entry, key, "last", bool, context) or False
    rule = Rule(
        user_prefix=prefix or None,
        user_regex=_compile(regex, f"{key}.user_regex", context) if regex is not None else None,
        domain=domain,
        sources=sources,
        targets=targets,
        request_user=rewrites["request_user"],
        from_user=rewrites["from_user"],
        to_user=rewrites["to_user"],
        remove_headers=remove,
        remove_headers_matching=matching,
        set_headers=set_,
        add_headers=add,
        replies=replies,
        last=last,
    )
    if not (any(rewrites.values()) or remove or matching or set_ or add or replies or last):
        raise context.error(
            key,
            "does nothing: give it an action (request_user, from_user, to_user,"
            " remove_headers, remove_headers_matching, set_headers, add_headers, replies)",
        )
    return rule


def _compile(text: str, key: str, context: PluginContext, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(text, flags)
    except re.error as e:
        raise context.error(key, f"{text!r} is not a valid regular expression: {e}") from None


def _rewrite(value: object, key: str, context: PluginContext) -> Rewrite | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise context.error(key, "must be a table: { pattern = '^0', replace = '+44' }")
    check_known_keys(value, key, REWRITE_KEYS, context)
    pattern = option(value, key, "pattern", str, context)
    template = option(value, key, "replace", str, context)
    if pattern is None or template is None:
        raise context.error(key, "needs both 'pattern' and 'replace'")
    count = option(value, key, "count", int, context)
    if count is not None and count < 0:
        raise context.error(f"{key}.count", "must be 0 (every match) or more")
    compiled = _compile(pattern, f"{key}.pattern", context)
    try:
        compiled.sub(template, "")  # parses the template: bad group references fail here
    except (re.error, IndexError) as e:
        raise context.error(
            f"{key}.replace", f"{template!r} is not a valid replacement: {e}"
        ) from None
    return Rewrite(compiled, template, 1 if count is None else count)


def _patterns(value: object, key: str, context: PluginContext) -> tuple[re.Pattern[str], ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise context.error(key, "must be a non-empty list of regular expressions")
    out = []
    for i, text in enumerate(value):
        if not isinstance(text, str) or not text:
            raise context.error(f"{key}[{i}]", f"must be a regular expression, not {text!r}")
        out.append(_compile(text, f"{key}[{i}]", context, re.IGNORECASE))
    return tuple(out)


def _header_name(name: object, key: str, context: PluginContext) -> str:
    if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
        raise context.error(key, f"{name!r} is not a header name")
    if header_key(name) in PROTECTED_HEADERS:
        raise context.error(
            key,
            f"{canonical_name(name)} belongs to the server and cannot be changed"
            + (" (use from_user / to_user)" if header_key(name) in ("from", "to") else ""),
        )
    return canonical_name(name)


def _names(value: object, key: str, context: PluginContext) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise context.error(key, "must be a non-empty list of header names")
    return tuple(_header_name(n, f"{key}[{i}]", context) for i, n in enumerate(value))


def _header_values(
    value: object, key: str, context: PluginContext, *, many: bool
) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise context.error(key, 'must be a table of header names and values: { "X-A" = "1" }')
    out: list[tuple[str, str]] = []
    for name, values in value.items():
        full = f"{key}.{name}"
        header = _header_name(name, full, context)
        items = values if many and isinstance(values, list) else [values]
        if not items:
            raise context.error(full, "must not be an empty list")
        for item in items:
            if not isinstance(item, str) or any(c in item for c in "\r\n\0"):
                raise context.error(
                    full,
                    f"must be a header value on one line{' (or a list of them)' if many else ''},"
                    f" not {item!r}",
                )
            out.append((header, item.strip(" \t")))
    return tuple(out)


def _replies(value: object, key: str, context: PluginContext) -> tuple[Translation, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise context.error(key, "must be a list of tables: [{ status = 486, to = 480 }]")
    out = []
    for i, entry in enumerate(value):
        item = f"{key}[{i}]"
        if not isinstance(entry, dict):
            raise context.error(item, "must be a table: { status = 486, to = 480 }")
        check_known_keys(entry, item, REPLY_KEYS, context)
        if "status" not in entry or "to" not in entry:
            raise context.error(item, "needs 'status' (what to translate) and 'to'")
        low, high = _status_range(entry["status"], f"{item}.status", context)
        to = option(entry, item, "to", int, context)
        assert to is not None  # checked present above
        if not 400 <= to <= 699:
            raise context.error(f"{item}.to", "must be a final error status (400 to 699)")
        reason = option(entry, item, "reason", str, context)
        if reason is not None and (not reason or not reason.isprintable()):
            raise context.error(f"{item}.reason", "must be a non-empty line of text")
        out.append(Translation(low, high, to, reason))
    return tuple(out)


def _status_range(value: object, key: str, context: PluginContext) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and 300 <= value <= 699:
        return value, value
    if isinstance(value, str):
        m = _STATUS_CLASS.fullmatch(value.lower())
        if m is not None:
            first = int(m.group(1)) * 100
            return first, first + 99
    raise context.error(
        key, f"must be a status code (300 to 699) or a class ('4xx', '5xx'...), not {value!r}"
    )


def _networks(value: object, key: str, context: PluginContext) -> tuple[IPNetwork, ...]:
    if value is None:
        return ()
    single = isinstance(value, str)
    if single:
        value = [value]
    if not isinstance(value, list) or not value:
        raise context.error(key, "must be a network (CIDR) or a non-empty list of them")
    out: list[IPNetwork] = []
    for i, text in enumerate(value):
        item = key if single else f"{key}[{i}]"
        if not isinstance(text, str):
            raise context.error(item, f"must be a string, not {text!r}")
        out.append(network(text, item, context))
    return tuple(out)


def _targets(value: object, key: str, context: PluginContext) -> tuple[tuple[str, int | None], ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise context.error(key, "must be a host or host:port, or a non-empty list of them")
    out = []
    for i, text in enumerate(value):
        item = f"{key}[{i}]"
        if not isinstance(text, str) or not text:
            raise context.error(item, f"must be a host or host:port, not {text!r}")
        try:
            uri = parse_uri(f"sip:{_bracketed(text)}")
        except SIPParseError as e:
            raise context.error(item, f"{text!r} is not a host or host:port: {e.reason}") from None
        if uri.user is not None or uri.params or uri.headers:
            raise context.error(item, f"{text!r} is not a host or host:port")
        out.append((normalize_host(uri.host), uri.port))
    return tuple(out)


def _domain(domain: str, key: str, context: PluginContext) -> str:
    try:
        uri = parse_uri(f"sip:{_bracketed(domain)}")
    except SIPParseError:
        uri = None
    if uri is None or uri.port is not None or uri.params or uri.headers or uri.user:
        raise context.error(key, f"{domain!r} is not a host name or IP address")
    return normalize_host(uri.host)


def _bracketed(value: str) -> str:
    """A bare IPv6 address in brackets, so no port is read from it."""
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return value
    return f"[{value}]"


def _default_port(target: Target) -> int:
    uri = target.uri
    tls = uri.scheme == "sips" or (target.transport or uri.transport or "").lower() == "tls"
    return 5061 if tls else 5060
