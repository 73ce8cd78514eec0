"""Named leases in the database: a lock that any host can hold, renew and release, and that lapses by itself when
its holder stops renewing it (killed, machine gone). The scheduler holds one; every sync holds its catalog's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from jobs.clock import now_plus
from jobs.models import Lease

log = logging.getLogger(__name__)


def catalog_lease(name: str) -> str:
    """The lease a sync of catalog `name` holds: never two syncs of one catalog at once."""
    return f"catalog:{name}"


class Leases:
    """The leases of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def acquire(self, name: str, holder: str, seconds: float) -> bool:
        """Takes or renews lease `name` for `seconds` if it is free, lapsed, or already `holder`'s."""
        with self.engine.begin() as conn:
            now = now_plus(conn)
            taken = conn.execute(
                update(Lease)
                .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
                .values(
                    holder=holder,
                    expires_at=now_plus(conn, seconds),
                    acquired_at=case((Lease.holder == holder, Lease.acquired_at), else_=now),
                )
            ).rowcount
            if taken:
                return True
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            row = conn.execute(
                insert(Lease)
                .values(name=name, holder=holder, expires_at=now_plus(conn, seconds), acquired_at=now)
                .on_conflict_do_nothing(index_elements=[Lease.name])
                .returning(Lease.name)
            ).first()
            return row is not None

    def release(self, name: str, holder: str) -> None:
        """Gives lease `name` up if `holder` still holds it."""
        with self.engine.begin() as conn:
            conn.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))

    def holder(self, name: str) -> str | None:
        """Who holds lease `name` now (None when it is free or lapsed)."""
        with self.engine.begin() as conn:
            return conn.scalar(select(Lease.holder).where(Lease.name == name, Lease.expires_at >= now_plus(conn)))

    @contextmanager
    def hold(
        self,
        name: str,
        holder: str,
        seconds: float,
        *,
        waiting: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[threading.Event]:
        """Holds lease `name` for the block, renewing it every third of `seconds`; waits while another holds it
        (calling waiting(holder) once) unless `stop` is set first (then raises LeaseBusy). Yields an event set
        if the lease is lost meanwhile (the database was away longer than the lease)."""
        told = False
        while not self.acquire(name, holder, seconds):
            other = self.holder(name) or "another process"
            if waiting is None or (stop is not None and stop.is_set()):
                raise LeaseBusy(name, other)
            if not told:
                waiting(other)
                told = True
            (stop or threading.Event()).wait(min(0.5, seconds / 3))
        lost, done = threading.Event(), threading.Event()

        def renew() -> None:
            while not done.wait(seconds / 3):
                try:
                    if not self.acquire(name, holder, seconds):
                        lost.set()
                        return
                except Exception:  # the database is away: the lease lapses unless it is back in time
                    log.warning("could not renew lease %s", name, exc_info=True)

        renewer = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
        renewer.start()
        try:
            yield lost
        finally:
            done.set()
            renewer.join()
            try:
                self.release(name, holder)
            except Exception:  # it lapses by itself
                log.warning("could not release lease %s", name, exc_info=True)


class LeaseBusy(Exception):
    def __init__(self, name: str, holder: str) -> None:
        super().__init__(f"{name} is held by {holder}")
        self.name, self.holder = name, holder
