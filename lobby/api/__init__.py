"""The REST API (SPEC §4) under ``/api/v1/``: rooms, meeting tokens, entry requests, participants,
the audit trail and room control. Breakouts' endpoints are ``breakouts.apis``.

``views`` holds thin ``<Entity><Action>Api`` classes (body → ``lobby.commands`` model → one
service → response); ``auth`` the API keys; ``parsers`` strict JSON bodies; ``exceptions`` the
one error shape; ``renderers`` the audit CSV; ``schema`` the OpenAPI extensions and the response
shapes ``/api/schema/`` documents.
"""
