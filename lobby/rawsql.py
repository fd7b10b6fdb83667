"""Plain SQL for the knock's hot statements (issue 13): the same rows the ORM would write, without
building a query per call.

A knock is one short transaction of a few statements; through the ORM, compiling them cost more
than SQLite or PostgreSQL took to run them (docs/deployment.md, "Benchmark (issue 13"). These
helpers write a model instance's row with a statement made once per model and back end from
the model's own fields, and each value converted by its field as ``Model.save`` does
(``get_db_prep_save``), so a field added to a model is written here too. They send no signals:
use them only for models nothing listens to (``EntryRequest``, ``AuditEvent``).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, models

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class Insert:
    """A model's INSERT: the statement, and per column its attribute and its conversion."""

    sql: str
    columns: tuple[tuple[str, Convert], ...]


_inserts: dict[tuple[str, type[models.Model]], Insert] = {}


def insert_statement(model: type[models.Model]) -> Insert:
    """``INSERT INTO <table> (<columns>) VALUES (%s, …)`` of every concrete field but an
    auto-incremented key, made once per model and back end."""
    key = (connection.vendor, model)
    made = _inserts.get(key)
    if made is None:
        q = connection.ops.quote_name
        fields = [
            f
            for f in model._meta.concrete_fields
            if not isinstance(f, (models.AutoField, models.BigAutoField, models.SmallAutoField))
        ]
        columns = ", ".join(q(str(f.column)) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        made = _inserts[key] = Insert(
            f"INSERT INTO {q(str(model._meta.db_table))} ({columns}) VALUES ({marks})",  # noqa: S608
            tuple((f.attname, _converter(f)) for f in fields),
        )
    return made


def row_values(obj: models.Model, insert: Insert) -> list[Any]:
    """``obj``'s values of ``insert``'s columns as the database takes them."""
    return [convert(getattr(obj, attname)) for attname, convert in insert.columns]


def _converter(field: models.Field[Any, Any]) -> Convert:
    """``field.get_db_prep_save`` (what ``Model.save`` sends), with the common values of the
    common column types converted directly: a string as it is, an aware datetime and a UUID as
    the back end takes them. Anything else goes through the field."""

    def through_field(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    column = field.target_field if isinstance(field, models.ForeignKey) else field
    kind = column.get_internal_type()
    if kind in ("CharField", "TextField"):

        def text(value: Any) -> Any:
            return value if value.__class__ is str else through_field(value)

        return text
    if kind == "DateTimeField":

        def moment(value: Any) -> Any:
            if value.__class__ is datetime.datetime and value.tzinfo is not None:
                return connection.ops.adapt_datetimefield_value(value)
            return through_field(value)

        return moment
    if kind == "UUIDField":
        native = connection.features.has_native_uuid_field

        def an_id(value: Any) -> Any:
            if value.__class__ is uuid.UUID:
                return value if native else value.hex
            return through_field(value)

        return an_id
    return through_field


def insert(obj: models.Model) -> None:
    """Write ``obj``'s row (one INSERT, no RETURNING) and mark it saved. Its primary key must be
    set already, or be an auto-incremented one the caller never reads."""
    insert = insert_statement(type(obj))
    with connection.cursor() as cursor:
        cursor.execute(insert.sql, row_values(obj, insert))
    saved(obj)


def saved(obj: models.Model) -> None:
    """Mark an instance written by plain SQL as loaded from the database."""
    obj._state.adding = False
    obj._state.db = connection.alias


def field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """``model``'s concrete field ``name`` (its column is ``.column``)."""
    found = model._meta.get_field(name)
    assert isinstance(found, models.Field), name
    return found


def db_value(field: models.Field[Any, Any], value: Any) -> Any:
    """A filter value as ``field``'s column holds it (a UUID is 32 hex digits on SQLite)."""
    return field.get_db_prep_value(value, connection)


def when(value: Any) -> datetime.datetime:
    """A datetime column's (non-null) value read by plain SQL, as the ORM returns it (aware,
    UTC): SQLite hands back text, or a naive datetime where it knows the column's type."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value
    ops: Any = connection.ops  # SQLite's operations parse and make aware
    converted: datetime.datetime = ops.convert_datetimefield_value(value, None, connection)
    return converted
