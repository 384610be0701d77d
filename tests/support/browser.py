"""Browser-test helpers: a Streamlit server on a free port and a Chromium page.

`playwright install` cannot download browsers on our machines, so Playwright
drives Debian's ``chromium`` package by executable_path (``/usr/bin/chromium``
or ``$CHROMIUM_PATH``). Missing chromium raises RuntimeError; browser tests are
never skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Streamlit 1.67 serves its readiness probe here (streamlit/web/server/starlette/
# starlette_routes.py: ROUTE_HEALTH = "_stcore/health"); 200 = ready, 503 = not yet.
HEALTH_PATH = "/_stcore/health"
READY_TIMEOUT_S = 60.0

# Loopback requests must never go through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def chromium_path() -> str:
    """Path of the Chromium binary; RuntimeError naming the Debian package if absent."""
    path = os.environ.get("CHROMIUM_PATH") or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"Chromium not found at {path!r}. Install the Debian package 'chromium' "
            "(as root: apt-get update && apt-get install -y --no-install-recommends chromium; "
            "or run `make system-deps`), or set CHROMIUM_PATH."
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as e:
        return f"<no log: {e}>"


def _terminate_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it if still alive after `timeout`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    # Kill any stragglers in the group even if the leader already exited.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def streamlit_server(
    app_dir: str | os.PathLike,
    env: Mapping[str, str] | None = None,
    *,
    app: str = "app.py",
    log_path: str | os.PathLike | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Run ``streamlit run app.py`` from `app_dir` on a free port; yield its base URL.

    `env` is merged over os.environ; `args` are more `streamlit run` options
    (e.g. "--secrets.files", path). Server output goes to `log_path` (kept) or
    to a temporary file (removed afterwards). If the server never becomes
    healthy the RuntimeError carries the log tail; if the `with` body raises,
    the log tail is printed to stderr (pytest shows it with the failure).
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    keep_log = log_path is not None
    if log_path is None:
        fd, tmp = tempfile.mkstemp(prefix=f"streamlit-{port}-", suffix=".log")
        os.close(fd)
        log = Path(tmp)
    else:
        log = Path(log_path)
        log.parent.mkdir(parents=True, exist_ok=True)

    cmd = [
        sys.executable, "-m", "streamlit", "run", app,
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        *args,
    ]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cmd, cwd=str(app_dir), env=full_env, stdin=subprocess.DEVNULL,
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
    started = ok = False
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no response"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with code {proc.returncode} before becoming healthy "
                    f"({' '.join(cmd)}, cwd={app_dir}); log tail:\n{_tail(log)}"
                )
            try:
                with _opener.open(base_url + HEALTH_PATH, timeout=2) as resp:
                    if resp.status == 200:
                        break
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"streamlit not healthy at {base_url}{HEALTH_PATH} after "
                    f"{READY_TIMEOUT_S:.0f}s (last: {last}); log tail:\n{_tail(log)}"
                )
            time.sleep(0.25)
        started = True
        yield base_url
        ok = True
    finally:
        _terminate_group(proc)
        if started and not ok:
            print(f"--- streamlit log tail ({log}) ---\n{_tail(log)}", file=sys.stderr)
        if not keep_log:
            with contextlib.suppress(OSError):
                log.unlink()


@contextlib.contextmanager
def browser_page(viewport: dict | None = None, **context_kwargs):
    """Yield a Playwright ``Page`` in Debian chromium with a fresh profile dir.

    Playwright rejects ``--user-data-dir`` in ``args``; the fresh profile is
    given as ``launch_persistent_context(user_data_dir=...)`` instead.
    """
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=exe,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=viewport or {"width": 1280, "height": 900},
                **context_kwargs,
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                yield page
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def demo_sign_in(page, base_url: str, code: str, name: str, person: str | None = None) -> None:
    """Sign in through the demo view: pick the institution, then (optionally) one of its users by
    name, and wait for the home page. The user list is redrawn when the institution changes, so
    the user is picked only once the list shows that institution's people, and checked."""
    import re

    from playwright.sync_api import expect

    page.goto(base_url, wait_until="networkidle")
    page.get_by_text("Demo mode").wait_for(timeout=60_000)
    page.get_by_label("Institution", exact=True).click()
    page.get_by_role("option", name=f"({code})", exact=False).click()
    if person:
        label = re.compile(rf"{re.escape(person)}.*\({re.escape(code)}\)")
        radio = page.get_by_role("radio", name=label)
        radio.wait_for(state="attached", timeout=30_000)
        page.get_by_text(label).click()
        expect(radio).to_be_checked(timeout=10_000)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name=name).wait_for(timeout=60_000)


@contextlib.contextmanager
def signed_in_page(root: Path, env: dict, code: str, name: str, person: str | None = None,
                   requests: list | None = None, before=None, **page_kwargs):
    """The app on a real server, in Chromium, signed in through the demo sign-in as `person` of
    institution `code`; yields (page, base_url). `requests` receives every URL the browser asks
    for, from the first page on; `before(page)` runs before the first page opens."""
    with streamlit_server(root, env) as base_url, browser_page(**page_kwargs) as page:
        if requests is not None:
            page.on("request", lambda request: requests.append(request.url))
        if before is not None:
            before(page)
        demo_sign_in(page, base_url, code, name, person)
        yield page, base_url
