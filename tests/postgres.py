"""A throw-away PostgreSQL server for the question-log tests: Debian's `postgresql` binaries (`make postgres` installs
them), a fresh cluster in a temporary folder, a free port on 127.0.0.1 and its unix socket beside the data.

PostgreSQL refuses to run as root; under root the server runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import free_port


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (/usr/lib/postgresql/<version>/bin), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


class PostgresServer:
    """`initdb` and `postgres` in a temporary folder; `url` is a SQLAlchemy URL (psycopg 3) to its `postgres` database."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed: run `make postgres` (Debian's postgresql package).")
        self.user = "postgres" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        # Not under pytest's tmp folder: as root that is private to root, and the server runs as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="rag-postgres-"))
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.sockets.mkdir()
        if os.getuid() == 0:
            account = pwd.getpwnam(self.user)
            for path in (self.root, self.sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
        run_as = {"user": self.user} if os.getuid() == 0 else {}
        subprocess.run(
            [bin_dir / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, **run_as,
        )
        self.port = free_port()
        self.log_path = self.root / "postgres.log"
        self.log = self.log_path.open("w")
        if os.getuid() == 0:
            os.chown(self.log_path, pwd.getpwnam(self.user).pw_uid, -1)
        # fsync off: a test server, rebuilt every run; nothing here measures durability.
        self.process = subprocess.Popen(
            [bin_dir / "postgres", "-D", self.data, "-p", str(self.port), "-k", self.sockets, "-h", "127.0.0.1", "-F"],
            stdout=self.log, stderr=subprocess.STDOUT, **run_as,
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        import psycopg

        deadline = time.time() + timeout
        while time.time() < deadline and self.process.poll() is None:
            try:
                psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start: {self.log_path.read_text()[-2000:] if self.log_path.exists() else ''}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open connections are closed), a kill after 30 s; the folder is removed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def new_database(self) -> str:
        """A new empty database on this server (one per test keeps tests apart); its SQLAlchemy URL."""
        import psycopg

        name = f"t{secrets.token_hex(6)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
