"""Write the README's screenshots from the current demo, through the browser tour of the tests.

    python scripts/screenshots.py [--data-dir DIR] [--out docs]

Without --data-dir it builds the demo community in a temporary directory and publishes it. It then
starts the app, signs in as each demo role of an institution that shares everything, tours every
page (tests/support/tour.py: the same checks as the tests) and keeps the pages the README shows.
It fails, and writes nothing, if the tour finds a problem on a page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# README file -> (role, page title): what a librarian, a manager and an administrator see first.
SHOTS = {
    "screenshot-home.png": ("manager", "Home"),
    "screenshot-trending.png": ("librarian", "Trending titles"),
    "screenshot-recommendations.png": ("manager", "Recommendations"),
    "screenshot-profile.png": ("admin", "Data sharing profile"),
}


def build_demo(data_dir: Path) -> None:
    from analytics.control.store import Store
    from analytics.core.config import load_settings
    from analytics.release.publish import publish
    from analytics.synthetic.demo import build_demo as build

    settings = load_settings(data_dir)
    build(settings, progress=lambda line: print(line, flush=True))
    store = Store.from_settings(settings)
    try:
        publish(settings, store)
    finally:
        store.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a published community (default: build the demo)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the screenshots go (docs/)")
    args = parser.parse_args(argv)

    from analytics.synthetic.demo import DEMO_USERS
    from tests.support.browser import signed_in_page
    from tests.support.tour import Messages, sharing_institution, tour

    work = Path(tempfile.mkdtemp(prefix="screenshots-"))
    try:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = work / "data"
            build_demo(data_dir)
        code, name = sharing_institution(data_dir)
        env = {"ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_SIGN_IN": "demo"}
        people = dict(DEMO_USERS)
        taken: dict[str, Path] = {}
        for role in sorted({role for role, _ in SHOTS.values()}):
            titles = tuple(title for r, title in SHOTS.values() if r == role)
            watched: list = []
            requests: list[str] = []
            with signed_in_page(ROOT, env, code, name, people[role], requests=requests,
                                before=lambda page: watched.append(Messages(page)),
                                viewport={"width": 1400, "height": 1000}) as (page, base_url):
                visits = tour(page, base_url, watched[0], requests, shots=work / "shots", prefix=f"{role}-",
                              only=titles)
            problems = {v.title: v.problems for v in visits if v.problems}
            if problems:
                print(f"The tour found problems as {role}; no screenshot written: {problems}", file=sys.stderr)
                return 1
            taken.update({f"{role}:{v.title}": v.screenshot for v in visits})
        args.out.mkdir(parents=True, exist_ok=True)
        for file, (role, title) in SHOTS.items():
            shutil.copyfile(taken[f"{role}:{title}"], args.out / file)
            print(f"wrote {args.out / file} ({role}, {title})")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("ANALYTICS_SIGN_IN", "demo")
    raise SystemExit(main())
