"""The selection report: works a peer group of the region acquires or puts on reading lists that
the institution does not hold."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analytics.core.schema import REGIONS
from analytics.release.handle import Release
from analytics.views.collection import MAX_LIMIT, FilterError


def widest_percent(group_size: int, k_title: int, step: int = 5) -> int:
    """The "acquired by at least" percentage (a multiple of `step`) at which every released work of a
    group of `group_size` shows: a work is released from K_TITLE acquiring institutions, a share of
    K_TITLE / group_size; any lower percentage lists the same works."""
    share = 100 * min(k_title, group_size) / max(group_size, 1)
    return int(max(step, share // step * step))


@dataclass(frozen=True)
class SelectionFilters:
    region: str
    peer_group: str = "all"
    min_acquired_percent: float = 20.0
    min_lists: int = 3
    limit: int = 200

    def validated(self, k_title: int) -> "SelectionFilters":
        if self.region not in REGIONS:
            raise FilterError(f"region {self.region!r} is not a data center ({', '.join(REGIONS)}).")
        if not 0 < self.min_acquired_percent <= 100:
            raise FilterError(f"acquired by at least {self.min_acquired_percent}% of the peer group: choose 1 to 100.")
        if not 1 <= self.min_lists <= 10_000:
            raise FilterError(f"on at least {self.min_lists} peer reading lists: choose 1 to 10,000.")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise FilterError(f"limit {self.limit}: choose 1 to {MAX_LIMIT}.")
        return SelectionFilters(self.region, self.peer_group, self.min_acquired_percent,
                                max(self.min_lists, k_title), self.limit)


SELECTION = """
WITH held_by_us AS (
    SELECT key AS work_key FROM own_keys
    UNION
    SELECT t.work_key FROM title_isbns t JOIN own_isbns o ON t.isbn = o.isbn
)
SELECT t.work_key, t.title, t.author, t.isbns, t.subject, t.lc_class, t.lc_subclass, t.format, t.pub_year,
       t.publisher, p.peer_group, p.group_size, p.institutions_holding, p.institutions_acquired_12m,
       p.institutions_listing,
       CAST(p.institutions_acquired_12m AS DOUBLE) / p.group_size AS acquired_share
FROM peer_selection p JOIN titles t ON p.work_key = t.work_key
WHERE p.region = $region AND p.peer_group = $peer_group
  AND (coalesce(p.institutions_acquired_12m, 0) >= $min_share * p.group_size
       OR coalesce(p.institutions_listing, 0) >= $min_lists)
  AND t.work_key NOT IN (SELECT work_key FROM held_by_us)
ORDER BY acquired_share DESC NULLS LAST, p.institutions_listing DESC NULLS LAST, p.institutions_holding DESC NULLS LAST,
         t.work_key
LIMIT $limit
"""


def peer_groups(release: Release, region: str) -> pl.DataFrame:
    """The peer groups released for a region, with their sizes (counts only)."""
    return release.cursor().sql(
        "SELECT DISTINCT peer_group, group_size FROM peer_selection WHERE region = $region ORDER BY peer_group",
        params={"region": region}).pl()


def selection(release: Release, filters: SelectionFilters, own_keys: list[str], own_isbns: list[str]) -> pl.DataFrame:
    """Works a peer group acquired in the last 12 months (at least X% of its members) or lists
    on reading lists (at least N members), that the institution does not hold."""
    filters = filters.validated(release.manifest["privacy"]["K_TITLE"])
    known = peer_groups(release, filters.region)["peer_group"].to_list()
    if filters.peer_group not in known:
        raise FilterError(f"peer group {filters.peer_group!r} is not released for {filters.region}; "
                          f"choose from {', '.join(known) or 'none (no release data for this region)'}.")
    cur = release.cursor()
    cur.register("own_keys", pl.DataFrame({"key": list(own_keys)}, schema={"key": pl.String}))
    cur.register("own_isbns", pl.DataFrame({"isbn": list(own_isbns)}, schema={"isbn": pl.String}))
    params = {"region": filters.region, "peer_group": filters.peer_group,
              "min_share": filters.min_acquired_percent / 100, "min_lists": filters.min_lists, "limit": filters.limit}
    return cur.sql(SELECTION, params=params).pl()
