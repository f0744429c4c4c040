"""The server's TOML configuration, loaded into frozen, validated dataclasses.

Every problem is a :class:`ConfigError` naming the file, the line (where one can
be found), the key and the reason, so an operator never has to read a traceback.
The schema is documented in README.md ("Configuration") and in etc/b2bua.toml.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from .auth.users import UserEntry, UsersFileError, parse_users_file
from .location import canonical_host
from .routing import DEFAULT_FAILOVER_STATUSES

#: The configuration used when none is given: a copy of etc/b2bua.toml inside the package.
DEFAULT_CONFIG_NAME = "b2bua.toml"

TRANSPORTS = ("udp", "tcp", "tls")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


class ConfigError(Exception):
    """A configuration that cannot be used; the message says where and why."""

    def __init__(self, path: str, key: str, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason
        self.line = line


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """One listening socket: transport, address and (for TLS) certificate files."""

    transport: str
    host: str
    port: int
    certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    require_client_certificate: bool = False


@dataclass(frozen=True, slots=True)
class TLSClientConfig:
    """How outgoing TLS connections verify peers and (optionally) present a certificate."""

    ca_certificates: str | None = None
    certificate: str | None = None
    private_key: str | None = None


@dataclass(frozen=True, slots=True)
class TimersConfig:
    """RFC 3261 timer base values, in seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    #: transaction timers fire on multiples of this (at most this late), sharing wake-ups
    resolution: float = 0.01


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Parser limits (see b2bua.sip.Limits)."""

    max_message_size: int = 65535
    max_headers: int = 256
    max_line_length: int = 8192
    max_body_size: int = 65535


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Connection handling."""

    tcp_idle_timeout: float = 600.0
    connect_timeout: float = 10.0
    udp_mtu: int = 1500
    udp_receive_buffer: int = 4194304


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Log level and the optional full SIP message trace."""

    level: str = "info"
    format: str = "text"
    sip_trace: bool = False


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Identity and lifecycle."""

    user_agent: str = "b2bua"
    drain_time: float = 32.0
    stats_interval: float = 60.0


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """How calls are bridged: failover, timeouts, limits, topology hiding."""

    max_duration: float = 14400.0
    answer_timeout: float = 5.0
    ring_timeout: float = 0.0
    failover_statuses: tuple[int, ...] = tuple(sorted(DEFAULT_FAILOVER_STATUSES))
    pass_headers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistrarConfig:
    """The registrar (RFC 3261 10) and its location service.

    ``domains`` are hosts in canonical form (lower case, IPv6 without brackets);
    ``database`` is an absolute path ("" keeps registrations in memory only).
    """

    enabled: bool = False
    domains: tuple[str, ...] = ()
    min_expires: int = 60
    max_expires: int = 7200
    default_expires: int = 3600
    database: str = "var/registrations.sqlite"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Digest authentication of incoming requests (README "Authentication").

    On when there are users (``users`` or ``users_file``).  ``realm`` is resolved
    (the configured one, else the first registrar domain, else "b2bua");
    ``file_users`` holds the parsed lines of ``users_file`` (an absolute path).
    Secrets are kept out of ``repr``.
    """

    realm: str = "b2bua"
    users: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    users_file: str | None = None
    file_users: tuple[UserEntry, ...] = field(default=(), repr=False)
    trusted_networks: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("REGISTER", "INVITE")
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    nonce_lifetime: float = 300.0
    nonce_secret: str | None = field(default=None, repr=False)
    max_failures: int = 20
    failure_window: float = 300.0
    ban_time: float = 300.0
    ban_answer: str = "403"

    @property
    def enabled(self) -> bool:
        """True when requests are authenticated (some users are configured)."""
        return bool(self.users or self.users_file)


@dataclass(frozen=True, slots=True)
class PluginConfig:
    """One ``[[plugin]]`` table: the module to load and its own options.

    ``options`` is the table without ``module``, as parsed from TOML; the plugin
    validates it.  ``key`` names the table in error messages ("plugin[0]"),
    ``line`` is the line of its ``[[plugin]]`` header and ``lines`` maps the keys
    inside it ("plugin[0].route[1].targets") to their lines, best effort.
    """

    module: str
    options: dict[str, Any] = field(hash=False)  # a dict: Config stays hashable
    key: str
    line: int | None = None
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, key: str) -> int | None:
        """The line of ``key`` or of the nearest enclosing key that has one."""
        while key:
            line = self.lines.get(key)
            if line is not None:
                return line
            key = _parent_key(key)
        return self.line


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    path: str
    listen: tuple[ListenConfig, ...]
    server: ServerConfig = field(default_factory=ServerConfig)
    timers: TimersConfig = field(default_factory=TimersConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    tls_client: TLSClientConfig = field(default_factory=TLSClientConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    plugins: tuple[PluginConfig, ...] = ()
    plugin_dirs: tuple[str, ...] = ()
    registrar: RegistrarConfig = field(default_factory=RegistrarConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)


T = TypeVar("T")


class _Reader:
    """Walks the parsed TOML, checking types and refusing unknown keys."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str) -> int | None:
        """Best-effort line number of a dotted key such as ``listen[1].port``."""
        parts = [p for p in re.split(r"[.\[\]]", key) if p]
        if not parts:
            return None
        table_name, leaf = parts[0], parts[-1]
        index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        start = 0
        if len(parts) > 1:
            seen = -1
            pattern = re.compile(rf"^\s*\[\[?\s*{re.escape(table_name)}\s*\]\]?\s*(#.*)?$")
            for n, line in enumerate(self.lines):
                if pattern.match(line):
                    seen += 1
                    if index is None or seen == index:
                        start = n
                        break
            else:
                return None
            if leaf == table_name or (index is not None and leaf == parts[1]):
                return start + 1
        key_re = re.compile(rf"^\s*{re.escape(leaf)}\s*=")
        for n in range(start, len(self.lines)):
            if n > start and self.lines[n].lstrip().startswith("[") and len(parts) > 1:
                break
            if key_re.match(self.lines[n]):
                return n + 1
        return None

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.path, key, reason, self.line_of(key))

    def table(self, data: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.error(key, "must be a table")
        for name in data:
            if name not in allowed:
                full = f"{key}.{name}" if key else name
                known = ", ".join(sorted(allowed))
                raise self.error(full, f"unknown key (known keys: {known})")
        return data

    def get(self, data: dict[str, Any], key: str, name: str, kind: type[T], default: T) -> T:
        if name not in data:
            return default
        value = data[name]
        full = f"{key}.{name}" if key else name
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(full, f"must be {_KIND_NAMES.get(kind, kind.__name__)}, not {value!r}")
        return value

    def check(self, ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise self.error(key, reason)


_KIND_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
}


def _section(
    reader: _Reader, data: dict[str, Any], name: str, cls: Callable[..., T], defaults: T
) -> T:
    raw = data.get(name, {})
    fields_ = {f: getattr(defaults, f) for f in defaults.__dataclass_fields__}  # type: ignore[attr-defined]
    table = reader.table(raw, name, set(fields_))
    values = {}
    for fname, default in fields_.items():
        kind: type[Any] = type(default) if default is not None else str
        values[fname] = reader.get(table, name, fname, kind, default)
    return cls(**values)


def _check_host(reader: _Reader, key: str, host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise reader.error(key, f"{host!r} is not an IPv4 or IPv6 address") from None


def _check_file(reader: _Reader, key: str, path: str | None, base: str) -> str | None:
    if path is None:
        return None
    full = path if os.path.isabs(path) else os.path.join(base, path)
    if not os.path.isfile(full):
        raise reader.error(key, f"file {full!r} does not exist")
    if not os.access(full, os.R_OK):
        raise reader.error(key, f"file {full!r} is not readable")
    return full


def _listen(reader: _Reader, data: dict[str, Any], base: str) -> tuple[ListenConfig, ...]:
    entries = data.get("listen")
    if entries is None:
        raise reader.error("listen", "at least one [[listen]] table is required")
    if not isinstance(entries, list) or not entries:
        raise reader.error("listen", "must be a non-empty array of tables ([[listen]])")
    out: list[ListenConfig] = []
    allowed = set(ListenConfig.__dataclass_fields__)
    for i, entry in enumerate(entries):
        key = f"listen[{i}]"
        table = reader.table(entry, key, allowed)
        for required in ("transport", "host", "port"):
            reader.check(required in table, key, f"missing required key {required!r}")
        transport = reader.get(table, key, "transport", str, "").lower()
        reader.check(
            transport in TRANSPORTS, f"{key}.transport", f"must be one of {', '.join(TRANSPORTS)}"
        )
        host = reader.get(table, key, "host", str, "")
        _check_host(reader, f"{key}.host", host)
        port = reader.get(table, key, "port", int, 0)
        reader.check(0 <= port <= 65535, f"{key}.port", "must be between 0 and 65535")
        cert = _check_file(reader, f"{key}.certificate", table.get("certificate"), base)
        pkey = _check_file(reader, f"{key}.private_key", table.get("private_key"), base)
        cas = _check_file(reader, f"{key}.ca_certificates", table.get("ca_certificates"), base)
        for name in ("certificate", "private_key", "ca_certificates"):
            reader.get(table, key, name, str, None)  # type check
        require = reader.get(table, key, "require_client_certificate", bool, False)
        if transport == "tls":
            reader.check(cert is not None, key, "a tls listener needs 'certificate'")
            reader.check(pkey is not None, key, "a tls listener needs 'private_key'")
            reader.check(
                not require or cas is not None,
                f"{key}.require_client_certificate",
                "needs 'ca_certificates' to verify client certificates",
            )
        else:
            for name in ("certificate", "private_key", "ca_certificates"):
                reader.check(name not in table, f"{key}.{name}", "only a tls listener takes it")
        out.append(ListenConfig(transport, host, port, cert, pkey, cas, require))
    seen = set()
    for i, lc in enumerate(out):
        kind = "udp" if lc.transport == "udp" else "stream"
        ident = (kind, lc.host, lc.port)
        if lc.port and ident in seen:
            raise reader.error(f"listen[{i}]", f"{lc.host} port {lc.port} is configured twice")
        seen.add(ident)
    return tuple(out)


def parse_config(text: str, path: str = "<config>") -> Config:
    """Parse and validate configuration text; raise ConfigError when it is unusable."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(
            path, "", f"not valid TOML: {e}", int(m.group(1)) if m else None
        ) from None
    reader = _Reader(path, text)
    known = {"listen", "server", "timers", "limits", "transport", "tls_client", "logging", "bridge"}
    known |= {"plugin", "plugin_dirs"}
    known |= {"registrar"}
    known |= {"auth"}
    reader.table(data, "", known)
    base = os.path.dirname(os.path.abspath(path)) if not path.startswith("<") else os.getcwd()
    listen = _listen(reader, data, base)
    server = _section(reader, data, "server", ServerConfig, ServerConfig())
    reader.check(server.drain_time >= 0, "server.drain_time", "must not be negative")
    reader.check(server.stats_interval > 0, "server.stats_interval", "must be positive")
    timers = _section(reader, data, "timers", TimersConfig, TimersConfig())
    for name in ("t1", "t2", "t4"):
        reader.check(getattr(timers, name) > 0, f"timers.{name}", "must be positive")
    reader.check(timers.t2 >= timers.t1, "timers.t2", "must not be smaller than t1")
    reader.check(
        0 <= timers.resolution <= 0.1, "timers.resolution", "must be between 0 and 0.1 seconds"
    )
    limits = _section(reader, data, "limits", LimitsConfig, LimitsConfig())
    for name in LimitsConfig.__dataclass_fields__:
        reader.check(getattr(limits, name) > 0, f"limits.{name}", "must be positive")
    transport = _section(reader, data, "transport", TransportConfig, TransportConfig())
    reader.check(transport.tcp_idle_timeout > 0, "transport.tcp_idle_timeout", "must be positive")
    reader.check(transport.connect_timeout > 0, "transport.connect_timeout", "must be positive")
    reader.check(transport.udp_mtu >= 576, "transport.udp_mtu", "must be at least 576")
    reader.check(
        transport.udp_receive_buffer >= 0,
        "transport.udp_receive_buffer",
        "must not be negative (0 keeps the system default)",
    )
    tls_raw = reader.table(
        data.get("tls_client", {}), "tls_client", set(TLSClientConfig.__dataclass_fields__)
    )
    tls_client = TLSClientConfig(
        *(
            _check_file(
                reader,
                f"tls_client.{name}",
                reader.get(tls_raw, "tls_client", name, str, None),
                base,
            )
            for name in ("ca_certificates", "certificate", "private_key")
        )
    )
    reader.check(
        (tls_client.certificate is None) == (tls_client.private_key is None),
        "tls_client",
        "'certificate' and 'private_key' go together",
    )
    logging = _section(reader, data, "logging", LoggingConfig, LoggingConfig())
    reader.check(
        logging.level in LOG_LEVELS, "logging.level", f"must be one of {', '.join(LOG_LEVELS)}"
    )
    reader.check(
        logging.format in LOG_FORMATS, "logging.format", f"must be one of {', '.join(LOG_FORMATS)}"
    )
    bridge = _bridge(reader, data)
    plugins = _plugins(reader, data)
    plugin_dirs = _plugin_dirs(reader, data, base)
    return Config(
        path,
        listen,
        server,
        timers,
        limits,
        transport,
        tls_client,
        logging,
        bridge,
        plugins,
        plugin_dirs,
        registrar=_registrar(reader, data),
        auth=_auth(reader, data, base),
    )


def _bridge(reader: _Reader, data: dict[str, Any]) -> BridgeConfig:
    table = reader.table(data.get("bridge", {}), "bridge", set(BridgeConfig.__dataclass_fields__))
    d = BridgeConfig()
    max_duration = reader.get(table, "bridge", "max_duration", float, d.max_duration)
    reader.check(max_duration > 0, "bridge.max_duration", "must be positive")
    answer = reader.get(table, "bridge", "answer_timeout", float, d.answer_timeout)
    reader.check(answer > 0, "bridge.answer_timeout", "must be positive")
    ring = reader.get(table, "bridge", "ring_timeout", float, d.ring_timeout)
    reader.check(ring >= 0, "bridge.ring_timeout", "must not be negative (0 disables it)")
    statuses = reader.get(table, "bridge", "failover_statuses", list, list(d.failover_statuses))
    reader.check(
        all(isinstance(c, int) and not isinstance(c, bool) and 300 <= c <= 699 for c in statuses),
        "bridge.failover_statuses",
        "must be a list of final status codes (300 to 699)",
    )
    names = reader.get(table, "bridge", "pass_headers", list, list(d.pass_headers))
    reader.check(
        all(isinstance(n, str) and n for n in names),
        "bridge.pass_headers",
        "must be a list of header names",
    )
    return BridgeConfig(max_duration, answer, ring, tuple(statuses), tuple(names))


def _registrar(reader: _Reader, data: dict[str, Any]) -> RegistrarConfig:
    """The [registrar] table (README "Registrar"): expiry bounds, domains, database."""
    name = "registrar"
    table = reader.table(data.get(name, {}), name, set(RegistrarConfig.__dataclass_fields__))
    d = RegistrarConfig()
    enabled = reader.get(table, name, "enabled", bool, d.enabled)
    raw_domains = reader.get(table, name, "domains", list, list(d.domains))
    domains: list[str] = []
    for i, domain in enumerate(raw_domains):
        reader.check(
            isinstance(domain, str) and _is_domain(domain),
            f"{name}.domains",
            f"{domain!r} (domains[{i}]) is not a host name or IP address",
        )
        if canonical_host(domain) not in domains:
            domains.append(canonical_host(domain))
    reader.check(
        not enabled or bool(domains),
        f"{name}.domains" if "domains" in table else f"{name}.enabled",
        'an enabled registrar needs at least one domain (domains = ["example.com"])',
    )
    expires = {}
    for key in ("min_expires", "max_expires", "default_expires"):
        value = reader.get(table, name, key, int, getattr(d, key))
        reader.check(value > 0, f"{name}.{key}", "must be a positive number of seconds")
        expires[key] = value
    low, high = expires["min_expires"], expires["max_expires"]
    reader.check(
        low <= 3600,
        f"{name}.min_expires",
        "must not exceed 3600 (RFC 3261 10.3 refuses only intervals under an hour)",
    )
    reader.check(high >= low, f"{name}.max_expires", "must not be smaller than min_expires")
    reader.check(
        low <= expires["default_expires"] <= high,
        f"{name}.default_expires",
        "must be between min_expires and max_expires",
    )
    database = reader.get(table, name, "database", str, d.database)
    if database:
        database = os.path.abspath(database)  # relative to the working directory
    if database and enabled:
        problem = _unwritable(database)
        reader.check(problem is None, f"{name}.database", problem or "")
    return RegistrarConfig(enabled, tuple(domains), low, high, expires["default_expires"], database)


#: Methods [auth] methods may name (requests outside a dialog; never ACK or CANCEL).
AUTH_METHODS = ("INVITE", "REGISTER", "MESSAGE", "SUBSCRIBE", "PUBLISH", "REFER", "OPTIONS")


def _auth(reader: _Reader, data: dict[str, Any], base: str) -> AuthConfig:
    """The [auth] table (README "Authentication"): users, trusted networks, nonces, bans."""
    name = "auth"
    table = reader.table(
        data.get(name, {}), name, set(AuthConfig.__dataclass_fields__) - {"file_users"}
    )
    d = AuthConfig()

    def key(k: str) -> str:
        return f"{name}.{k}"

    realm = reader.get(table, name, "realm", str, "")
    if "realm" in table:
        reader.check(bool(realm) and '"' not in realm, key("realm"), "must be a non-empty name")
    else:  # the first registrar domain (validated by then), else "b2bua"
        registrar = data.get("registrar")
        domains = registrar.get("domains") if isinstance(registrar, dict) else None
        if isinstance(domains, list) and domains and isinstance(domains[0], str):
            realm = canonical_host(domains[0])
        else:
            realm = d.realm
    users_raw = table.get("users", {})
    reader.check(isinstance(users_raw, dict), key("users"), 'must be a table (alice = "password")')
    users: list[tuple[str, str]] = []
    for user, password in users_raw.items():
        reader.check(
            bool(user) and ":" not in user, key("users"), f"bad user name {user!r} (no ':')"
        )
        reader.check(
            isinstance(password, str) and bool(password),
            key("users"),
            f"the password of {user!r} must be a non-empty string",
        )
        users.append((user, password))
    users_file = _check_file(
        reader, key("users_file"), reader.get(table, name, "users_file", str, None), base
    )
    file_users: tuple[UserEntry, ...] = ()
    if users_file is not None:
        file_users = _users_file(reader, users_file, realm, {u for u, _ in users})
    networks = reader.get(table, name, "trusted_networks", list, [])
    for i, network in enumerate(networks):
        where = key("trusted_networks")
        reader.check(isinstance(network, str), where, f'[{i}] must be a string like "10.0.0.0/8"')
        try:
            ipaddress.ip_network(network)
        except ValueError as error:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f" (did you mean {ipaddress.ip_network(network, strict=False)}?)"
            raise reader.error(where, f"[{i}] {network!r}: {error}{hint}") from None
    methods = reader.get(table, name, "methods", list, list(d.methods))
    reader.check(
        all(isinstance(m, str) and m in AUTH_METHODS for m in methods),
        key("methods"),
        f"must be a list of methods among {', '.join(AUTH_METHODS)}",
    )
    algorithms = reader.get(table, name, "algorithms", list, list(d.algorithms))
    reader.check(
        bool(algorithms)
        and len(set(algorithms)) == len(algorithms)
        and all(a in ("SHA-256", "MD5") for a in algorithms),
        key("algorithms"),
        'must list "SHA-256" and/or "MD5" (the preferred first)',
    )
    if "MD5" not in algorithms:
        lacking = [e.user for e in file_users if e.ha1_sha256 is None]
        reader.check(
            not lacking,
            key("algorithms"),
            f"SHA-256 only, but {lacking[:1]} in the users file has no SHA-256 hash",
        )
    lifetime = reader.get(table, name, "nonce_lifetime", float, d.nonce_lifetime)
    reader.check(lifetime > 0, key("nonce_lifetime"), "must be positive")
    secret = reader.get(table, name, "nonce_secret", str, None)
    reader.check(
        secret is None or len(secret) >= 16,
        key("nonce_secret"),
        "must be at least 16 characters (32 random ones are better)",
    )
    max_failures = reader.get(table, name, "max_failures", int, d.max_failures)
    reader.check(max_failures >= 0, key("max_failures"), "must not be negative (0: no bans)")
    window = reader.get(table, name, "failure_window", float, d.failure_window)
    reader.check(window > 0, key("failure_window"), "must be positive")
    ban_time = reader.get(table, name, "ban_time", float, d.ban_time)
    reader.check(ban_time > 0, key("ban_time"), "must be positive")
    ban_answer = reader.get(table, name, "ban_answer", str, d.ban_answer)
    reader.check(ban_answer in ("403", "drop"), key("ban_answer"), 'must be "403" or "drop"')
    return AuthConfig(
        realm,
        tuple(users),
        users_file,
        file_users,
        tuple(networks),
        tuple(methods),
        tuple(algorithms),
        lifetime,
        secret,
        max_failures,
        window,
        ban_time,
        ban_answer,
    )


def _users_file(reader: _Reader, path: str, realm: str, inline: set[str]) -> tuple[UserEntry, ...]:
    """The lines of a users file for ``realm``; errors name the file and its line."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise reader.error("auth.users_file", f"cannot read {path!r}: {error}") from None
    try:
        entries = parse_users_file(text)
    except UsersFileError as error:
        raise ConfigError(path, "auth.users_file", error.reason, error.line) from None
    mine = tuple(e for e in entries if e.realm == realm)
    if entries and not mine:
        raise reader.error(
            "auth.users_file", f"{path!r} has no user in realm {realm!r} (see [auth] realm)"
        )
    for entry in mine:
        if entry.user in inline:
            raise reader.error(
                "auth.users", f"{entry.user!r} is also in {path!r}: keep one of the two"
            )
    return mine


def _is_domain(text: str) -> bool:
    """A host name or IP address (an IPv6 address with or without brackets)."""
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return _HOSTNAME_RE.fullmatch(text) is not None


_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?"
)


def _unwritable(path: str) -> str | None:
    """Why the server could not create or write the file ``path`` (None: it can)."""
    if os.path.exists(path):
        if not os.path.isfile(path):
            return f"{path!r} is not a file"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"file {path!r} is not readable and writable"
        return None
    parent = os.path.dirname(path)
    while not os.path.exists(parent):  # created at start-up
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent!r} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path!r}: directory {parent!r} is not writable"
    return None


_MODULE_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _plugins(reader: _Reader, data: dict[str, Any]) -> tuple[PluginConfig, ...]:
    entries = data.get("plugin", [])
    if not isinstance(entries, list):
        reason = "must be an array of tables ([[plugin]])"
        raise ConfigError(reader.path, "plugin", reason, reader.line_of("plugin[0]"))
    lines = _plugin_key_lines(reader.lines)
    out: list[PluginConfig] = []
    for i, entry in enumerate(entries):
        key = f"plugin[{i}]"
        if not isinstance(entry, dict):
            raise reader.error(key, "must be a table ([[plugin]])")
        module = entry.get("module")
        where = lines.get(f"{key}.module", lines.get(key))
        if module is None:
            raise ConfigError(reader.path, key, "missing required key 'module'", lines.get(key))
        if not isinstance(module, str) or _MODULE_NAME_RE.fullmatch(module) is None:
            raise ConfigError(
                reader.path,
                f"{key}.module",
                f"must be a module name ('static_routes', 'package.module'), not {module!r}",
                where,
            )
        options = {k: v for k, v in entry.items() if k != "module"}
        mine = {k: v for k, v in lines.items() if k == key or k.startswith((key + ".", key + "["))}
        out.append(PluginConfig(module, options, key, lines.get(key), mine))
    return tuple(out)


def _plugin_dirs(reader: _Reader, data: dict[str, Any], base: str) -> tuple[str, ...]:
    dirs = reader.get(data, "", "plugin_dirs", list, [])
    out: list[str] = []
    for i, entry in enumerate(dirs):
        key = f"plugin_dirs[{i}]"
        if not isinstance(entry, str) or not entry:
            raise ConfigError(
                reader.path, key, "must be a directory name", reader.line_of("plugin_dirs")
            )
        full = os.path.normpath(entry if os.path.isabs(entry) else os.path.join(base, entry))
        if not os.path.isdir(full):
            raise ConfigError(
                reader.path,
                key,
                f"directory {full!r} does not exist",
                reader.line_of("plugin_dirs"),
            )
        out.append(full)
    return tuple(out)


def _parent_key(key: str) -> str:
    """``a[1].b`` -> ``a[1]`` -> ``a`` -> ``""``."""
    cut = max(key.rfind("."), key.rfind("["))
    return key[:cut] if cut > 0 else ""


_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_.\s-]+?)\s*=(.*)$")
_INLINE_KEY_RE = re.compile(r"[{,]\s*([A-Za-z0-9_-]+)\s*=")


def _plugin_key_lines(lines: list[str]) -> dict[str, int]:
    """Map keys inside ``[[plugin]]`` tables ("plugin[0].route[1].targets") to lines.

    Best effort, by reading the text: tomllib keeps no positions.  Understands
    ``[[plugin]]``, sub-tables (``[[plugin.route]]``, ``[plugin.x]``), ``key =``
    lines and arrays of inline tables written one table a line.
    """
    out: dict[str, int] = {}
    path: str | None = None  # the table the following keys belong to
    index = -1  # of the current [[plugin]]
    counts: dict[str, int] = {}  # array-of-tables sizes, by resolved array key
    depth = 0  # bracket depth inside a multi-line value
    array = ""  # the key of the multi-line array value
    element = -1
    for number, raw in enumerate(lines, 1):
        code = _STRING_RE.sub('""', raw).split("#", 1)[0]
        if depth > 0:
            stripped = code.strip()
            if depth == 1 and stripped.startswith("{") and path is not None:
                element += 1
                out.setdefault(f"{array}[{element}]", number)
                for name in _INLINE_KEY_RE.findall(stripped):
                    out.setdefault(f"{array}[{element}].{name}", number)
            depth += code.count("[") + code.count("{") - code.count("]") - code.count("}")
            continue
        header = _HEADER_RE.match(code)
        if header is not None:
            parts = [p.strip().strip("\"'") for p in header.group(2).split(".")]
            double = header.group(1) == "[["
            if parts[0] != "plugin":
                path = None
            elif len(parts) == 1:
                index += 1 if double else 0
                path = f"plugin[{index}]"
                counts = {}
                out.setdefault(path, number)
            elif index >= 0:
                resolved = f"plugin[{index}]"
                for part in parts[1:-1]:
                    resolved = f"{resolved}.{part}"
                    if resolved in counts:
                        resolved = f"{resolved}[{counts[resolved] - 1}]"
                resolved = f"{resolved}.{parts[-1]}"
                if double:
                    counts[resolved] = counts.get(resolved, 0) + 1
                    resolved = f"{resolved}[{counts[resolved] - 1}]"
                path = resolved
                out.setdefault(path, number)
            continue
        match = _KEY_RE.match(code)
        if match is None or path is None:
            continue
        name = ".".join(p.strip() for p in match.group(1).split("."))
        full = f"{path}.{name}"
        out.setdefault(full, number)
        value = match.group(2)
        depth = value.count("[") + value.count("{") - value.count("]") - value.count("}")
        if depth > 0:
            array, element = full, -1
            stripped = value.strip()[1:].strip()
            if stripped.startswith("{"):  # the first inline table on the key's own line
                element = 0
                out.setdefault(f"{array}[0]", number)
                for name in _INLINE_KEY_RE.findall(stripped):
                    out.setdefault(f"{array}[0].{name}", number)
    return out


def load_config(path: str | None) -> Config:
    """Load a configuration file, or the embedded default when ``path`` is None."""
    if path is None:
        text = resources.files("b2bua.data").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")
        return parse_config(text, f"<embedded {DEFAULT_CONFIG_NAME}>")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(path, "", f"cannot read the file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "the file is not UTF-8 text") from None
    return parse_config(text, path)
