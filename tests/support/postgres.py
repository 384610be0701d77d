"""A brand-new, throwaway PostgreSQL server for tests.

    with throwaway_postgres() as url:
        engine = sqlalchemy.create_engine(url)

Needs the PostgreSQL server binaries (Debian package ``postgresql``). They are
looked up in ``$PG_BINDIR``, then ``/usr/lib/postgresql/<newest>/bin``, then
``pg_config --bindir``, then ``PATH``. Missing binaries raise RuntimeError:
tests that need PostgreSQL fail loudly, they are never skipped.

initdb/postgres refuse to run as root, so when the tests run as root (as CI
does) the server runs as the ``postgres`` OS user (created by the Debian
package) and the temporary directory is handed over to that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DEBIAN_HINT = (
    "Install the Debian package 'postgresql' "
    "(as root: apt-get update && apt-get install -y --no-install-recommends postgresql; "
    "or run `make system-deps`)."
)

SUPERUSER = "postgres"
DEFAULT_DB = "test"
READY_TIMEOUT_S = 30.0


class PostgresURL(str):
    """The SQLAlchemy URL (a plain ``str``) plus details useful in tests."""

    port: int
    base_dir: Path
    bindir: Path


def _has_server_bins(bindir: Path) -> bool:
    return all(os.access(bindir / b, os.X_OK) for b in ("initdb", "postgres"))


def _version_key(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.]", path.parent.name))


def find_postgres_bindir() -> Path:
    """Directory holding initdb/postgres/pg_isready; RuntimeError if none."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for c in candidates:
        if _has_server_bins(c):
            return c
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found in $PG_BINDIR, "
        "/usr/lib/postgresql/*/bin, `pg_config --bindir` or PATH. " + DEBIAN_HINT
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as e:
        return f"<no log: {e}>"


class _Runner:
    """Runs PostgreSQL programs as the current user, or as `postgres` when root."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        self.user: str | None = None
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "Running as root, but there is no 'postgres' OS user to run initdb/postgres "
                    "as (initdb refuses to run as root). " + DEBIAN_HINT
                ) from None
            self.user, self.uid, self.gid = pw.pw_name, pw.pw_uid, pw.pw_gid

    def kwargs(self) -> dict:
        if not self.as_root:
            return {}
        # Drop root's supplementary groups too.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def make_base_dir(self) -> Path:
        bases = [None]
        if self.as_root:
            bases.append("/tmp")  # $TMPDIR might not be reachable by `postgres`
        last_err = ""
        for base in bases:
            d = Path(tempfile.mkdtemp(prefix="throwaway-pg-", dir=base))
            if not self.as_root:
                return d
            os.chown(d, self.uid, self.gid)
            probe = subprocess.run(
                ["test", "-w", str(d)], cwd="/", capture_output=True, **self.kwargs()
            )
            if probe.returncode == 0:
                return d
            last_err = f"{d} not writable by user postgres"
            shutil.rmtree(d, ignore_errors=True)
        raise RuntimeError(f"cannot create a temp dir usable by the postgres user: {last_err}")

    def run(self, cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(os.environ, LC_ALL="C", LANG="C")
        return subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, **self.kwargs(),
        )

    def popen(self, cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
        env = dict(os.environ, LC_ALL="C", LANG="C")
        with open(log, "ab") as fh:
            return subprocess.Popen(
                cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fh,
                stderr=subprocess.STDOUT, start_new_session=True, **self.kwargs(),
            )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    # SIGINT = fast shutdown, SIGQUIT = immediate shutdown, then SIGKILL.
    for sig, wait_s in ((signal.SIGINT, 20), (signal.SIGQUIT, 5), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    if sig is signal.SIGKILL:  # backends may outlive a killed postmaster briefly
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_ready(proc, bindir: Path, port: int, sock_dir: Path, log: Path, runner: _Runner) -> None:
    pg_isready = bindir / "pg_isready"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"postgres exited with code {proc.returncode} during startup; log tail:\n{_tail(log)}"
            )
        if os.access(pg_isready, os.X_OK):
            r = runner.run(
                [str(pg_isready), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER,
                 "-d", "postgres", "-t", "2"],
                cwd=sock_dir, timeout=10,
            )
            if r.returncode == 0:
                return
        elif _port_open(port):
            try:
                import psycopg

                psycopg.connect(
                    host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", connect_timeout=2
                ).close()
                return
            except Exception:
                pass
        time.sleep(0.2)
    raise RuntimeError(
        f"postgres not ready on 127.0.0.1:{port} after {READY_TIMEOUT_S:.0f}s; log tail:\n{_tail(log)}"
    )


def _create_database(port: int, dbname: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", autocommit=True,
        connect_timeout=10,
    ) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


@contextlib.contextmanager
def throwaway_postgres(dbname: str = DEFAULT_DB) -> Iterator[PostgresURL]:
    """Start a fresh PostgreSQL server; yield its SQLAlchemy URL; always tear it down.

    The URL looks like ``postgresql+psycopg://postgres@127.0.0.1:PORT/test``
    (trust auth, loopback only, fsync off).
    """
    bindir = find_postgres_bindir()
    runner = _Runner()
    base = runner.make_base_dir()
    proc: subprocess.Popen | None = None
    try:
        data, sock, log = base / "data", base / "sock", base / "postgres.log"
        sock.mkdir()
        if runner.as_root:
            os.chown(sock, runner.uid, runner.gid)
        r = runner.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            cwd=base,
        )
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

        last_error: Exception | None = None
        for _attempt in range(3):  # retry if another process grabbed the port meanwhile
            port = _free_port()
            proc = runner.popen(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                 "-c", "listen_addresses=127.0.0.1", "-k", str(sock),
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=50", "-c", "shared_buffers=32MB"],
                cwd=base, log=log,
            )
            try:
                _wait_ready(proc, bindir, port, sock, log, runner)
                break
            except RuntimeError as e:
                last_error = e
                _stop(proc)
                if "could not bind" not in _tail(log, 200) and "in use" not in _tail(log, 200):
                    raise
        else:
            raise RuntimeError(f"postgres could not start after 3 attempts: {last_error}")

        _create_database(port, dbname)
        url = PostgresURL(f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{dbname}")
        url.port, url.base_dir, url.bindir = port, base, bindir
        yield url
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(base, ignore_errors=True)
