"""plugins/rules.py: number rewrites, header edits and reply translation, on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from b2bua.config import ConfigError, load_config
from b2bua.interfaces import ICallFeature
from b2bua.plugin import load_plugins
from b2bua.routing import CallInfo, Reject, RequestContext, Target
from b2bua.sip import Address, Request, Response
from b2bua_plugins.rules import Rules
from tests.unit.bridge.harness import CALLEE, CALLEE2, Callee, Caller, Harness, routes
from tests.unit.plugins.conftest import LoadPlugins

HEAD = '\n[[plugin]]\nmodule = "rules"\n'  # lines 5-7
ROOT = Path(__file__).resolve().parents[3]

E164 = """
[[plugin.rule]]
request_user = { pattern = '^00(?=[1-9])', replace = '+' }
to_user = { pattern = '^00(?=[1-9])', replace = '+' }

[[plugin.rule]]
request_user = { pattern = '^0(?=[1-9])', replace = '+44' }
to_user = { pattern = '^0(?=[1-9])', replace = '+44' }
"""


def feature(load: LoadPlugins, text: str) -> Rules:
    [loaded] = load(HEAD + text).loaded
    assert isinstance(loaded.plugin, Rules)
    return loaded.plugin


def bridged_invite(
    rules: Rules,
    uri: str = "sip:bob@127.0.0.1:5060",
    extra: tuple[tuple[str, str], ...] = (),
    caller_address: Address | None = None,
) -> Request:
    """Call through the in-memory bridge with ``rules``; the INVITE the callee got."""
    h = Harness(features=[rules])
    caller = Caller(h, uri=uri) if caller_address is None else Caller(h, caller_address, uri=uri)
    caller.send_invite(extra=extra)
    return Callee(h, CALLEE).invite


def call_info(source: str = "192.0.2.1") -> CallInfo:
    context = RequestContext(Address("UDP", source, 5060), Address("UDP", "127.0.0.1", 5060))
    return CallInfo("a@x", "b@y", context, 0.0)


def outgoing(rules: Rules, ruri: str, target: str, source: str = "192.0.2.1") -> Request:
    """call_started on an INVITE to ``ruri``, then request_out of one to ``target``."""
    info = call_info(source)
    rules.call_started(info, Request("INVITE", ruri))
    out = Request("INVITE", target)
    out.headers.add("From", '"Alice" <sip:alice@127.0.0.1>;tag=abc')
    out.headers.add("To", "<sip:x@127.0.0.1>")
    rules.request_out(info, out, Target.of(target))
    return out


# -- numbers -----------------------------------------------------------------------


def test_it_is_a_call_feature(load: LoadPlugins) -> None:
    assert verifyObject(ICallFeature, feature(load, E164))


@pytest.mark.parametrize(
    ("dialled", "sent"),
    [
        ("02079460000", "+442079460000"),
        ("0049301234", "+49301234"),
        ("+442079460000", "+442079460000"),
        ("1001", "1001"),
        ("000", "000"),
    ],
)
def test_e164_normalisation_on_the_wire(load: LoadPlugins, dialled: str, sent: str) -> None:
    invite = bridged_invite(feature(load, E164), f"sip:{dialled}@127.0.0.1:5060")
    assert invite.request_uri.user == sent
    assert str(invite.request_uri) == f"sip:{sent}@127.0.0.2:5070"
    assert invite.to.uri.user == "bob"  # To is whom the caller called; to_user rewrites it


def test_from_and_to_rewrites_keep_display_names_tags_and_hosts(load: LoadPlugins) -> None:
    rules = feature(
        load,
        "[[plugin.rule]]\nfrom_user = { pattern = '^alice$', replace = '+442079460001' }\n"
        "to_user = { pattern = '^(.*)$', replace = 'x\\1' }\n",
    )
    invite = bridged_invite(rules)
    assert invite.from_.display_name == "Alice"
    assert invite.from_.uri.user == "+442079460001"
    assert invite.from_.tag  # the B leg's tag is still there
    assert invite.from_.uri.host == "127.0.0.1"
    assert invite.to.display_name == "Bob" and invite.to.uri.user == "xbob"
    assert invite.to.tag is None
    assert invite.request_uri.user == "bob"  # to_user leaves the Request-URI alone


def test_an_invalid_rewrite_result_is_left_unchanged(load: LoadPlugins) -> None:
    rules = feature(load, "[[plugin.rule]]\nrequest_user = { pattern = 'b', replace = ' <' }\n")
    assert bridged_invite(rules).request_uri.user == "bob"


def test_count_replaces_more_than_the_first_match(load: LoadPlugins) -> None:
    one = "[[plugin.rule]]\nrequest_user = { pattern = '[-. ]', replace = '' }\n"
    every = "[[plugin.rule]]\nrequest_user = { pattern = '[-.]', replace = '', count = 0 }\n"
    assert outgoing(feature(load, one), "sip:1@x", "sip:020-7946.0@t").uri == "sip:0207946.0@t"
    assert outgoing(feature(load, every), "sip:1@x", "sip:020-7946.0@t").uri == "sip:02079460@t"


def test_a_rewrite_to_nothing_drops_the_user(load: LoadPlugins) -> None:
    rules = feature(load, "[[plugin.rule]]\nrequest_user = { pattern = '.*', replace = '' }\n")
    assert str(bridged_invite(rules).request_uri) == "sip:127.0.0.2:5070"


def test_uris_without_a_user_are_left_alone(load: LoadPlugins) -> None:
    rules = feature(load, "[[plugin.rule]]\nrequest_user = { pattern = '^', replace = '1' }\n")
    out = outgoing(rules, "sip:127.0.0.1", "sip:127.0.0.2")
    assert out.uri == "sip:127.0.0.2"


def test_tel_uris_are_rewritten_as_numbers(load: LoadPlugins) -> None:
    rules = feature(load, "[[plugin.rule]]\nrequest_user = { pattern = '^0', replace = '+44' }\n")
    assert outgoing(rules, "sip:1@x", "tel:0201234").uri == "tel:+44201234"


# -- headers -----------------------------------------------------------------------

HEADERS = """
[[plugin.rule]]
remove_headers = ["X-Debug", "subject"]
remove_headers_matching = ['^X-Internal-', 'secret']
set_headers = { "X-Account" = "site-a", "User-Agent" = "b2bua" }
add_headers = { "X-Trace" = ["one", "two"], "X-Internal-Tag" = "ours" }
"""


def test_header_edits_on_the_wire(load: LoadPlugins) -> None:
    extra = (
        ("X-Debug", "1"),
        ("s", "compact subject"),
        ("x-internal-id", "42"),
        ("X-Internal-Route", "pbx2"),
        ("X-My-Secret-Key", "k"),
        ("X-Account", "theirs"),
        ("X-Account", "theirs2"),
        ("X-Kept", "yes"),
    )
    invite = bridged_invite(feature(load, HEADERS), extra=extra)
    h = invite.headers
    for gone in ("X-Debug", "Subject", "X-Internal-Id", "X-Internal-Route", "X-My-Secret-Key"):
        assert gone not in h, gone
    assert h.get_lines("X-Account") == ["site-a"]
    assert h.get("User-Agent") == "b2bua"
    assert h.get_lines("X-Trace") == ["one", "two"]
    assert h.get_lines("X-Internal-Tag") == ["ours"]  # removal runs before set and add
    assert h.get("X-Kept") == "yes"


def test_patterns_never_remove_the_servers_headers(load: LoadPlugins) -> None:
    rules = feature(load, "[[plugin.rule]]\nremove_headers_matching = ['.']\n")
    invite = bridged_invite(rules, extra=(("X-A", "1"),))
    h = invite.headers
    for kept in ("Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards"):
        assert kept in h, kept
    assert "X-A" not in h and "User-Agent" not in h


# -- matching ----------------------------------------------------------------------


def rule(match: str, user: str = "matched") -> str:
    return f"[[plugin.rule]]\n{match}\nrequest_user = {{ pattern = '.*', replace = '{user}' }}\n"


@pytest.mark.parametrize(
    ("match", "ruri", "target", "source", "applies"),
    [
        ('user_prefix = "00"', "sip:0044@x", "sip:9@t", "192.0.2.1", True),
        ('user_prefix = "00"', "sip:044@x", "sip:9@t", "192.0.2.1", False),
        ('user_prefix = "00"', "sip:x", "sip:9@t", "192.0.2.1", False),
        ('user_prefix = ""', "sip:x", "sip:9@t", "192.0.2.1", True),
        ("user_regex = '^[2-4]\\d{3}$'", "sip:2001@x", "sip:9@t", "192.0.2.1", True),
        ("user_regex = '^[2-4]\\d{3}$'", "sip:20011@x", "sip:9@t", "192.0.2.1", False),
        ('domain = "Example.com"', "sip:1@example.COM.", "sip:9@t", "192.0.2.1", True),
        ('domain = "example.com"', "sip:1@example.org", "sip:9@t", "192.0.2.1", False),
        ('domain = "::1"', "sip:1@[0::1]", "sip:9@t", "192.0.2.1", True),
        ('source = "192.0.2.0/24"', "sip:1@x", "sip:9@t", "192.0.2.200", True),
        ('source = ["10.0.0.0/8", "192.0.2.1"]', "sip:1@x", "sip:9@t", "192.0.2.1", True),
        ('source = "192.0.2.0/24"', "sip:1@x", "sip:9@t", "198.51.100.1", False),
        ('source = "192.0.2.0/24"', "sip:1@x", "sip:9@t", "::ffff:192.0.2.9", True),
        ('target = "gw.example.com"', "sip:1@x", "sip:9@GW.example.com:5080", "192.0.2.1", True),
        ('target = "gw:5080"', "sip:1@x", "sip:9@gw:5080", "192.0.2.1", True),
        ('target = "gw:5080"', "sip:1@x", "sip:9@gw", "192.0.2.1", False),
        ('target = "gw:5060"', "sip:1@x", "sip:9@gw", "192.0.2.1", True),
        ('target = ["a", "gw:5061"]', "sip:1@x", "sips:9@gw", "192.0.2.1", True),
        ('target = "2001:db8::1"', "sip:1@x", "sip:9@[2001:db8::1]:7", "192.0.2.1", True),
        ('user_prefix = "1"\nsource = "10.0.0.0/8"', "sip:1@x", "sip:9@t", "192.0.2.1", False),
    ],
)
def test_match_keys(
    load: LoadPlugins, match: str, ruri: str, target: str, source: str, applies: bool
) -> None:
    out = outgoing(feature(load, rule(match)), ruri, target, source)
    assert (out.request_uri.user == "matched") is applies


def test_rules_apply_in_order_and_last_stops(load: LoadPlugins) -> None:
    rules = feature(
        load,
        "[[plugin.rule]]\nrequest_user = { pattern = '$', replace = 'a' }\n"
        "[[plugin.rule]]\nuser_prefix = '9'\nrequest_user = { pattern = '$', replace = 'b' }\n"
        "last = true\n"
        "[[plugin.rule]]\nrequest_user = { pattern = '$', replace = 'c' }\n",
    )
    assert outgoing(rules, "sip:1@x", "sip:1@t").request_uri.user == "1ac"
    assert outgoing(rules, "sip:9@x", "sip:9@t").request_uri.user == "9ab"


def test_match_keys_see_the_call_as_it_arrived(load: LoadPlugins) -> None:
    rules = feature(
        load,
        "[[plugin.rule]]\nuser_prefix = '0'\nrequest_user = { pattern = '^0', replace = '+44' }\n"
        "[[plugin.rule]]\nuser_prefix = '0'\nrequest_user = { pattern = '$', replace = 'x' }\n",
    )
    # the second rule still matches: user_prefix looks at the caller's 01..., not +441...
    assert outgoing(rules, "sip:01@x", "sip:01@t").request_uri.user == "+441x"


def test_each_failover_attempt_is_rewritten_once(load: LoadPlugins) -> None:
    rules = feature(load, E164 + "[[plugin.rule]]\nadd_headers = { X-Hop = '1' }\n")
    h = Harness(features=[rules])
    h.decision = routes(CALLEE, CALLEE2)
    caller, first, second = (
        Caller(h, uri="sip:0201@127.0.0.1"),
        Callee(h, CALLEE),
        Callee(h, CALLEE2, tag="c2"),
    )
    caller.send_invite()
    first.answer(503)
    for invite in (first.invite, second.invite):
        assert invite.request_uri.user == "+44201"
        assert invite.headers.get_lines("X-Hop") == ["1"]


# -- replies -----------------------------------------------------------------------

REPLIES = """
[[plugin.rule]]
target = "127.0.0.2:5070"
replies = [
    { status = 486, to = 480, reason = "Temporarily Unavailable" },
    { status = "6XX", to = 404 },
]

[[plugin.rule]]
replies = { status = "4xx", to = 403 }
"""


def failed(rules: Rules, status: int, target: str = "sip:127.0.0.2:5070") -> Reject | None:
    info = call_info()
    rules.call_started(info, Request("INVITE", "sip:1@x"))
    info.target = Target.of(target)
    return rules.call_failed(info, Response(status))


def test_reply_translation(load: LoadPlugins) -> None:
    rules = feature(load, REPLIES)
    assert failed(rules, 486) == Reject(480, "Temporarily Unavailable")
    assert failed(rules, 603) == Reject(404)
    assert failed(rules, 404) == Reject(403)  # the first rule has none for 404: the second
    assert failed(rules, 486, "sip:127.0.0.3:5071") == Reject(403)  # first rule: other target
    assert failed(rules, 500) is None


def test_reply_translation_on_the_wire(load: LoadPlugins) -> None:
    h = Harness(features=[feature(load, REPLIES)])
    caller, callee = Caller(h), Callee(h, CALLEE)
    caller.send_invite()
    callee.answer(486)
    final = caller.responses(method="INVITE")[-1]
    assert (final.status, final.reason) == (480, "Temporarily Unavailable")


def test_a_call_without_matching_rules_keeps_nothing(load: LoadPlugins) -> None:
    rules = feature(load, rule('user_prefix = "9"'))
    info = call_info()
    rules.call_started(info, Request("INVITE", "sip:1@x"))
    assert info.data == {}
    rules.call_started(info, Request("INVITE", "sip:9@x"))
    assert info.data
    rules.call_ended(info, "over")
    assert info.data == {}


# -- the example --------------------------------------------------------------------


def test_the_example() -> None:
    plugins = load_plugins(load_config(str(ROOT / "etc" / "examples" / "rules.toml")))
    [rules] = [p.plugin for p in plugins.loaded if isinstance(p.plugin, Rules)]
    trunk = "sip:127.0.0.1:5080"
    out = outgoing(rules, "sip:02079460000@127.0.0.1", "sip:02079460000@127.0.0.1:5080")
    assert out.request_uri.user == "+442079460000" and out.headers.get("X-Account")
    out = outgoing(rules, "sip:0049301234@127.0.0.1", "sip:0049301234@127.0.0.1:5080")
    assert out.request_uri.user == "+49301234"
    out = outgoing(rules, "sip:0201@127.0.0.1", "sip:0201@127.0.0.1:5070")
    assert out.request_uri.user == "0201"  # not towards the trunk
    info = call_info()
    rules.call_started(info, Request("INVITE", "sip:1@x"))
    out = Request("INVITE", trunk)
    out.headers.add("From", "<sip:2001@127.0.0.1>;tag=t")
    out.headers.add("X-Internal-Line", "3")
    rules.request_out(info, out, Target.of(trunk))
    assert out.from_.uri.user == "+442079462001" and "X-Internal-Line" not in out.headers
    info.target = Target.of(trunk)
    assert rules.call_failed(info, Response(486)) == Reject(480, "Temporarily Unavailable")
    assert rules.call_failed(info, Response(603)) == Reject(480)


# -- option errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ":6: plugin[0]: needs at least one rule"),
        ("rule = 1\n", "plugin[0].rule: must be a non-empty array"),
        ("[[plugin.rule]]\n", ":8: plugin[0].rule[0]: does nothing"),
        ("[[plugin.rule]]\nlast = true\nmatch = 1\n", ":10: plugin[0].rule[0].match: unknown"),
        (
            "[[plugin.rule]]\nlast = true\nuser_regex = '(['\n",
            ":10: plugin[0].rule[0].user_regex: '([' is not a valid regular expression",
        ),
        (
            "[[plugin.rule]]\nrequest_user = { pattern = '*', replace = '' }\n",
            ":9: plugin[0].rule[0].request_user.pattern: '*' is not a valid regular",
        ),
        (
            "[[plugin.rule]]\nfrom_user = { pattern = '^0', replace = '\\1' }\n",
            "rule[0].from_user.replace: '\\\\1' is not a valid replacement: invalid group",
        ),
        (
            "[[plugin.rule]]\nto_user = { pattern = '(?P<a>0)', replace = '\\g<b>' }\n",
            "rule[0].to_user.replace: '\\\\g<b>' is not a valid replacement",
        ),
        ("[[plugin.rule]]\nto_user = { pattern = '0' }\n", "to_user: needs both 'pattern' and"),
        ("[[plugin.rule]]\nto_user = '0'\n", "rule[0].to_user: must be a table"),
        (
            "[[plugin.rule]]\nto_user = { pattern = '0', replace = '', all = 1 }\n",
            "rule[0].to_user.all: unknown key",
        ),
        (
            "[[plugin.rule]]\nto_user = { pattern = '0', replace = '', count = -1 }\n",
            "rule[0].to_user.count: must be 0 (every match) or more",
        ),
        (
            "[[plugin.rule]]\nremove_headers_matching = ['(']\n",
            "rule[0].remove_headers_matching[0]: '(' is not a valid regular expression",
        ),
        (
            "[[plugin.rule]]\nremove_headers_matching = []\n",
            "rule[0].remove_headers_matching: must be a non-empty list",
        ),
        (
            '[[plugin.rule]]\nremove_headers = ["Via"]\n',
            "rule[0].remove_headers[0]: Via belongs to the server and cannot be changed",
        ),
        (
            '[[plugin.rule]]\nset_headers = { f = "x" }\n',
            "rule[0].set_headers.f: From belongs to the server and cannot be changed"
            " (use from_user / to_user)",
        ),
        (
            '[[plugin.rule]]\nadd_headers = { "Bad Name" = "x" }\n',
            "rule[0].add_headers.Bad Name: 'Bad Name' is not a header name",
        ),
        (
            '[[plugin.rule]]\nset_headers = { X-A = ["1", "2"] }\n',
            "rule[0].set_headers.X-A: must be a header value on one line, not",
        ),
        (
            '[[plugin.rule]]\nadd_headers = { X-A = "a\\r\\nVia: x" }\n',
            "rule[0].add_headers.X-A: must be a header value on one line (or a list",
        ),
        ("[[plugin.rule]]\nadd_headers = { X-A = [] }\n", "add_headers.X-A: must not be an empty"),
        ("[[plugin.rule]]\nset_headers = {}\n", "rule[0].set_headers: must be a table of"),
        ("[[plugin.rule]]\nreplies = [1]\n", "rule[0].replies[0]: must be a table"),
        ("[[plugin.rule]]\nreplies = [{ status = 486 }]\n", "replies[0]: needs 'status' (what"),
        (
            "[[plugin.rule]]\nreplies = [{ status = 200, to = 480 }]\n",
            "rule[0].replies[0].status: must be a status code (300 to 699) or a class",
        ),
        (
            "[[plugin.rule]]\nreplies = [{ status = '2xx', to = 480 }]\n",
            "rule[0].replies[0].status: must be a status code",
        ),
        (
            "[[plugin.rule]]\nreplies = [{ status = 486, to = 302 }]\n",
            "rule[0].replies[0].to: must be a final error status (400 to 699)",
        ),
        (
            "[[plugin.rule]]\nreplies = [{ status = 486, to = 480, reason = '' }]\n",
            "rule[0].replies[0].reason: must be a non-empty line",
        ),
        (
            '[[plugin.rule]]\nlast = true\nsource = "10.0.0.1/8"\n',
            "rule[0].source: '10.0.0.1/8' is not an IPv4 or IPv6",
        ),
        (
            '[[plugin.rule]]\nlast = true\nsource = ["10.0.0.0/8", "x"]\n',
            "rule[0].source[1]: 'x' is not an IPv4 or IPv6",
        ),
        ('[[plugin.rule]]\nlast = true\ntarget = "u@h"\n', "rule[0].target[0]: 'u@h' is not"),
        ('[[plugin.rule]]\nlast = true\ndomain = "a:5"\n', "rule[0].domain: 'a:5' is not a"),
        ("[[plugin.rule]]\nlast = 1\n", "rule[0].last: must be true or false"),
    ],
)
def test_option_errors_name_file_line_and_key(load: LoadPlugins, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(HEAD + text)
    message = str(info.value)
    assert expected in message, message
    assert message.startswith(str(info.value.path))
