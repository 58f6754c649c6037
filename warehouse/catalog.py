"""Read-only SQL over the lakehouse for users (``hmmr sql``).

The catalog is attached READ_ONLY on a fresh connection, then external access is switched off and the
configuration locked (measured in stack-notes), and only query statements are accepted: SELECTs over the tables and views work; INSERT,
DELETE, COPY TO, ATTACH, INSTALL, reading files (``read_csv('/etc/passwd')``) and SET are refused.

Switching external access off does not reach the catalog extensions, whose functions open files and
servers themselves (``sqlite_scan('/any/file.db', ...)`` reads any SQLite file, ``postgres_query``
talks to any server), nor DuckLake's maintenance functions called as table functions. So every
function a query names is looked up in its parse tree (``json_serialize_sql``) and these are refused:
:data:`REFUSED_PREFIXES`, and every ``ducklake_*`` function but the read-only ones in
:data:`DUCKLAKE_READERS`.
"""

from __future__ import annotations

import json
import re

import duckdb
import pyarrow as pa

from hmmr.config import Settings
from warehouse.lake import ALIAS, attach, connect, data_path, require_lakehouse


class ReadOnlyQueryError(Exception):
    """A statement the read-only SQL interface refuses (writes, attaching, file access, settings)."""


ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
REFUSED_PREFIXES = ("sqlite_", "postgres_", "mysql_")
DUCKLAKE_READERS = frozenset({
    "ducklake_snapshots", "ducklake_current_snapshot", "ducklake_last_committed_snapshot", "ducklake_table_info",
    "ducklake_list_files", "ducklake_options", "ducklake_table_changes", "ducklake_table_insertions",
    "ducklake_table_deletions",
})
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)


def _function_names(tree) -> set[str]:
    """Every ``function_name`` in a serialized parse tree (scalar and table functions, any depth)."""
    if isinstance(tree, dict):
        names = {tree["function_name"].lower()} if isinstance(tree.get("function_name"), str) else set()
        return names.union(*(_function_names(v) for v in tree.values()))
    if isinstance(tree, list):
        return set().union(*(_function_names(v) for v in tree))
    return set()


def _check_functions(con: duckdb.DuckDBPyConnection, stmt) -> None:
    query = _EXPLAIN.sub("", stmt.query) if stmt.type == duckdb.StatementType.EXPLAIN else stmt.query
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    if tree.get("error"):
        raise ReadOnlyQueryError(f"the SQL interface is read-only and could not check this query: {tree.get('error_message')}")
    for name in sorted(_function_names(tree)):
        if name.startswith(REFUSED_PREFIXES) or (name.startswith("ducklake_") and name not in DUCKLAKE_READERS):
            raise ReadOnlyQueryError(
                f"the SQL interface is read-only: {name}() is refused (it reaches files, servers or the catalog directly)")


def _check_statements(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    """Parse ``sql``; refuse anything but queries (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.ParserException as exc:
        raise ReadOnlyQueryError(f"cannot parse the query: {exc}") from exc
    if not statements:
        raise ReadOnlyQueryError("empty query")
    for stmt in statements:
        if stmt.type not in ALLOWED:
            raise ReadOnlyQueryError(
                f"the SQL interface is read-only: {stmt.type.name} statements are refused (only SELECT-style queries run)"
            )
        _check_functions(con, stmt)
    return statements


def read_only_query(settings: Settings, sql: str, *, at_version: int | None = None,
                    params: dict | None = None) -> pa.Table:
    """Run ``sql`` against the lakehouse (as of snapshot ``at_version`` if given), read-only.
    ``params`` binds named parameters (``$name``) of the last statement.

    Raises :class:`ReadOnlyQueryError` for anything that would write or reach outside the lakehouse,
    and FileNotFoundError when there is no lakehouse yet.
    """
    require_lakehouse(settings)
    con = connect()
    try:
        statements = _check_statements(con, sql)
        attach(con, settings, read_only=True, snapshot=at_version)
        con.execute(f"USE {ALIAS}")
        con.execute(f"SET allowed_directories = ['{data_path(settings)}']")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            for stmt in statements[:-1]:
                con.execute(stmt.query)
            return con.execute(statements[-1].query, params or {}).fetch_arrow_table()
        except (duckdb.PermissionException, duckdb.InvalidInputException) as exc:
            raise ReadOnlyQueryError(f"the SQL interface is read-only and cannot reach files: {exc}") from exc
        except duckdb.Error as exc:
            text = str(exc)
            if "read-only" in text or "read only" in text.lower() or "disabled by configuration" in text:
                raise ReadOnlyQueryError(f"the SQL interface is read-only: {text}") from exc
            raise
    finally:
        con.close()
