"""`loyalsync run`: one APScheduler job per account x stream, no overlapping runs, clean stop.

With several replicas on one store, every replica schedules every job, and a job runs only on the
replica that holds its account's lease (`sync.cluster`); store-wide jobs take a lease per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import DBAPIError

from app.backoff import AuthBackoff
from app.health import Health, StreamWatch
from app.logs import log_context
from app.wiring import App, JobSpec
from connectors.errors import LoyalsyncError
from store.replica import default_replica_name
from sync.cluster import Coordinator, account_lease
from sync.leases import LeaseLost
from sync.runner import RunResult

if TYPE_CHECKING:
    from app.service import Service

__all__ = ["Daemon"]

log = logging.getLogger("loyalsync.daemon")
RECENT_RESULTS = 1000
LOYALTY_JOB = "loyalty"
MEMBERS_JOB = "loyalty-members"
ACTIONS_JOB = "actions"
WEBHOOKS_JOB = "webhooks"
CRM_JOB = "crm"



def _first_line(text: str | None) -> str:
    return (text or "no detail").splitlines()[0]

class Daemon:
    """Polls every enabled stream on its interval until stopped."""

    def __init__(self, app: App, *, stop: asyncio.Event | None = None,
                 on_result: Callable[[RunResult], None] | None = None):
        """`on_result` is told of every finished stream run (metrics)."""
        self.app = app
        cluster = app.config.settings.cluster
        self.replica = cluster.replica or default_replica_name()
        self.coordinator = Coordinator(
            app.store.engine, self.replica, timedelta(seconds=cluster.lease_seconds),
            sorted({job.lease for job in app.jobs()}), busy=self._busy)
        self._by_lease: dict[str, set[asyncio.Task]] = {}
        self.stop = stop or asyncio.Event()
        self.on_result = on_result
        # The latest runs only: a daemon runs for months, and the store keeps each stream's outcome.
        self.results: deque[RunResult] = deque(maxlen=RECENT_RESULTS)
        self._slots = asyncio.Semaphore(app.config.settings.schedule.max_concurrent_jobs)
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task] = set()
        # Runs cancelled because their account's lease moved to another replica (`_after_beat`).
        self._handed_over: set[asyncio.Task] = set()
        # What /healthz reads: kept here, since a broken store cannot record its own failures.
        self.health = Health(app.store.engine.url,
                             unhealthy_after=app.config.settings.schedule.unhealthy_after_intervals)
        self.auth_backoff = AuthBackoff()

    @property
    def running(self) -> bool:
        """True from the scheduler's start until a stop is asked for."""
        return self._scheduler is not None and self._scheduler.running and not self.stop.is_set()

    def _interval(self, job: JobSpec) -> timedelta:
        spec = self.app.connector(job.account).stream_spec(job.stream)
        return spec.poll_interval or self.app.config.settings.schedule.default_poll_interval

    async def _run(self, job: JobSpec) -> None:
        with log_context(**job.log_fields):
            await self._run_job(job)

    def _busy(self, lease: str) -> bool:
        return bool(self._by_lease.get(lease))

    async def _run_job(self, job: JobSpec) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            async with self._slots:
                # Checked once a slot is free: the lease may have moved while this run waited.
                lease = self.coordinator.holds(job.lease)
                if lease is None:
                    return  # another replica holds this account (or nobody yet: the next beat shares it)
                self._by_lease.setdefault(job.lease, set()).add(task)  # type: ignore[arg-type]
                result = await self.app.run_job(job, fence=self.coordinator.fence(lease))
        except LeaseLost as exc:
            log.warning("%s: stopped, %s; the replica holding it now carries on from the saved cursor", job.id, exc)
            return
        except DBAPIError as exc:
            # Disk full, damaged pages, a store away: health reports it; one line, no traceback.
            kind = self.health.store_failed(job.id, exc)
            log.error("%s: the store refused the run (%s: %s); it resumes from its saved cursor at the next "
                      "interval", job.id, kind.replace("_", " "), str(exc.orig or exc).strip().splitlines()[0])
            return
        except asyncio.CancelledError:
            handed_over = task in self._handed_over
            if not handed_over and not self.stop.is_set() and self.coordinator.holds(job.lease) is not None:
                raise
            # Cut short by the stop or by losing the lease: expected, not a crash for APScheduler
            # to log with a traceback. Safe: the cursor only moved with fully written pages.
            why = "its account's lease moved to another replica" if handed_over else "the daemon is stopping"
            log.info("%s: cut short, %s; resumes from its saved cursor", job.id, why)
            return
        finally:
            self._running.discard(task)  # type: ignore[arg-type]
            self._handed_over.discard(task)  # type: ignore[arg-type]
            self._by_lease.get(job.lease, set()).discard(task)  # type: ignore[arg-type]
        self.results.append(result)
        self.health.run_finished(job.id, result)
        if self.on_result is not None:
            self.on_result(result)
        log.info("%s: %s, %d records, %d quarantined", job.id, result.state, result.records,
                 result.quarantined)
        self._back_off(job, result)
        # The platform named a wait shorter than the poll interval: come back then, not later.
        if result.state == "deferred" and result.retry_after and self._scheduler is not None:
            when = datetime.now(UTC) + timedelta(seconds=result.retry_after)
            aps_job = self._scheduler.get_job(job.id)
            if aps_job is not None and aps_job.next_run_time and when < aps_job.next_run_time:
                aps_job.modify(next_run_time=when)

    def _back_off(self, job: JobSpec, result: RunResult) -> None:
        """A rejected token: move the job's next run out (doubling, capped); a success resets it."""
        if not result.auth_error:
            if self.auth_backoff.succeeded(job.id):
                log.info("%s: token accepted again; polling every %s", job.id, self._interval(job))
            return
        retry = self.auth_backoff.rejected(job.id, self._interval(job), datetime.now(UTC))
        log.warning("%s: token rejected %d time(s) in a row (%s); next try at %s UTC (in %s); set a new token in $%s",
                    job.id, retry.step, _first_line(result.error), f"{retry.at:%Y-%m-%d %H:%M:%S}", retry.wait,
                    job.account.settings.token_env)
        aps_job = self._scheduler.get_job(job.id) if self._scheduler is not None else None
        if aps_job is not None:
            aps_job.modify(next_run_time=retry.at)

    def _heartbeat(self, loop: asyncio.AbstractEventLoop, halt: threading.Event) -> None:
        """The heartbeat thread: beats on time however busy the event loop and its worker threads are.

        Beats are due every `interval` from the last one's start, not from its end: a slow beat (a
        loaded database) must not push the next renewal towards the end of the lease period.
        """
        due = time.monotonic() + self.coordinator.interval
        while not halt.wait(max(0.0, due - time.monotonic())):
            due = max(due + self.coordinator.interval, time.monotonic())
            try:
                gained, lost = self.coordinator.beat()
            except Exception as exc:  # noqa: BLE001 - the store is away: leases lapse, fences refuse writes
                log.warning("cluster heartbeat failed (%s: %s); retrying at the next beat", type(exc).__name__, exc)
                continue
            if gained or lost:
                loop.call_soon_threadsafe(self._after_beat, gained, lost)

    def _after_beat(self, gained: list[str], lost: list[str]) -> None:
        """Stop the runs of accounts lost; start those of accounts gained at once."""
        for name in lost:
            for task in list(self._by_lease.get(name, ())):
                self._handed_over.add(task)
                task.cancel()
        if gained:
            log.info("replica %s took over %d account(s): %s", self.replica, len(gained), ", ".join(gained[:10]))
            self._run_now(set(gained))

    def _run_now(self, leases: set[str]) -> None:
        """Start the stream jobs of `leases` now instead of at their next interval (work taken over)."""
        if self._scheduler is None:
            return
        now = datetime.now(UTC)
        for job in self.app.jobs():
            aps_job = self._scheduler.get_job(job.id) if job.lease in leases else None
            if aps_job is not None:
                aps_job.modify(next_run_time=now)

    async def _store_wide(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run a store-wide job here unless another replica is running it now."""
        try:
            lease = await asyncio.to_thread(self.coordinator.try_job, name)
            if lease is None:
                return
            try:
                await step()
            finally:
                await asyncio.to_thread(self.coordinator.end_job, lease)
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise
            # The stop cut it short, perhaps while giving the lease back: the stop releases every
            # lease anyway. Not a crash for APScheduler to log with a traceback.

    async def _loyalty(self) -> None:
        await self._store_wide(LOYALTY_JOB, self._loyalty_run)

    async def _members(self) -> None:
        await self._store_wide(MEMBERS_JOB, self._members_run)

    async def _loyalty_run(self) -> None:
        """One `loyalty.incremental.run_changed`: earn, take back and expire for the members with
        something new since the last run (every member on the first run)."""
        from loyalty.incremental import run_changed

        result = await self._in_thread(LOYALTY_JOB, run_changed)
        if result is not None:
            run = result.run
            log.info("loyalty: %d members%s, %d orders, %d entries written, %d lots activated",
                     run.members, " (full run)" if result.full else "", run.orders, run.inserted, run.filled)

    async def _members_run(self) -> None:
        """One `loyalty.membership.refresh_members`: tiers (with the downgrade policy) and segments."""
        from loyalty.membership import refresh_members

        result = await self._in_thread(MEMBERS_JOB, refresh_members)
        if result is not None:
            log.info("loyalty members: %d members, %d rows written, %d left alone (evaluated later already)",
                     result.members, result.written, result.skipped_newer)

    async def _actions(self) -> None:
        """Look up missing product names, plan, gate and store actions (one replica at a time); send
        those of the accounts held here.

        Sending stays with the account's replica, so its rate budget stays in one process; each
        action is also claimed in the outbox itself (`loyalty.outbox.execute`).
        """
        from loyalty.action_job import propose_actions
        from loyalty.outbox import ProposeResult, execute
        from loyalty.product_names import fill_product_names

        settings = self.app.config.settings
        mode, now = settings.daemon.mode, datetime.now(UTC)
        held = set(self.coordinator.leases.held)
        connectors = {k: c for k, c in self.app.write_connectors().items() if account_lease(*k) in held}
        try:
            plan = await asyncio.to_thread(self.coordinator.try_job, ACTIONS_JOB)
            proposed = ProposeResult()
            if plan is not None:
                try:
                    # The planner names the products of every account's replies first, whoever holds
                    # the account: a few catalog reads, and no reply planned before its name was sought.
                    names = await fill_product_names(self.app.store, self.app.write_connectors(), now=now)
                    proposed = await asyncio.to_thread(propose_actions, self.app.store, settings.actions,
                                                       self.app.capabilities(), mode=mode, now=now, names=names)
                finally:
                    await asyncio.to_thread(self.coordinator.end_job, plan)
            executed = await execute(self.app.store, connectors, mode=mode, now=now, settings=settings.actions,
                                     secrets=self.app.secrets(), claimer=self.replica)
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise
            return
        except LoyalsyncError as exc:  # expected (the ledger is being loaded): one line, no traceback
            log.warning("%s: %s; retrying at the next interval", ACTIONS_JOB, exc)
            return
        except DBAPIError as exc:  # the store (full, damaged, away): health names it
            self._store_job_failed(ACTIONS_JOB, exc)
            return
        except Exception as exc:  # noqa: BLE001 - logged and retried next interval, the daemon keeps running
            self.health.job_failed(ACTIONS_JOB, exc)
            log.exception("%s: run failed; retrying at the next interval", ACTIONS_JOB)
            return
        log.info("actions (%s): %d new, %d refused, %d sent, %d already done, %d failed, %d to retry, "
                 "%d refused at send time, %d back to a person", mode, sum(proposed.stored.values()),
                 sum(proposed.refused.values()), executed.sent, executed.already_done, executed.failed,
                 executed.errors, executed.refused, executed.held)

    async def _webhooks(self) -> None:
        await self._store_wide(WEBHOOKS_JOB, self._webhooks_run)

    async def _webhooks_run(self) -> None:
        """Read new events into the webhook outbox and send what is due (`crm.webhooks`)."""
        from crm.webhooks import deliver, enqueue

        endpoints, now = self.app.config.settings.crm.webhooks, datetime.now(UTC)

        async def run():
            added = await asyncio.to_thread(enqueue, self.app.store, endpoints, now)
            return added, await deliver(self.app.store, endpoints, now, claimer=self.replica)

        done = await self._guarded(WEBHOOKS_JOB, run)
        if done is not None and any((done[0], done[1].sent, done[1].retrying, done[1].dead)):
            added, result = done
            log.info("webhooks: %d new events, %d sent, %d to retry, %d dead letters", added, result.sent,
                     result.retrying, result.dead)

    async def _crm(self) -> None:
        await self._store_wide(CRM_JOB, self._crm_run)

    async def _crm_run(self) -> None:
        """Find what RetailCRM has not been sent and send what is due (`crm.retailcrm.sink`); one
        replica at a time (the job's lease), which the sink's exactly-once reading relies on."""
        from crm.retailcrm.sink import deliver, enqueue

        sink, now = self.app.config.settings.crm.retailcrm, datetime.now(UTC)
        if sink is None:
            return

        async def run():
            added = await asyncio.to_thread(enqueue, self.app.store, sink, now)
            return added, await deliver(self.app.store, sink, now, claimer=self.replica)

        done = await self._guarded(CRM_JOB, run)
        if done is None:
            return
        added, result = done
        for error in result.errors:  # the CRM away or the key refused: nothing was lost, all waits
            log.error("crm: %s; retrying at the next interval", error)
        if added or result.sent or result.found or result.retrying or result.dead:
            log.info("crm %s: %d new, %d sent, %d found applied already, %d to retry, %d waiting, %d not sent, "
                     "%d dead letters", sink.name, added, result.sent, result.found, result.retrying, result.waiting,
                     result.skipped, result.dead)

    async def _guarded(self, name: str, work: Callable[[], Awaitable[Any]]) -> Any:
        """`work()`, or None when it failed: a store failure is named by health, anything else is
        logged with its traceback; either way the daemon keeps running and the next interval retries."""
        try:
            return await work()
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise
            return None
        except DBAPIError as exc:  # the store (full, damaged, away): health names it
            self._store_job_failed(name, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - logged and retried next interval, the daemon keeps running
            self.health.job_failed(name, exc)
            log.exception("%s: run failed; retrying at the next interval", name)
            return None

    async def _in_thread(self, name: str, step):
        """Run a loyalty step in a worker thread, so the event loop keeps polling meanwhile."""
        try:
            return await asyncio.to_thread(step, self.app.store, self.app.config.settings.loyalty,
                                           datetime.now(UTC))
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise
            return None  # the thread finishes its transaction; the next start repeats it harmlessly
        except LoyalsyncError as exc:  # expected (e.g. a worker process killed for memory): its message says what to do
            self.health.job_failed(name, exc)
            log.error("%s: run failed; retrying at the next interval: %s", name, exc)
            return None
        except DBAPIError as exc:  # the store (full, damaged, away): health names it
            self._store_job_failed(name, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - logged and retried next interval, the daemon keeps running
            self.health.job_failed(name, exc)
            log.exception("%s: run failed; retrying at the next interval", name)
            return None

    def _store_job_failed(self, name: str, exc: DBAPIError) -> None:
        kind = self.health.store_failed(name, exc)
        log.error("%s: the store refused the run (%s: %s); retrying at the next interval", name,
                  kind.replace("_", " "), str(exc.orig or exc).strip().splitlines()[0])

    def schedule(self) -> AsyncIOScheduler:
        """Build the scheduler with one job per stream; every job also runs once right away."""
        cfg = self.app.config.settings.schedule
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            # max_instances=1: a stream never runs twice at once; coalesce: missed runs fold into one.
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
        )
        now = datetime.now(UTC)
        self.health.watch([StreamWatch(job.id, job.account.marketplace, job.account.settings.name, job.stream,
                                       self._interval(job), job.account.settings.token_env, job.lease)
                           for job in self.app.jobs()])
        for job in self.app.jobs():
            # Spread the first runs so accounts do not all hit the platforms in the same second.
            first = now + timedelta(seconds=random.uniform(0, min(cfg.jitter_seconds, 5)))
            scheduler.add_job(
                self._run, "interval", args=[job], id=job.id, name=job.id,
                seconds=self._interval(job).total_seconds(), jitter=cfg.jitter_seconds,
                next_run_time=first,
            )
        steps = [(self._actions, ACTIONS_JOB, cfg.actions_interval)]
        if self.app.config.settings.loyalty.enabled:
            steps += [(self._loyalty, LOYALTY_JOB, cfg.loyalty_interval),
                      (self._members, MEMBERS_JOB, cfg.members_interval)]
        if any(e.enabled for e in self.app.config.settings.crm.webhooks):
            steps.append((self._webhooks, WEBHOOKS_JOB, cfg.webhooks_interval))
        if (sink := self.app.config.settings.crm.retailcrm) is not None and sink.enabled:
            steps.append((self._crm, CRM_JOB, cfg.crm_interval))
        for step, name, every in steps:
            scheduler.add_job(
                step, "interval", id=name, name=name, max_instances=1,
                seconds=every.total_seconds(), jitter=cfg.jitter_seconds,
                next_run_time=now + timedelta(seconds=random.uniform(0, min(cfg.jitter_seconds, 5))),
            )
        return scheduler

    def _release_earlier_claims(self) -> None:
        """Free the outbox claims an earlier, killed process of this replica left, as the coordinator
        frees its leases: the replica that took those accounts over sends them now, not in 3 minutes."""
        from loyalty.outbox import release_claims

        if freed := release_claims(self.app.store, self.replica):
            log.info("replica %s gave back %d action claim(s) its earlier process left", self.replica, freed)

    async def run(self, service: Service | None = None) -> None:
        """Run until SIGTERM/SIGINT (or `stop` is set), then stop cleanly; `service` runs alongside."""
        if service is not None:
            service.bind()  # a taken port fails the start here, before anything is polled
        loop = asyncio.get_running_loop()
        handled: dict[signal.Signals, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Not the main thread, or a platform without signal support: stop() still works.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, self.stop.set)
                handled[sig] = previous
        serving, heart, halt = None, None, threading.Event()
        try:
            if service is not None:
                serving = asyncio.create_task(service.serve(), name="loyalsync-service")
                serving.add_done_callback(self._service_ended)
            # A first share of the accounts before anything is scheduled, so the first runs are ours.
            gained, _ = await asyncio.to_thread(self.coordinator.start)
            await asyncio.to_thread(self._release_earlier_claims)
            log.info("replica %s holds %d of %d account(s)", self.replica, len(gained),
                     len(self.coordinator.accounts))
            self._scheduler = self.schedule()
            self._scheduler.start()
            heart = threading.Thread(target=self._heartbeat, args=(loop, halt), name="loyalsync-heartbeat",
                                     daemon=True)
            heart.start()
            log.info("daemon started: %d jobs", len(self._scheduler.get_jobs()))
            await self.stop.wait()
        finally:
            self.stop.set()  # `running` is False from here on, whatever ended the wait
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=False)
            # A run cut short is safe: its cursor only moves with fully written pages.
            pending = [t for t in self._running if not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            halt.set()
            if heart is not None:
                await asyncio.to_thread(heart.join, 10)
            # Hand every account over at once, rather than after the leases run out.
            try:
                await asyncio.to_thread(self.coordinator.stop)
            except Exception as exc:  # noqa: BLE001 - the leases then lapse on their own
                log.warning("could not give the leases back (%s); other replicas take over when they expire",
                            type(exc).__name__)
            if service is not None and serving is not None:
                await service.shutdown(serving)
            await self.app.aclose()
            for sig, previous in handled.items():  # give the signals back to whoever had them
                loop.remove_signal_handler(sig)
                # asyncio restores Python's defaults, not what was there: a shell's background job
                # ignores SIGINT, and a daemon embedded in another program keeps that program's handler.
                with contextlib.suppress(TypeError, ValueError):
                    signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
            log.info("daemon stopped")

    def _service_ended(self, serving: asyncio.Task) -> None:
        if self.stop.is_set():
            return
        # The endpoint is how ops see the daemon: without it, stop rather than run unseen.
        error = None if serving.cancelled() else serving.exception()
        log.error("service endpoint ended unexpectedly (%s); stopping the daemon",
                  repr(error) if error else "no error", exc_info=error)
        self.stop.set()

