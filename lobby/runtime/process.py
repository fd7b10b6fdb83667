"""This server process's identity. Imports nothing of Anteroom, so any module may import it.

``SERVER_ID`` names this process in presence rows (``Connection.server_id``), heartbeats and
``anteroom_process_info``; the sweeper of another process declares its sockets gone when its
heartbeat stops.
"""

from __future__ import annotations

import os
import socket
import uuid

SERVER_ID = f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
