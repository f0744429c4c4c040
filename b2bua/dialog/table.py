"""Finding dialogs: the table of live dialogs and the early dialogs of a forked INVITE.

:class:`DialogTable` maps :class:`DialogId` to :class:`Dialog` and matches incoming
requests and responses to them; a request with a To tag that matches nothing is
answered with :func:`no_dialog_response` (481).  :class:`EarlyDialogs` follows the
responses to one INVITE we sent, which forking proxies may answer from several
UASs: one dialog per To tag (RFC 3261 12.1.2, 13.2.2.4).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..sip import NameAddr, Request, Response, response_for
from .dialog import Dialog, DialogId, DialogState


def no_dialog_response(request: Request) -> Response:
    """The 481 for a request with a To tag that matches no dialog (RFC 3261 12.2.2).

    Not for ACK, which is never answered (the caller drops a stray ACK).
    """
    return response_for(request, 481)


def out_of_order_response(request: Request) -> Response:
    """The 500 for a request whose CSeq is below the remote CSeq (RFC 3261 12.2.2)."""
    return response_for(request, 500)


class DialogTable:
    """The live dialogs of one server, indexed by :class:`DialogId`.

    Terminated dialogs leave the table: :meth:`terminate` does both at once, and
    :meth:`match` / :meth:`match_response` drop a terminated dialog they meet, so
    an oversight cannot leak one for long (:meth:`prune` sweeps them all).
    """

    __slots__ = ("_dialogs",)

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def add(self, dialog: Dialog) -> None:
        """Index ``dialog``; ``ValueError`` if another dialog has its ID."""
        other = self._dialogs.setdefault(dialog.id, dialog)
        if other is not dialog:
            raise ValueError(f"dialog {dialog.id} already exists")

    def get(self, dialog_id: DialogId) -> Dialog | None:
        """The dialog with this ID, or None."""
        return self._dialogs.get(dialog_id)

    def remove(self, dialog: Dialog | DialogId) -> Dialog | None:
        """Forget a dialog (by object or ID); returns it, or None if it was not here."""
        dialog_id = dialog if isinstance(dialog, DialogId) else dialog.id
        return self._dialogs.pop(dialog_id, None)

    def terminate(self, dialog: Dialog) -> None:
        """Terminate ``dialog`` and forget it."""
        dialog.terminate()
        self._dialogs.pop(dialog.id, None)

    def _live(self, dialog_id: DialogId) -> Dialog | None:
        dialog = self._dialogs.get(dialog_id)
        if dialog is not None and dialog.state is DialogState.TERMINATED:
            del self._dialogs[dialog_id]
            return None
        return dialog

    def match(self, request: Request) -> Dialog | None:
        """The dialog of an incoming request, or None.

        Only requests with a To tag belong to a dialog; their local tag is the To
        tag and remote tag the From tag.  None for a request with a To tag means
        481 (:func:`no_dialog_response`), except for ACK (dropped) and CANCEL
        (matched by the transaction layer, not by dialog).
        """
        dialog_id = DialogId.of_request(request)
        return None if dialog_id is None else self._live(dialog_id)

    def match_response(self, response: Response) -> Dialog | None:
        """The dialog of a response to a request we sent (local tag = From tag)."""
        return self._live(DialogId.of_response(response))

    def prune(self) -> int:
        """Drop every terminated dialog; returns how many went."""
        dead = [i for i, d in self._dialogs.items() if d.state is DialogState.TERMINATED]
        for dialog_id in dead:
            del self._dialogs[dialog_id]
        return len(dead)

    def counts(self) -> dict[str, int]:
        """How many dialogs are in each state, for monitoring (``early``, ``confirmed``...)."""
        result = {state.value: 0 for state in DialogState}
        for dialog in self._dialogs.values():
            result[dialog.state.value] += 1
        return result

    def __len__(self) -> int:
        return len(self._dialogs)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Dialog):
            return self._dialogs.get(item.id) is item
        return item in self._dialogs

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))


class EarlyDialogs:
    """The dialogs created by the responses to one INVITE we sent (UAC side).

    A forking proxy may relay provisional and 2xx responses from several UASs:
    each distinct To tag is a dialog of its own (RFC 3261 12.1.2, 13.2.2.4).
    Feed every response of the INVITE client transaction to :meth:`on_response`.
    ``key`` is the INVITE's Call-ID and From tag, shared by all those dialogs.
    With a ``table``, new dialogs are added to it and terminated ones removed.
    ``local_target``, ``local_uri`` and ``remote_uri`` are the Contact, From and To
    the caller wrote in the INVITE, when it has them at hand, as values or as the text
    written (else each new dialog reads them from the INVITE, see :meth:`Dialog.from_uac`).
    """

    __slots__ = ("dialogs", "invite", "key", "local_target", "local_uri", "remote_uri", "table")

    def __init__(
        self,
        invite: Request,
        table: DialogTable | None = None,
        *,
        local_target: NameAddr | str | None = None,
        local_uri: NameAddr | str | None = None,
        remote_uri: NameAddr | str | None = None,
    ) -> None:
        #: The INVITE we sent.
        self.invite = invite
        #: (Call-ID, From tag) of the INVITE.
        self.key: tuple[str, str] = (invite.call_id, invite.from_tag or "")
        #: The dialogs so far, by remote (To) tag, in order of creation.
        self.dialogs: dict[str, Dialog] = {}
        self.table = table
        self.local_target = local_target
        self.local_uri = local_uri
        self.remote_uri = remote_uri

    def on_response(self, response: Response) -> Dialog | None:
        """Take in a response to the INVITE; returns the dialog it belongs to, or None.

        - 101-199 with a To tag: the early dialog for that tag, created on first
          sight, updated (remote target) after;
        - 2xx: the dialog for its To tag, confirmed (route set recomputed per
          13.2.2.4) or created confirmed; every 2xx must be ACKed, and a second
          dialog confirmed by another fork is usually ended with a BYE;
        - 100 and provisional responses without To tag: None, no dialog;
        - 300-699: every early dialog is terminated (12.3), None.

        ``ValueError`` for a response whose Call-ID or From tag is not the INVITE's.
        """
        if (response.call_id, response.from_tag or "") != self.key:
            raise ValueError("response does not belong to this INVITE")
        status = response.status
        if status >= 300:
            self.terminate_early()
            return None
        tag = response.to_tag
        if status <= 100 or (tag is None and status < 200):
            return None
        dialog = self.dialogs.get(tag or "")
        if dialog is None:
            dialog = Dialog.from_uac(
                self.invite,
                response,
                local_target=self.local_target,
                local_uri=self.local_uri,
                remote_uri=self.remote_uri,
            )
            self.dialogs[dialog.id.remote_tag] = dialog
            if self.table is not None:
                self.table.add(dialog)
        else:
            dialog.response_received(response)
        return dialog

    def confirmed(self) -> list[Dialog]:
        """The dialogs a 2xx has confirmed (and not terminated since)."""
        return [d for d in self.dialogs.values() if d.state is DialogState.CONFIRMED]

    def early(self) -> list[Dialog]:
        """The dialogs still early."""
        return [d for d in self.dialogs.values() if d.state is DialogState.EARLY]

    def terminate_early(self) -> list[Dialog]:
        """Terminate every dialog still early (and drop it from the table); returns them.

        Call it when the INVITE client transaction ends: no 2xx can confirm them
        any more.  Terminated dialogs are also forgotten here.
        """
        ended = self.early()
        for dialog in ended:
            dialog.terminate()
        for tag, dialog in list(self.dialogs.items()):
            if dialog.state is DialogState.TERMINATED:
                del self.dialogs[tag]
                if self.table is not None and self.table.get(dialog.id) is dialog:
                    self.table.remove(dialog)
        return ended

    def __len__(self) -> int:
        return len(self.dialogs)


__all__ = [
    "DialogTable",
    "EarlyDialogs",
    "no_dialog_response",
    "out_of_order_response",
]
