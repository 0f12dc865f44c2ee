"""SQL dialects: one class per warehouse engine (see :mod:`eval_pipelines.dialects.base`).

:func:`dialect_class` finds the class of a warehouse URL (``duckdb:///...``,
``postgresql://...``, Spark Connect's ``sc://host:port``) and fails with one sentence naming
the supported engines otherwise.
A new engine is a new module here with its class added to :data:`DIALECTS`.
"""

from sqlalchemy.engine import URL, Dialect, make_url

from eval_pipelines.dialects.base import TYPE_FAMILIES, SqlDialect, type_family
from eval_pipelines.dialects.duckdb import DuckDB
from eval_pipelines.dialects.postgresql import PostgreSQL
from eval_pipelines.dialects.spark import Spark
from eval_pipelines.errors import WarehouseError

DIALECTS: dict[str, type[SqlDialect]] = {d.name: d for d in (DuckDB, PostgreSQL, Spark)}


def supported_engines() -> str:
    """``DuckDB (duckdb://...), PostgreSQL (postgresql://...) or Spark (sc://...)``."""
    names = [f"{d.title} ({d.name}://...)" for d in DIALECTS.values()]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def dialect_class(url: str | URL) -> type[SqlDialect]:
    """The dialect class of a warehouse URL; :class:`WarehouseError` for another engine."""
    backend = make_url(url).get_backend_name()
    try:
        return DIALECTS[backend]
    except KeyError:
        raise WarehouseError(
            f"warehouse: the engine {backend!r} is not supported; use {supported_engines()}"
        ) from None


def dialect_for(dialect: "str | URL | Dialect | SqlDialect") -> SqlDialect:
    """A dialect object from a URL, a SQLAlchemy dialect (wrapped, so its quoting and
    literal rendering are kept) or a dialect object (returned as it is)."""
    if isinstance(dialect, SqlDialect):
        return dialect
    if isinstance(dialect, Dialect):
        return dialect_class(f"{dialect.name}://")(dialect)
    return dialect_class(dialect)()


__all__ = [
    "DIALECTS",
    "TYPE_FAMILIES",
    "DuckDB",
    "PostgreSQL",
    "Spark",
    "SqlDialect",
    "dialect_class",
    "dialect_for",
    "supported_engines",
    "type_family",
]
