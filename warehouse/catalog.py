"""Read-only SQL over the lakehouse for users (``hmmr sql``).

The catalog is attached READ_ONLY on a fresh connection, then external access is switched off and the
configuration locked (measured in stack-notes), and only query statements are accepted: SELECTs over the tables and views work; INSERT,
DELETE, COPY TO, ATTACH, INSTALL, reading files (``read_csv('/etc/passwd')``) and SET are refused.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from hmmr.config import Settings
from warehouse.lake import ALIAS, attach, connect, data_path, require_lakehouse


class ReadOnlyQueryError(Exception):
    """A statement the read-only SQL interface refuses (writes, attaching, file access, settings)."""


ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


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
