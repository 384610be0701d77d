"""What every collection development view shares: the reciprocity gate, the institution's own
identifiers ("held by us"), the reporting windows of a release, and the error of a bad filter."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analytics.control.store import Store
from analytics.core import access, months
from analytics.core.access import Principal
from analytics.core.errors import InvalidValue
from analytics.ingest.local import table_path
from analytics.release.handle import Release

MAX_LIMIT = 1000  # the most rows a list returns


class FilterError(InvalidValue):
    """A filter value is out of range; the message says what is allowed."""


def require_collection_sharing(actor: Principal, store: Store, code: str) -> None:
    """Reciprocity: only institutions that share collection development data see the community's."""
    access.require_member(actor, code, "collection development reports")
    if actor.system:
        return
    state = store.sharing_state(actor, code)["collection_development"]
    if not state.in_effect:
        raise access.PermissionDenied(
            f"{code} does not share Selection and Collection Development data, so it cannot see the community's. "
            f"A General System Administrator can turn sharing on in the data sharing profile."
        )


def window_months(release: Release, window: int) -> dict[str, str]:
    """Recent and baseline windows ending with the last complete month before the as-of date."""
    return months.windows(release.manifest, window)


def own_identifiers(actor: Principal, data_dir: Path, code: str) -> tuple[list[str], list[str]]:
    """The institution's work keys and ISBNs: 'held by us' matches either, so a work is held
    whether the institution has its print or its e-book edition. Its own users only."""
    access.require_member(actor, code, "the local items")
    path = table_path(data_dir, code, "items")
    if not path.exists():
        return [], []
    items = pl.read_parquet(path, columns=["work_key", "isbn", "withdrawn_date"]).filter(
        pl.col("withdrawn_date").is_null())
    keys = items["work_key"].drop_nulls().unique().sort().to_list()
    isbns = (items["isbn"].drop_nulls().str.split(";").explode().drop_nulls().unique().sort().to_list())
    return keys, isbns
