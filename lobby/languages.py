"""The language of a socket: the page's language, for the human text of its error frames.

Pages get theirs from LocaleMiddleware (the switcher's cookie, then Accept-Language). A socket
carries the same cookie and header in its handshake, so its error frames' ``message`` reads in
the language of the page that opened it. Codes, frame types and field names never change
(docs/protocol.md "Languages"); only known messages are translated (``errors.error_text``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import translation


def socket_language(scope: Any) -> str:
    """The language LocaleMiddleware would choose for a request with this handshake's cookie
    and Accept-Language header (one of settings.LANGUAGES; LANGUAGE_CODE if neither says)."""
    request = HttpRequest()
    request.COOKIES = dict(scope.get("cookies") or {})
    for name, value in scope.get("headers") or []:
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)
