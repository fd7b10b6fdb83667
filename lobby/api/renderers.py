"""The audit trail as CSV (``?format=csv`` or ``Accept: text/csv``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import BaseRenderer

AUDIT_COLUMNS = ("at", "room", "actor", "action", "request_id", "subject", "data")


def csv_cell(value: Any) -> str:
    """A CSV cell that spreadsheets will not run as a formula (CSV injection)."""
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"), sort_keys=True)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class AuditCsvRenderer(BaseRenderer):
    """The audit rows with a header row."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        # Errors never reach this renderer: the exception handler renders them as JSON.
        writer.writerow(AUDIT_COLUMNS)
        for row in (data or {}).get("data", []):
            writer.writerow([csv_cell(row.get(c)) for c in AUDIT_COLUMNS])
        return out.getvalue().encode()
