"""Request bodies are strict JSON: duplicate keys, NaN and Infinity are ``BAD_REQUEST``.

DRF's ``JSONParser`` lets the last of two equal keys win, so ``{"jti": "a", "jti": "b"}`` would
revoke ``b`` while a proxy or log that reads the first key sees ``a``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from lobby import strict_json


class StrictJSONParser(JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = stream.read().decode(encoding)
            return strict_json.loads(text)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError("The body must be UTF-8 JSON.") from exc
        except strict_json.StrictJSONError as exc:
            raise ParseError("The body must be JSON without duplicate keys.") from exc
