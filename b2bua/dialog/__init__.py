"""RFC 3261 sections 12-14 dialogs, with RFC 3311 UPDATE and RFC 3262 PRACK bookkeeping.

Pure like the layers below it: no Twisted, no I/O.  Time enters through an
injected :class:`Clock` (a reactor or ``twisted.internet.task.Clock``), used only
by the retransmitters and, optionally, the ACK cache; a server with many calls
hands the retransmitters one shared :class:`Timers` (the transaction layer's
``Scheduler`` fits) instead of a clock call per timer.

What is here, by module:

- ``dialog``: :class:`Dialog` (state, CSeq, route set, targets; builds in-dialog
  requests and ACKs for 2xx, takes in requests and responses), :class:`DialogId`,
  :class:`DialogState`, :class:`DialogError`, :func:`next_hop` (and its text,
  :func:`next_hop_text`), :func:`credentials`,
  :func:`dialog_response` (a UAS's dialog-creating response, 12.1.1).
- ``table``: :class:`DialogTable` (match requests and responses to dialogs),
  :class:`EarlyDialogs` (the forked dialogs of one INVITE we sent),
  :func:`no_dialog_response` (481), :func:`out_of_order_response` (500).
- ``retransmit``: :class:`TwoXXRetransmitter` (UAS 2xx until ACK, 13.3.1.4),
  :class:`ReliableProvisionalRetransmitter` (UAS reliable 1xx until PRACK),
  :func:`ack_matches`.
- ``ack``: :class:`AckCache` (UAC: the ACK to resend on a retransmitted 2xx).
- ``prack``: :class:`ReliableProvisionals` (UAS RSeq and PRACK matching),
  :func:`create_prack`, :func:`rseq_of`, :func:`is_reliable`, :class:`RAck`.
- ``glare``: :func:`conflict_response` (491/500 for crossing re-INVITE or UPDATE),
  :func:`glare_retry_delay`.
- ``clock``: the :class:`Clock`, :class:`DelayedCall` and :class:`Timers` protocols,
  :class:`ClockTimers` (timers on a plain clock).

The dialog never adds the top Via: the caller adds one with a new branch and
sends the request to :func:`next_hop` (through a client transaction, except the
ACK for 2xx, which is sent directly).
"""

from .ack import AckCache
from .clock import Clock, ClockTimers, DelayedCall, Timers
from .dialog import (
    MAX_CSEQ,
    MAX_FORWARDS,
    TARGET_REFRESH_METHODS,
    Dialog,
    DialogError,
    DialogId,
    DialogState,
    credentials,
    dialog_response,
    next_hop,
    next_hop_text,
)
from .glare import conflict_response, glare_retry_delay
from .prack import RAck, ReliableProvisionals, create_prack, is_reliable, parse_rack, rseq_of
from .retransmit import (
    T1,
    T2,
    ReliableProvisionalRetransmitter,
    TwoXXRetransmitter,
    ack_matches,
)
from .table import DialogTable, EarlyDialogs, no_dialog_response, out_of_order_response

__all__ = [
    # dialog
    "Dialog",
    "DialogId",
    "DialogState",
    "DialogError",
    "MAX_CSEQ",
    "MAX_FORWARDS",
    "TARGET_REFRESH_METHODS",
    "credentials",
    "dialog_response",
    "next_hop",
    "next_hop_text",
    # table
    "DialogTable",
    "EarlyDialogs",
    "no_dialog_response",
    "out_of_order_response",
    # retransmissions and ACK
    "T1",
    "T2",
    "TwoXXRetransmitter",
    "ReliableProvisionalRetransmitter",
    "ack_matches",
    "AckCache",
    # RFC 3262
    "RAck",
    "ReliableProvisionals",
    "create_prack",
    "is_reliable",
    "parse_rack",
    "rseq_of",
    # glare
    "conflict_response",
    "glare_retry_delay",
    # clock
    "Clock",
    "ClockTimers",
    "DelayedCall",
    "Timers",
]
