"""Render one page of the app in Streamlit's AppTest, cold then warm; print the times as JSON.

Used by `python -m analytics bench` (stage recommend): the analytics package never
imports Streamlit, so the page is measured here. Usage:
    python scripts/bench_page.py DATA_DIR EMAIL pages/recommendations.py
Warm is the median of 5 reruns with every cache filled; it includes AppTest's own cost.
page_peak_mib is this process's own peak memory (the app, the page and AppTest).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(data_dir: str, email: str, page: str) -> None:
    os.environ["ANALYTICS_DATA_DIR"] = data_dir
    # The user is signed in through the session, as the demo sign-in does (the bench
    # community has no single sign-on).
    os.environ["ANALYTICS_SIGN_IN"] = "demo"
    sys.path.insert(0, str(ROOT))
    from streamlit.testing.v1 import AppTest

    from analytics.tools.bench_stages import own_peak_mib

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.session_state["signed_in_email"] = email
    at.run()
    started = time.perf_counter()
    at.switch_page(page).run()
    cold = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"{page} failed: {at.exception[0].value}")
    warm = []
    for _ in range(5):
        started = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - started)
    peak = own_peak_mib()
    print(json.dumps({"page_cold_ms": round(cold * 1000), "page_warm_ms": round(sorted(warm)[2] * 1000),
                      "page_peak_mib": None if peak is None else round(peak)}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
