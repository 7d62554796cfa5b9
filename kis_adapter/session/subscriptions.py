"""
The wanted-subscription set against what the current connection registered (pure state, no I/O).

The session asks `next_request()` what to send; acks move keys between states. A refused key leaves
the wanted set for good (KIS blocks clients that resend refused requests); a key KIS failed to
register for a transient reason waits for the next connection. Every request sent waits for its
ack in `pending`: an ack nobody is waiting for is unsolicited and changes nothing.
"""

from __future__ import annotations

from kis_adapter.errors import SessionError

Key = tuple[str, str]  # (tr_id, tr_key)


class SubscriptionBook:
    """
    Track wanted ``(tr_id, tr_key)`` registrations and their state on the current connection.

    Parameters
    ----------
    max_registrations : int
        The per-session cap (41 at KIS, all TRs combined); `want()` refuses the one over it.

    """

    def __init__(self, max_registrations: int) -> None:
        self.max_registrations = max_registrations
        self.wanted: dict[Key, None] = {}  # insertion-ordered: subscribe in the caller's order
        self.registered: set[Key] = set()  # subscribe sent on this connection, no unsubscribe since
        self.acked: set[Key] = set()  # confirmed by OPSP0000 / OPSP0002 on this connection
        self.deferred: set[Key] = set()  # transient failure: resend after the next reconnect
        self.refused: dict[Key, str] = {}  # refused by KIS: msg_cd; never resent
        self.pending: dict[Key, list[bool]] = {}  # requests sent on this connection awaiting an ack

    def want(self, key: Key) -> bool:
        """Add `key`; return whether it is new. Raise `SessionError` when over the cap."""
        if key in self.wanted or key in self.refused:
            return False
        if len(self.wanted) >= self.max_registrations:
            raise SessionError(
                f"cannot subscribe {key[0]} {key[1]}: a KIS session holds at most "
                f"{self.max_registrations} registrations (all TRs combined) and "
                f"{len(self.wanted)} are in use"
            )
        self.wanted[key] = None
        return True

    def unwant(self, key: Key) -> bool:
        """Remove `key`; return whether it was wanted."""
        self.deferred.discard(key)
        if key not in self.wanted:
            return False
        del self.wanted[key]
        return True

    def reset_connection(self) -> None:
        """A new connection starts with nothing registered; deferred keys get another chance."""
        self.registered.clear()
        self.acked.clear()
        self.deferred.clear()
        self.pending.clear()

    def next_request(self) -> tuple[Key, bool] | None:
        """Return ``(key, subscribe)`` to send next, unsubscribes first (they free cap), or None."""
        for key in self.registered:
            if key not in self.wanted:
                return key, False
        for key in self.wanted:
            if key not in self.registered and key not in self.deferred:
                return key, True
        return None

    def mark_sent(self, key: Key, subscribe: bool) -> None:
        self.pending.setdefault(key, []).append(subscribe)
        if subscribe:
            self.registered.add(key)
        else:
            self.registered.discard(key)
            self.acked.discard(key)

    def settle(self, key: Key, subscribe: bool) -> bool:
        """Match an ack to the oldest request of its kind sent for `key`; False if none was waiting."""
        waiting = self.pending.get(key)
        if not waiting or subscribe not in waiting:
            return False
        waiting.remove(subscribe)
        if not waiting:
            del self.pending[key]
        return True

    def on_subscribed(self, key: Key) -> None:
        if key in self.registered:
            self.acked.add(key)

    def on_unsubscribed(self, key: Key) -> None:
        self.acked.discard(key)

    def on_refused(self, key: Key, msg_cd: str) -> bool:
        """Drop `key` for good; return whether it was one of ours."""
        ours = key in self.wanted or key in self.registered
        self.wanted.pop(key, None)
        self.registered.discard(key)
        self.acked.discard(key)
        if ours:
            self.refused[key] = msg_cd
        return ours

    def on_retry(self, key: Key) -> None:
        self.registered.discard(key)
        self.acked.discard(key)
        if key in self.wanted:
            self.deferred.add(key)
