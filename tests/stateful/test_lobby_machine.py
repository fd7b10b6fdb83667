"""A hypothesis state machine over the lobby services (SPEC §2 entry requests).

Guests knock (with personal or reusable ``ask`` tokens, or token-less from two browsers), two
moderators admit and deny (one by one and all at once), guests cancel, drop their socket and
come back with their resume key, tokens are revoked, the clock jumps and the sweeper runs — in
any order. After every step:

* each request has one terminal state, and once it has one it never changes;
* nothing is admitted at or after its deadline;
* after a sweep, no request is pending past its deadline or its disconnect grace;
* no token (and no browser) has more than 3 knocks in any 5 minutes;
* each guest is told its outcome exactly once (and nothing while it waits; ``TOKEN_REVOKED``
  for a knock its token's revocation ended), and moderators are told each outcome exactly once.

Revocation goes through ``services.token_revoke``, the function REST and the admin call.

Events are captured by the ``sent`` fixture (tests/support/events.py: at the channel layer).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lobby import clock, events, services, tokens
from lobby.errors import EntryDenied, EntryRateLimited, EntryTimeout, TokenRevoked
from lobby.models import AuditEvent, EntryRequest, MeetingToken, Participant, Room, ServerProcess

WINDOW = timedelta(seconds=settings.ANTEROOM_KNOCK_LIMIT[1])
LIMIT = settings.ANTEROOM_KNOCK_LIMIT[0]
GUESTS = ("personal-a", "personal-b", "audience", "browser-a", "browser-b")
TERMINAL = {
    ("admitted", ""): "joined",
    ("denied", ""): "ENTRY_DENIED",
    ("canceled", "aborted"): "canceled",
    ("canceled", "timeout"): "ENTRY_TIMEOUT",
    ("canceled", "disconnected"): "ENTRY_TIMEOUT",
}
SENT: Any = None  # the test's ``sent`` box


@dataclass
class Knock:
    guest: str
    resume: str
    connection_id: str


class LobbyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        for model in (AuditEvent, EntryRequest, Participant, Room, MeetingToken, ServerProcess):
            model.objects.all().delete()
        clock.reset()
        SENT.items.clear()
        self.room = services.room_create(
            actor=services.Actor.command("tests"),
            name="clinic",
            privacy="private",
            enable_knocking=True,
            knock_ttl=60,
        )
        self.tokens = {
            "personal-a": tokens.mint_token(
                room="clinic", sub="pa", join_policy={"mode": "ask", "ttl": 20}
            ),
            "personal-b": tokens.mint_token(room="clinic", sub="pb", join_policy={"mode": "ask"}),
            # No ``sub``: a fresh participant id per knock.
            "audience": tokens.mint_token(room="clinic", join_policy={"mode": "ask", "ttl": 90}),
        }
        self.jti = {g: str(tokens.verify_token(t).jti) for g, t in self.tokens.items()}
        self.revoked: set[str] = set()
        self.revoked_knocks: set[str] = set()  # ended by a revocation: told TOKEN_REVOKED
        self.knocks: dict[str, Knock] = {}
        self.final: dict[str, tuple[Any, ...]] = {}
        self.moderators = [
            services.Actor(by=f"mod-{i}", can_moderate=True, participant_id=f"mod-{i}")
            for i in (1, 2)
        ]

    # Helpers -------------------------------------------------------------------------------

    def _pick(self, index: int, pending: bool) -> str:
        """A known request; with ``pending``, one still waiting if there is one."""
        ids = sorted(self.knocks)
        if pending:
            rows = EntryRequest.objects.filter(status="pending").values_list("id", flat=True)
            waiting = {str(i) for i in rows}
            ids = [i for i in ids if i in waiting] or ids
        return ids[index % len(ids)]

    def _conn(self, guest: str) -> services.Connection:
        return services.Connection(
            server_id="srv-machine",
            connection_id=uuid.uuid4().hex,
            browser_key=guest if guest.startswith("browser") else "",
            client_address="10.0.0.1",
        )

    def _row(self, request_id: str) -> EntryRequest:
        return EntryRequest.objects.get(pk=request_id)

    # Rules ---------------------------------------------------------------------------------

    @initialize(guests=st.lists(st.sampled_from(GUESTS), min_size=1, max_size=4))
    def first_knocks(self, guests: list[str]) -> None:
        for guest in guests:
            self.knock(guest)

    @rule(guest=st.sampled_from(GUESTS))
    def knock(self, guest: str) -> None:
        token = self.tokens.get(guest)
        if guest in self.revoked:
            with pytest.raises(TokenRevoked):
                services.join_plan(room_name="clinic", token=token, name=guest)
            return
        plan = services.join_plan(room_name="clinic", token=token, name=guest)
        assert plan.level == "lobby"
        c = self._conn(guest)
        try:
            w = services.entry_request_knock(plan=plan, conn=c)
        except EntryRateLimited:
            # Refused only when this token or browser really knocked 3 times in 5 minutes.
            key = {"token_key": plan.claims.key} if plan.claims else {"browser_key": guest}
            since = clock.now() - WINDOW - timedelta(seconds=1)
            assert EntryRequest.objects.filter(requested_at__gt=since, **key).count() >= LIMIT
            return
        assert w.request.status == "pending"
        assert 1 <= w.position <= w.total
        self.knocks[str(w.request.id)] = Knock(guest, w.resume, c.connection_id)

    @precondition(lambda self: self.knocks)
    @rule(
        index=st.integers(0, 50),
        pending=st.booleans(),
        outcome=st.sampled_from(["admitted", "denied"]),
        mod=st.booleans(),
    )
    def decide(self, index: int, pending: bool, outcome: str, mod: bool) -> None:
        rid = self._pick(index, pending)
        d = services.entry_request_decide(
            room=self.room, request_id=rid, actor=self.moderators[mod], outcome=outcome
        )
        row = self._row(rid)
        assert d.outcome == row.status
        if d.effective:
            assert row.status == outcome
            assert row.resolved_by == self.moderators[mod].by

    @rule(outcome=st.sampled_from(["admitted", "denied"]))
    def decide_all(self, outcome: str) -> None:
        pending_before = set(
            EntryRequest.objects.filter(status="pending").values_list("id", flat=True)
        )
        n = services.entry_requests_decide_all(
            room=self.room, actor=self.moderators[0], outcome=outcome
        )
        decided = EntryRequest.objects.filter(pk__in=pending_before, status=outcome).count()
        assert n == decided

    @precondition(lambda self: self.knocks)
    @rule(index=st.integers(0, 50), pending=st.booleans())
    def cancel(self, index: int, pending: bool) -> None:
        rid = self._pick(index, pending)
        was_pending = self._row(rid).status == "pending"
        done = services.entry_request_cancel(room=self.room, request_id=rid, reason="aborted")
        assert done == was_pending

    @precondition(lambda self: self.knocks)
    @rule(index=st.integers(0, 50), pending=st.booleans(), away=st.booleans())
    def disconnect(self, index: int, pending: bool, away: bool) -> None:
        """The guest's socket drops; with ``away``, it stays away past the grace period."""
        rid = self._pick(index, pending)
        services.entry_request_disconnected(
            request_id=uuid.UUID(rid), connection_id=self.knocks[rid].connection_id
        )
        if away:
            self.advance(settings.ANTEROOM_DISCONNECT_GRACE + 1)
            self.sweep()

    @precondition(lambda self: self.knocks)
    @rule(index=st.integers(0, 50), pending=st.booleans())
    def reconnect(self, index: int, pending: bool) -> None:
        """The guest's new socket sends ``join`` with its token and resume key."""
        rid = self._pick(index, pending)
        k = self.knocks[rid]
        token = self.tokens.get(k.guest)
        try:
            plan = services.join_plan(room_name="clinic", token=token, resume=k.resume)
        except TokenRevoked:
            assert k.guest in self.revoked
            return
        except EntryDenied:
            assert self._row(rid).status == "denied"
            return
        except EntryTimeout:
            row = self._row(rid)
            assert row.status == "canceled" and row.cancel_reason != "aborted"
            return
        if plan.level == "full":
            assert self._row(rid).status == "admitted"
            services.participant_join(plan=plan, conn=self._conn(k.guest))
            return
        if plan.resume_request is None:
            return  # a spent key (canceled or replaced): the client knocks afresh (rule knock)
        assert str(plan.request_id) == rid
        c = self._conn(k.guest)
        try:
            w = services.entry_request_knock(plan=plan, conn=c)
        except EntryTimeout:
            row = self._row(rid)
            assert row.status != "pending" or row.expires_at <= clock.now()
            return
        assert str(w.request.id) == rid  # the same request, not a new one
        self.knocks[rid] = Knock(k.guest, w.resume, c.connection_id)

    @rule(seconds=st.sampled_from([1, 5, 10, 16, 25, 31, 60, 120, 301]))
    def advance(self, seconds: int) -> None:
        clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        before = clock.now()
        services.sweep()
        grace = timedelta(seconds=settings.ANTEROOM_DISCONNECT_GRACE)
        pending = EntryRequest.objects.filter(status="pending")
        assert not pending.filter(expires_at__lte=before).exists()
        assert not pending.filter(disconnected_at__lte=before - grace).exists()

    @rule(guest=st.sampled_from(["personal-a", "personal-b", "audience"]))
    def revoke(self, guest: str) -> None:
        """The service REST and the admin call: it also ends the token's pending knocks."""
        waiting = set(
            EntryRequest.objects.filter(token_jti=self.jti[guest], status="pending").values_list(
                "id", flat=True
            )
        )
        services.token_revoke(jti=self.jti[guest], by="api:machine")
        self.revoked.add(guest)
        for rid in waiting:
            row = self._row(str(rid))
            assert (row.status, row.cancel_reason) == ("canceled", "disconnected")
            self.revoked_knocks.add(str(rid))

    # Invariants ----------------------------------------------------------------------------

    @invariant()
    def one_terminal_state_that_never_changes(self) -> None:
        for r in EntryRequest.objects.all():
            state = (r.status, r.cancel_reason, r.resolved_at, r.resolved_by, r.deny_reason)
            key = str(r.id)
            if key in self.final:
                assert state == self.final[key], f"{key} changed after it ended"
            elif r.status != "pending":
                assert r.resolved_at is not None
                self.final[key] = state
        assert set(self.final) <= {
            str(i) for i in EntryRequest.objects.values_list("id", flat=True)
        }

    @invariant()
    def nothing_admitted_after_its_deadline(self) -> None:
        for r in EntryRequest.objects.filter(status="admitted"):
            assert r.resolved_at is not None and r.resolved_at < r.expires_at

    @invariant()
    def at_most_three_knocks_per_token_or_browser_in_five_minutes(self) -> None:
        for field in ("token_key", "browser_key"):
            times: dict[str, list[Any]] = {}
            for key, at in EntryRequest.objects.exclude(**{field: ""}).values_list(
                field, "requested_at"
            ):
                times.setdefault(key, []).append(at)
            for ts in times.values():
                ts.sort()
                for a, b in zip(ts, ts[LIMIT:], strict=False):
                    assert b - a >= WINDOW, f"{LIMIT + 1} knocks within {b - a}"

    @invariant()
    def each_outcome_told_exactly_once(self) -> None:
        mods: dict[str, list[str]] = {}
        for f in SENT.frames(events.mods_group(self.room.pk)):
            if f["type"] in ("entry-resolved", "entry-canceled"):
                mods.setdefault(f["request_id"], []).append(f["type"])
        for r in EntryRequest.objects.all():
            told = []
            for m in SENT.to(events.request_group(r.id)):
                if m.get("except_connection"):
                    # REPLACED, to the guest's older sockets on a resume: not its outcome.
                    assert [f["error"]["code"] for f in m["frames"]] == ["REPLACED"], m
                    continue
                for f in m.get("frames", []):
                    if f["type"] == "error":
                        told.append(f["error"]["code"])
                    elif f["type"] in ("joined", "canceled"):
                        told.append(f["type"])
            key = str(r.id)
            if r.status == "pending":
                assert told == [], f"a waiting guest was told {told}"
                assert key not in mods
            elif key in self.revoked_knocks:
                assert told == ["TOKEN_REVOKED"], told
                assert mods.get(key) == ["entry-canceled"], mods.get(key)
            else:
                assert told == [TERMINAL[(r.status, r.cancel_reason)]], told
                expected = "entry-resolved" if r.status != "canceled" else "entry-canceled"
                assert mods.get(key) == [expected], mods.get(key)


@pytest.mark.django_db(transaction=True)
def test_lobby_state_machine(sent):
    global SENT
    SENT = sent
    run_state_machine_as_test(
        LobbyMachine,
        settings=hsettings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
