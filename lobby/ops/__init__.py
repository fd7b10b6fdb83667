"""Observability: metrics, logs, the request middleware and the health endpoints.

Nothing here holds a rule of the lobby; services call the tiny hooks in ``metrics`` and log
through the standard ``logging`` module, which ``logs`` configures.
"""
