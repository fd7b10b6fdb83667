"""Breakout services (SPEC §2): every change of breakout rooms and membership is one function.

Each runs in one transaction that first locks the parent room's row (``select_for_update``), so
every breakout change of one parent is serialised: the 10-room limit, capacities and "one
breakout at a time" are checked and written under that lock (on SQLite the IMMEDIATE
transaction mode takes the database write lock at BEGIN, which serialises the same way). The
participant rows involved are locked too, so a concurrent ``participant-left`` (which does not
take the parent lock) cannot interleave. Events are collected in an :class:`Outbox` and sent
only after the commit.

Membership is ``Participant.breakout`` (one breakout at a time is structural) with
``Participant.status == "paused"`` in the parent while there; every write keeps
``paused ⇔ breakout is set`` for present participants.

Arguments arrive from sockets and JSON bodies, so each service checks the types of what it is
given (``BadRequest``) besides the rules.

The package is split by concern (docs/architecture.md, "Where each rule lives"):

* ``inputs`` — the limits and the type checks of arguments, ``breakout-create``'s options;
* ``locks`` — the parent lock (group mode only) and the rows read under it;
* ``notices`` — ``breakouts-updated`` to moderators and the ``breakout.*`` webhooks;
* ``help_outcomes`` — how a help request ends and who is told; ``help_requests_sweep``;
* ``moves`` — into a breakout room or back to the parent, and who hears of it;
* ``assignment`` — create-and-invite's rooms needed and random, even groups;
* ``creation`` — ``breakout_rooms_create`` / ``_create_and_invite``;
* ``invitations`` — ``breakout_invite``, ``breakout_reject``;
* ``membership`` — ``breakout_join`` / ``_leave`` / ``_move``, the lobby's leave hook;
* ``teardown`` — ``breakout_rooms_clear_all`` / ``_destroy_all``;
* ``timers`` — ``breakout_extend`` and ``breakouts_sweep``;
* ``broadcast`` — ``breakout_broadcast``;
* ``help_requests`` — ``breakout_help`` / ``_help_answer`` / ``_help_join``.

This module only re-exports the names the surfaces call (``services.breakout_join``…); inside
the package, and for helpers such as ``locks.lock_parent``, import from the concern module.
Patch a module's own name (``assignment._rng``), not its re-export here.
"""

from .assignment import assign, rooms_needed
from .broadcast import MAX_BROADCAST, breakout_broadcast
from .creation import breakout_rooms_create, breakout_rooms_create_and_invite
from .help_outcomes import help_requests_sweep
from .help_requests import (
    HelpAnswer,
    HelpJoin,
    breakout_help,
    breakout_help_answer,
    breakout_help_join,
)
from .inputs import (
    MAX_BREAKOUTS,
    MAX_CLIENTS,
    MAX_DURATION,
    MIN_CAPACITY,
    MIN_DURATION,
    RoomOptions,
)
from .invitations import Invited, breakout_invite, breakout_reject
from .membership import (
    ROLES,
    breakout_join,
    breakout_leave,
    breakout_memberships_close,
    breakout_move,
)
from .teardown import Cleared, breakout_rooms_clear_all, breakout_rooms_destroy_all
from .timers import ENDING_WARNING, MAX_EXTEND, breakout_extend, breakouts_sweep

__all__ = [
    "ENDING_WARNING",
    "MAX_BREAKOUTS",
    "MAX_BROADCAST",
    "MAX_CLIENTS",
    "MAX_DURATION",
    "MAX_EXTEND",
    "MIN_CAPACITY",
    "MIN_DURATION",
    "ROLES",
    "Cleared",
    "HelpAnswer",
    "HelpJoin",
    "Invited",
    "RoomOptions",
    "assign",
    "breakout_broadcast",
    "breakout_extend",
    "breakout_help",
    "breakout_help_answer",
    "breakout_help_join",
    "breakout_invite",
    "breakout_join",
    "breakout_leave",
    "breakout_memberships_close",
    "breakout_move",
    "breakout_reject",
    "breakout_rooms_clear_all",
    "breakout_rooms_create",
    "breakout_rooms_create_and_invite",
    "breakout_rooms_destroy_all",
    "breakouts_sweep",
    "help_requests_sweep",
    "rooms_needed",
]
