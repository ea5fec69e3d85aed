"""Hand-written SQL for the few hot paths where building ORM queries costs more than running them.

Order creation runs about ten statements per request; building and compiling
each one through the ORM cost more CPU than PostgreSQL spent executing all of
them (see README, "Performance"). These helpers keep such SQL honest: table and
column names come from the models, values are always bound parameters, rows
become model instances through the same database converters the ORM applies
(so SQLite's floats become Decimals and its 0/1 become booleans), and inserts
fill ``auto_now_add`` fields and primary keys as ``save()`` does. Nothing here
sends model signals; callers use it only for models that have no receivers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model


def cached_sql(build: Callable[..., str]) -> Callable[..., str]:
    """Remember SQL text built from model metadata, per database vendor and arguments (it never changes)."""
    memo: dict[tuple, str] = {}

    @functools.wraps(build)
    def get(*args):
        key = (connection.vendor, *args)
        sql = memo.get(key)
        if sql is None:
            sql = memo[key] = build(*args)
        return sql

    return get


def qn(name: str) -> str:
    """A quoted table or column name."""
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    return qn(model._meta.db_table)


def params_list(count: int) -> str:
    """``%s, %s, …``: placeholders for an ``IN (…)`` of ``count`` values (SQLite has no ``= ANY(array)``)."""
    return ", ".join(["%s"] * count)


def columns(model: type[Model], alias: str, fields: tuple[str, ...]) -> str:
    """``alias.col, …`` for the fields (attribute names), in order, for a SELECT list."""
    return ", ".join(f"{alias}.{qn(model._meta.get_field(name).column)}" for name in fields)


def field_names(model: type[Model]) -> tuple[str, ...]:
    """Every concrete field's attribute name, in column order: a whole row for :func:`load`."""
    return tuple(f.attname for f in model._meta.concrete_fields)


def for_update(*aliases: str) -> str:
    """`` FOR UPDATE OF …`` where the database locks rows (PostgreSQL); nothing on SQLite, which locks the file.

    Naming the tables matters: a bare ``FOR UPDATE`` over a join also locks the
    joined rows (a coupon's template, shared by every coupon issued from it).
    """
    if not connection.features.has_select_for_update:
        return ""
    if aliases and connection.features.has_select_for_update_of:
        return " FOR UPDATE OF " + ", ".join(aliases)
    return " FOR UPDATE"


@cache
def _converters(vendor: str, model: type[Model], fields: tuple[str, ...]) -> tuple:
    out = []
    for name in fields:
        col = model._meta.get_field(name).get_col(model._meta.db_table)
        out.append((col, tuple(connection.ops.get_db_converters(col)) + tuple(col.get_db_converters(connection))))
    return tuple(out)


def convert(model: type[Model], fields: tuple[str, ...], values: Sequence) -> list:
    """Database values of ``model``'s ``fields`` (attribute names) as the ORM would return them."""
    conn = connections[DEFAULT_DB_ALIAS]  # once: every attribute of the ``connection`` proxy is a lookup
    out = []
    for value, (col, converters) in zip(values, _converters(conn.vendor, model, fields), strict=True):
        for converter in converters:
            value = converter(value, col, conn)
        out.append(value)
    return out


def load(model: type[Model], fields: tuple[str, ...], values: Sequence) -> Model:
    """A model instance from a row holding ``fields`` (attribute names); other fields load on first use."""
    return model.from_db(DEFAULT_DB_ALIAS, list(fields), convert(model, fields, values))


@cache
def _insert_sql(vendor: str, model: type[Model], rows: int, returning: bool, with_pk: bool) -> tuple[str, tuple]:
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if with_pk or f is not meta.auto_field)
    one = f"({params_list(len(fields))})"
    sql = (f"INSERT INTO {table(model)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608 - names from the model
           f"VALUES {', '.join([one] * rows)}")
    return sql + (f" RETURNING {qn(meta.pk.column)}" if returning else ""), fields


Statement = tuple[str, list]


def insert_statement(objs: Sequence[Model], *, returning: bool = True, with_pk: bool = False) -> Statement:
    """The INSERT of the (new, same-model) instances, ``auto_now_add`` fields filled; returns their keys if asked.

    ``with_pk`` writes the keys the instances already hold (drawn from the table's sequence beforehand).
    """
    conn = connections[DEFAULT_DB_ALIAS]
    sql, fields = _insert_sql(conn.vendor, type(objs[0]), len(objs), returning, with_pk)
    return sql, [f.get_db_prep_save(f.pre_save(obj, True), conn) for obj in objs for f in fields]


def set_keys(objs: Sequence[Model], keys: Sequence[tuple]) -> None:
    """Give the instances the primary keys their INSERT … RETURNING gave back (they are now saved)."""
    for obj, (pk,) in zip(objs, keys, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, DEFAULT_DB_ALIAS


def insert(objs: Sequence[Model]) -> None:
    """INSERT the (new, same-model) instances in one statement and set their primary keys, like ``save()``."""
    if objs:
        sql, params = insert_statement(objs)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            set_keys(objs, cursor.fetchall())


def update_statement(obj: Model, fields: tuple[str, ...]) -> Statement:
    """``UPDATE … SET`` the instance's ``fields`` (attribute names) by primary key."""
    conn = connections[DEFAULT_DB_ALIAS]
    meta = obj._meta
    targets = [meta.get_field(name) for name in fields]
    params = [f.get_db_prep_save(f.pre_save(obj, False), conn) for f in targets]
    return _update_sql(type(obj), fields), [*params, meta.pk.get_db_prep_value(obj.pk, conn)]


@cached_sql
def _update_sql(model: type[Model], fields: tuple[str, ...]) -> str:
    targets = [model._meta.get_field(name) for name in fields]
    return (f"UPDATE {table(model)} SET {', '.join(f'{qn(f.column)} = %s' for f in targets)} "  # noqa: S608
            f"WHERE {qn(model._meta.pk.column)} = %s")


def update(obj: Model, fields: tuple[str, ...]) -> None:
    """Like ``save(update_fields=fields)``, in one hand-written statement."""
    with connection.cursor() as cursor:
        cursor.execute(*update_statement(obj, fields))


def batch(statements: Sequence[Statement]) -> list[tuple]:
    """Run the statements in order and return the last one's rows.

    On PostgreSQL they travel as one message (psycopg2 binds parameters on the
    client, so ``a; b; c`` is one round trip instead of three); SQLite takes
    one statement per call. An error in any statement raises as usual, and the
    caller's transaction rolls all of them back.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params])
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []
