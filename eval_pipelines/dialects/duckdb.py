"""DuckDB: a local file opened read-only with DuckDB's own client."""

from typing import TYPE_CHECKING, Any, ClassVar

from duckdb_engine import ConnectionWrapper

from eval_pipelines.dialects.base import SqlDialect

if TYPE_CHECKING:
    from eval_pipelines.warehouse import Warehouse


def shared_connection(connection: Any) -> Any:
    """A DuckDB connection as duckdb-engine's DBAPI wrapper whose ``close()`` does nothing:
    Great Expectations runs on it, but it belongs to the Warehouse."""

    class SharedConnection(ConnectionWrapper):
        def close(self) -> None:
            pass

    return SharedConnection(connection)


class DuckDB(SqlDialect):
    """DuckDB 1.x and 2.x.

    Queries run on one read-only connection of DuckDB's own client (results as Arrow, no
    Python object per row); SQLAlchemy (duckdb-engine) is used only to render SQL. Great
    Expectations runs on that same connection (see :mod:`eval_pipelines.gx_compat`), so it
    sees the temporary window table.
    """

    name = "duckdb"
    title = "DuckDB"
    url_example = "duckdb:///:memory:"
    client: ClassVar[str] = "duckdb"
    gx_shares_session: ClassVar[bool] = True

    @classmethod
    def connect_args(cls) -> dict[str, Any]:
        return {"read_only": True}

    def column_type_names(self, warehouse: "Warehouse", source_sql: str) -> dict[str, str]:
        relation = warehouse.duckdb_connection().sql(
            f"SELECT * FROM {source_sql} AS source LIMIT 0"
        )
        return {
            column: str(kind) for column, kind in zip(relation.columns, relation.types, strict=True)
        }

    def add_gx_datasource(self, context: Any, warehouse: "Warehouse", name: str) -> Any:
        """GX on the Warehouse's own read-only connection, through a SQLAlchemy engine whose
        only connection wraps it (GX may not close it: it belongs to the Warehouse)."""
        wrapper = shared_connection(warehouse.duckdb_connection())
        return context.data_sources.add_sql(
            name, connection_string="duckdb:///:memory:", kwargs={"creator": lambda: wrapper}
        )

    def hash32(self, text_expr: str) -> str:
        # A hexadecimal string literal prefixed 0x casts to an integer.
        return f"CAST('0x' || SUBSTR(MD5({text_expr}), 1, 8) AS BIGINT)"

    def exact_sum(self, expr: str) -> str:
        """``fsum``: a compensated (Kahan-Babuska) sum, correctly rounded in practice, so the
        parallel order of additions does not show in the result."""
        return f"fsum({expr})"

    def integer_sum(self, expr: str) -> str:
        """``SUM`` of a BIGINT is a HUGEINT (128 bits) in DuckDB."""
        return f"SUM({expr})"
