"""Lobby services: every state change of rooms, knocks and presence is one named function.

Each write runs in one transaction, changes rows with a lock or a conditional update, and queues
its events with ``transaction.on_commit`` (through ``events``). Every surface — WebSocket, REST,
dashboard, admin — calls these functions; none holds a rule of its own.

The package is split by concern (docs/architecture.md, "Where each rule lives"):

* ``actors`` — ``Actor``, ``require_moderator``, ``check_credential``;
* ``keys`` — resume keys and the hashes stored for secrets;
* ``inputs`` — display names and metadata as the services store them;
* ``appointments`` — a room's appointment window: who may knock when, and the knock's deadline;
* ``rooms`` — ``room_create`` / ``_update`` / ``_delete`` / ``_set_state``, ``get_room``;
* ``access`` — SPEC §2's access table, roles and ``join_plan`` (reads only);
* ``locks`` — the room lock, the rate-limit key locks and the places left in a capped room;
* ``quotas`` — knock and join rate limits, counted from stored rows;
* ``outcomes`` — how a knock leaves ``pending`` and who is told (shared by the modules below);
* ``knocks`` — knock or re-attach, rename, cancel, the waiting guest's socket lost;
* ``decisions`` — admit or deny one knock, or all of a room's;
* ``presence`` — participants: join, rename, socket lost, leave;
* ``deadlines`` — ``sweep`` (every stored deadline) and the process heartbeat;
* ``revocation`` — ``token_revoke`` and what it ends.

This module only re-exports the names the surfaces call (``services.join_plan``…); inside the
package, and for helpers such as ``locks.lock_lobby``, import from the concern module.
"""

from .access import (
    Access,
    Connection,
    JoinPlan,
    Level,
    access_level,
    join_plan,
    preauth,
    preauth_cached,
    role_for,
)
from .actors import Actor, check_credential, require_moderator
from .deadlines import SERVER_DEAD_AFTER, SweepResult, server_heartbeat, sweep
from .decisions import Decision, entry_request_decide, entry_requests_decide_all
from .inputs import MAX_METADATA_BYTES, MAX_NAME_CHARS, clean_metadata, clean_name
from .keys import hash_secret, new_resume_key
from .knocks import (
    Waiting,
    entry_request_cancel,
    entry_request_disconnected,
    entry_request_knock,
    entry_request_knock_for_socket,
    entry_request_rename,
)
from .presence import (
    Joined,
    joined_frame,
    participant_disconnected,
    participant_join,
    participant_leave,
    participant_rename,
)
from .revocation import token_revoke
from .rooms import ROOM_FIELDS, get_room, room_create, room_delete, room_set_state, room_update

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_NAME_CHARS",
    "ROOM_FIELDS",
    "SERVER_DEAD_AFTER",
    "Access",
    "Actor",
    "Connection",
    "Decision",
    "JoinPlan",
    "Joined",
    "Level",
    "SweepResult",
    "Waiting",
    "access_level",
    "check_credential",
    "clean_metadata",
    "clean_name",
    "entry_request_cancel",
    "entry_request_decide",
    "entry_request_disconnected",
    "entry_request_knock",
    "entry_request_knock_for_socket",
    "entry_request_rename",
    "entry_requests_decide_all",
    "get_room",
    "hash_secret",
    "join_plan",
    "joined_frame",
    "new_resume_key",
    "participant_disconnected",
    "participant_join",
    "participant_leave",
    "participant_rename",
    "preauth",
    "preauth_cached",
    "require_moderator",
    "role_for",
    "room_create",
    "room_delete",
    "room_set_state",
    "room_update",
    "server_heartbeat",
    "sweep",
    "token_revoke",
]
