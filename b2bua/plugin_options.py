"""Helpers for validating a plugin's options in ``make_plugin``.

Each helper reads from an options table (the plugin's own, or one of its
sub-tables such as ``[[plugin.route]]``) and raises ``context.error(key, reason)``
(a :class:`~b2bua.config.ConfigError` naming file, line and key) on a mistake.
``key`` is always the key of the table being read, relative to the plugin's
table: ``""`` for the plugin's own table, ``"route[1]"`` for a sub-table; the
helpers name the offending option below it (``"route[1].timeout"``).

The bundled plugins use these; third-party plugins may too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, overload

from .sip import SIPParseError, parse_uri

if TYPE_CHECKING:
    from .plugin import PluginContext

__all__ = [
    "IPAddress",
    "IPNetwork",
    "MatchKeys",
    "check_known_keys",
    "domain",
    "in_network",
    "ip_address",
    "match_keys",
    "network",
    "normalize_host",
    "option",
    "seconds",
    "subkey",
    "table_array",
    "user_prefix",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

T = TypeVar("T")

_KIND_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}


def subkey(key: str, name: str) -> str:
    """The key of option ``name`` in the table at ``key`` (just ``name`` when ``key`` is "")."""
    return f"{key}.{name}" if key else name


def check_known_keys(
    table: Mapping[str, Any], key: str, allowed: Sequence[str], context: PluginContext
) -> None:
    """Refuse the first option of ``table`` that is not in ``allowed``."""
    for name in table:
        if name not in allowed:
            raise context.error(
                subkey(key, name), f"unknown key (known keys: {', '.join(sorted(allowed))})"
            )


def option(
    table: Mapping[str, Any], key: str, name: str, kind: type[T], context: PluginContext
) -> T | None:
    """``table[name]`` checked to be a ``kind``, or None when absent.

    ``kind`` is ``str``, ``int``, ``float`` or ``bool``.  Integers are accepted (and
    returned as floats) where a float is asked for; true and false are not numbers.
    """
    if name not in table:
        return None
    value = table[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise context.error(subkey(key, name), f"must be {_KIND_NAMES[kind]}, not {value!r}")
    return value


def seconds(
    table: Mapping[str, Any],
    key: str,
    name: str,
    context: PluginContext,
    zero_disables: bool = False,
) -> float | None:
    """A duration option: a positive number of seconds (or 0 if ``zero_disables``), or None."""
    value = option(table, key, name, float, context)
    if value is None or value > 0 or (zero_disables and value == 0):
        return value
    if zero_disables:
        raise context.error(subkey(key, name), "must not be negative (0 disables it)")
    raise context.error(subkey(key, name), "must be a positive number of seconds")


@overload
def table_array(
    table: Mapping[str, Any],
    key: str,
    name: str,
    context: PluginContext,
    *,
    required: Literal[True],
) -> list[Any]: ...
@overload
def table_array(
    table: Mapping[str, Any], key: str, name: str, context: PluginContext, *, required: bool = False
) -> list[Any] | None: ...
def table_array(
    table: Mapping[str, Any],
    key: str,
    name: str,
    context: PluginContext,
    *,
    required: bool = False,
) -> list[Any] | None:
    """The array of tables ``[[plugin.NAME]]`` at ``table[name]`` (not empty), or None
    when absent and not ``required``.  Its entries are left for the caller to check.

    The messages name it ``[[plugin.NAME]]``: for arrays in the plugin's own table."""
    entries = table.get(name)
    if entries is None and (required or name not in table):
        if required:
            raise context.error(key, f"needs at least one {name} ([[plugin.{name}]] table)")
        return None
    if not isinstance(entries, list) or not entries:
        raise context.error(
            subkey(key, name), f"must be a non-empty array of tables ([[plugin.{name}]])"
        )
    return entries


def network(text: str, key: str, context: PluginContext) -> IPNetwork:
    """An IPv4 or IPv6 network in CIDR notation, or a single address."""
    try:
        return ipaddress.ip_network(text)
    except ValueError as e:
        raise context.error(
            key, f"{text!r} is not an IPv4 or IPv6 address or network (CIDR): {e}"
        ) from None


def ip_address(host: str) -> IPAddress | None:
    """``host`` as an IP address, or None when it is not one (a host name)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normalize_host(host: str) -> str:
    """Lower case, no IPv6 brackets, no trailing dot; IP addresses in canonical form."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.rstrip(".")
    address = ip_address(host)
    return address.compressed if address is not None else host


def in_network(address: IPAddress | None, network: IPNetwork) -> bool:
    """Whether ``address`` is in ``network``; an IPv4 peer seen through a dual-stack
    socket (``::ffff:192.0.2.1``) counts as its IPv4 address.  None is in no network."""
    if address is None:
        return False
    if address in network:
        return True
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped is not None and mapped in network


def user_prefix(prefix: str, key: str, context: PluginContext) -> None:
    """Refuse a ``prefix`` that is not valid in the user part of a SIP URI."""
    try:
        uri = parse_uri(f"sip:{prefix}@invalid")
    except SIPParseError:
        uri = None
    if uri is None or uri.user != prefix or uri.password is not None:
        raise context.error(key, f"{prefix!r} is not valid in the user part of a SIP URI")


def domain(text: str, key: str, context: PluginContext) -> str:
    """A host name or IP address (IPv6 in brackets or not), normalized
    (:func:`normalize_host`)."""
    host = text.strip("[]") if text.startswith("[") else text
    if ip_address(host) is None:
        try:
            uri = parse_uri(f"sip:{text}")
        except SIPParseError:
            uri = None
        if uri is None or uri.port is not None or uri.params or uri.headers or uri.user:
            raise context.error(key, f"{text!r} is not a host name or IP address")
    return normalize_host(text)


class MatchKeys(NamedTuple):
    """The validated match keys of a route or rule table; None where absent."""

    user_prefix: str | None
    domain: str | None
    source: IPNetwork | None
    source_port: int | None


def match_keys(table: Mapping[str, Any], key: str, context: PluginContext) -> MatchKeys:
    """The ``user_prefix``, ``domain``, ``source`` (a network) and ``source_port``
    options of the table at ``key``, validated."""
    prefix = option(table, key, "user_prefix", str, context)
    if prefix:
        user_prefix(prefix, subkey(key, "user_prefix"), context)
    host = option(table, key, "domain", str, context)
    if host is not None:
        host = domain(host, subkey(key, "domain"), context)
    source = option(table, key, "source", str, context)
    net = network(source, subkey(key, "source"), context) if source is not None else None
    port = option(table, key, "source_port", int, context)
    if port is not None and not 1 <= port <= 65535:
        raise context.error(subkey(key, "source_port"), "must be between 1 and 65535")
    return MatchKeys(prefix, host, net, port)
