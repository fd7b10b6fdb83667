"""Signals a media backend sends to the media package, so that a backend imports neither
``lobby.media`` nor the module that chose it (no import cycle: tests/lobby/test_import_graph.py).
"""

from django.dispatch import Signal

#: A media server is reachable again after an outage: ``media_rooms`` (the ids, as strings, of
#: the media rooms it holds) get their ``media-state`` recomputed and re-sent, so that the
#: browsers reconnect. Sent on the backend's own thread, outside any transaction.
media_server_recovered = Signal()
