"""DuckDB SQL of release_sql.py as Spark SQL, with SQLGlot.

SQLGlot transpiles almost all of the release SQL as it is ($name parameters become
Spark's :name markers, list() becomes collect_list, unnest explode, ...). Three things it
gets wrong without an error, so the rules below fix or refuse them:
- quantile_cont(x, p) would become PERCENTILE_CONT(x, p), which Spark refuses, and the
  standard WITHIN GROUP form would become the *approximate* percentile_approx: both are
  written as Spark's exact percentile(x, p), the same linear interpolation;
- hash() is 64-bit in DuckDB and 32-bit in Spark (collisions from about 10^5 distinct
  values): it is written as xxhash64;
- list(x ORDER BY y) would lose its ORDER BY: refused (NotPortable), write
  list_sort(list(x)).
Also refused: quantile()/quantile_disc/approx_quantile (sqlglot would make them continuous or
approximate), a descending WITHIN GROUP order, and a decimal literal in a division (Spark
would divide in DECIMAL). Not checked, so kept out of the release SQL by review and the
equality test: list() over a column that can be NULL (DuckDB keeps NULLs, Spark's
collect_list drops them) and list_distinct over lists holding NULL.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp


class NotPortable(ValueError):
    """A DuckDB construct that Spark would run with a different meaning."""


def _is_decimal_literal(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string and any(c in node.this for c in ".eE")


def _spark_rules(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont):
        (ordered,) = node.expression.expressions
        if ordered.args.get("desc"):
            raise NotPortable(f"{node.sql('duckdb')}: write quantile_cont(x, 1 - p) instead of a descending order")
        return exp.Anonymous(this="percentile", expressions=[ordered.this, node.this.this])
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        return exp.Anonymous(this="percentile", expressions=[node.this, node.expression])
    if isinstance(node, exp.PercentileDisc | exp.ApproxQuantile | exp.Quantile):
        # DuckDB's quantile() is quantile_disc; sqlglot would write Spark's continuous percentile.
        raise NotPortable(f"{node.sql('duckdb')}: use quantile_cont(x, p), which both engines compute exactly")
    if isinstance(node, exp.Div) and any(_is_decimal_literal(n) for n in node.find_all(exp.Literal)):
        raise NotPortable(f"{node.sql('duckdb')}: a decimal literal makes Spark divide in DECIMAL and round "
                          f"differently; divide a DOUBLE (CAST(x AS DOUBLE) / y)")
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
        return exp.Anonymous(this="xxhash64", expressions=node.expressions)
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        raise NotPortable(f"{node.sql('duckdb')}: Spark's collect_list has no order; write list_sort(list(...))")
    return node


def parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="duckdb")


def spark_tree(tree: exp.Expression) -> exp.Expression:
    return tree.copy().transform(_spark_rules)


@lru_cache(maxsize=256)
def to_spark(sql: str) -> str:
    """The Spark SQL text of one DuckDB statement (raises NotPortable)."""
    return spark_tree(parse(sql)).sql(dialect="spark")
