"""The system job's first half: keep each institution's contributions in step with its switches.

For every institution and service: when sharing is in effect on the as-of date (and,
for benchmarks, the institution has been live for a year), the contribution is
(re)built with anonymize.py and written under data/contributions/<token>/<service>/;
otherwise any contribution it had is deleted, files and token both. That deletion is
what makes opt-out real: the next release is built without it, and releases that
contained it are deleted (publish.py).

Magnitudes (loans, e-usage and reading-list counts) leave with the institution's persistent
protective noise (disclosure.perturb_contribution), so exact values never reach the
contributions folder.

A contribution is rebuilt only when the institution's local data or profile changed
since it was written (the source version), so a daily publish does not redo the work
of unchanged institutions.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from analytics.contribute import anonymize
from analytics.core.contract import FORMAT_VERSION
from analytics.contribute import disclosure
from analytics.ingest import local
from analytics.core.config import Settings
from analytics.core.schema import SERVICES
from analytics.control.store import Institution, SystemJobStore


@dataclass(frozen=True)
class Contributor:
    """One included contribution. Only the token and region travel into the release job."""

    token: str
    service: str
    region: str
    institution: Institution
    path: Path


def contribution_dir(settings: Settings, token: str, service: str) -> Path:
    return settings.contributions_dir / token / service


def eligible(institution: Institution, service: str, in_effect: bool, as_of: date) -> bool:
    if not in_effect:
        return False
    if service == "benchmark" and not institution.live_for_a_year(as_of):
        return False  # may view benchmarks, but is not included in them
    return True


def _source_version(settings: Settings, institution: Institution, noise: bool = True) -> str:
    # The contribution format is part of the version: an upgrade that changes what a table
    # holds rebuilds every contribution once. So is the noise: a contribution built without it
    # (measurement only) is never reused by a protected publish.
    # The year is too: retention commitments that ended last year leave the next contribution.
    profile = (f"format{FORMAT_VERSION}{'' if noise else '-exact'}|{institution.region}|"
               f"{institution.consortium}|{institution.code}|{date.today().year}")
    return f"{profile}|{local.data_version(settings.data_dir, institution.code)}"


def refresh(settings: Settings, job: SystemJobStore, institutions: dict[str, Institution],
            in_effect: dict[str, dict[str, bool]], as_of: date, progress=lambda _line: None,
            noise: bool = True) -> list[Contributor]:
    """Bring contributions in line with the switches; return those to include. `noise=False`
    builds them without protective noise (measuring the disclosure layer's cost only)."""
    existing = {(c.institution_code, c.service): c for c in job.contributions()}
    secrets = job.noise_secrets(list(institutions))
    included: list[Contributor] = []
    removed = rebuilt = 0
    for code, institution in sorted(institutions.items()):
        built: dict = {}  # tables shared by services are built once per institution
        noisy: dict = {}  # and perturbed once
        for service in SERVICES:
            current = existing.get((code, service))
            if not eligible(institution, service, in_effect.get(code, {}).get(service, False), as_of):
                if current is not None:
                    shutil.rmtree(settings.contributions_dir / current.token, ignore_errors=True)
                    job.remove_contribution(current.token, "sharing not in effect")
                    removed += 1
                continue
            version = _source_version(settings, institution, noise)
            contribution = current or job.ensure_contribution(code, service)
            target = contribution_dir(settings, contribution.token, service)
            if contribution.source_version != version or not target.exists():
                tables = anonymize.build_contribution(local.institution_dir(settings.data_dir, code), institution,
                                                      service, cache=built)
                fresh = {name: frame for name, frame in tables.items() if name not in noisy}
                noisy.update(disclosure.perturb_contribution(fresh, secrets[code]) if noise else fresh)
                tables = {name: noisy[name] for name in tables}
                _write(target, tables)
                job.mark_refreshed(contribution.token, version)
                rebuilt += 1
            if any(target.glob("*.parquet")):
                included.append(Contributor(contribution.token, service, institution.region, institution, target))
    progress(f"contributions: {len(included)} included, {rebuilt} rebuilt, {removed} removed")
    return included


def _write(target: Path, tables: dict) -> None:
    """Replace a contribution directory as a whole, never leaving a half-written one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for name, frame in tables.items():
            frame.write_parquet(staging / f"{name}.parquet", compression="zstd")
        old = target.with_name(f".{target.name}-old")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
