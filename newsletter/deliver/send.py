"""`newsletter send`: under the lock, plan what is due, freeze editions, deliver, report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from newsletter.audience.return_address import ReturnPaths, unsubscribe_address
from newsletter.audience.tokens import make_token, secret_from_env
from newsletter.compose.drafts import Draft
from newsletter.compose.edition import compose
from newsletter.compose.message import (
    Envelope,
    Personal,
    build_message,
    make_envelope,
    message_id,
)
from newsletter.config import Config
from newsletter.deliver import ledger, processes
from newsletter.deliver.dkim import DkimSigner, signer_from_config
from newsletter.deliver.dry_run import DryRunMail, dry_run
from newsletter.deliver.faults import crash_point
from newsletter.deliver.freeze_due import freeze_due
from newsletter.deliver.late import freeze_late_editions
from newsletter.deliver.links import reader_links
from newsletter.deliver.lock import SendLock
from newsletter.deliver.plan import Plan, plan_run
from newsletter.deliver.processes import Share
from newsletter.deliver.segmenting import prepared_editions
from newsletter.deliver.shared_rate import GateTally, SharedRateLimiter, SharedStop
from newsletter.deliver.stop_signals import stop_on_signals
from newsletter.deliver.transport import MaildirTransport, SmtpTransport
from newsletter.deliver.transport_choice import choose_transport
from newsletter.deliver.workers import (
    Clock,
    Job,
    Tally,
    batch_for,
    run_deliveries,
)
from newsletter.errors import InputError
from newsletter.store import claims as store_claims
from newsletter.store import ledger as store_ledger
from newsletter.store.connect import database_url, open_store
from newsletter.store.db import Db

TEST_PREFIX = "[TEST] "


@dataclass(frozen=True)
class SendOptions:
    issue: Draft | None = None
    dry_run: bool = False
    resend_unknown: bool = False
    test_addresses: tuple[str, ...] = ()
    off_schedule_ok: bool = False  # `--now`, `--yes` or a yes: send issues off schedule too


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    seconds: float = 0.0
    issues: tuple[str, ...] = ()
    transport: str = ""
    note: str = ""  # "nothing to send: ...", "another send is running", "dry run: ..."
    stop_reason: str = ""
    recovered: int = 0  # rows a crashed run left `sending`, now `unknown`
    problems: tuple[str, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()  # seconds per stage, for `make bench`
    # The CLI prints the summary line and picks the exit code (cli/send_commands.py).


class Transports:
    """Builds the configured transport ([delivery] transport, transport_choice.py): SMTP at
    NEWSLETTER_SMTP_URL or the outbox Maildir."""

    def __init__(self, config: Config, environ: dict[str, str] | None = None) -> None:
        self.choice = choose_transport(config, environ)
        self.settings = self.choice.settings
        self.outbox = self.choice.outbox

    @property
    def is_smtp(self) -> bool:
        return self.settings is not None

    def make(self) -> SmtpTransport | MaildirTransport:
        return SmtpTransport(self.settings) if self.settings else MaildirTransport(self.outbox)

    @property
    def description(self) -> str:
        return self.settings.display if self.settings else f"the Maildir {self.outbox}"


def envelope_for(config: Config) -> Envelope:
    return make_envelope(config.name, config.sender.display_name, config.sender.addr_spec,
                         config.reply_to, config.list_id,
                         unsubscribe_address=unsubscribe_address(config))


def unsubscribe_url_maker(config: Config, secret: str) -> Callable[[str], str]:
    base, list_id = f"{config.base_url}/unsubscribe/", config.list_id
    return lambda email: base + make_token(secret, list_id, email)


def _secret(transports: Transports) -> str:
    secret, real = secret_from_env()
    if transports.is_smtp and not real:
        raise InputError("NEWSLETTER_SECRET is not set: it signs the unsubscribe links, and real "
                         "mail must not carry forgeable ones (e.g. `openssl rand -hex 32`)")
    return secret


def send(config: Config, now: datetime, options: SendOptions, *,
         transports: Transports | None = None,
         on_progress: Callable[[Tally, int], None] = lambda t, n: None,
         on_note: Callable[[str], None] = lambda s: None) -> SendReport:
    """One `newsletter send` run. Returns the report; raises only for bad input."""
    started = time.monotonic()
    transports = transports or Transports(config)
    secret = _secret(transports)
    signer = signer_from_config(config)  # a bad key stops here, before the lock and any claim
    if options.test_addresses:
        return _test_send(config, now, options, transports, secret, started, signer)
    with SendLock(config.store_path.with_name(config.store_path.name + ".lock")) as lock:
        if not lock.acquire():
            return SendReport(note="another send is running; nothing done",
                              transport=transports.description)
        conn = open_store(database_url(config))
        try:
            return _locked_run(config, conn, now, options, transports, secret, started,
                               on_progress, on_note, signer)
        finally:
            conn.close()


def _locked_run(config: Config, conn: Db, now: datetime, options: SendOptions,
                transports: Transports, secret: str, started: float,
                on_progress: Callable[[Tally, int], None],
                on_note: Callable[[str], None], signer: DkimSigner | None) -> SendReport:
    clock = Clock(now)
    plan = plan_run(config, conn, clock.now(), only=options.issue,
                    off_schedule_ok=options.off_schedule_ok)
    if options.dry_run:
        return _dry_run(config, conn, plan, clock, transports, secret, started)
    recovered = ledger.recover_interrupted(conn, clock.now())
    if recovered:
        on_note(f"{recovered} delivery(ies) were interrupted (a crash, a kill or the database "
                "lost mid-batch): marked unknown "
                "(see `newsletter status`; resend with --resend-unknown)")
    planned = time.monotonic()
    frozen, problems = freeze_due(config, conn, plan, clock, on_note)
    late, held = freeze_late_editions(
        config, conn, clock.now(), only=options.issue.issue if options.issue else None,
        on_note=on_note)
    problems += tuple(held)
    froze = time.monotonic()
    issues = sorted(set(plan.open_issues) | set(frozen) | set(late))
    if options.resend_unknown:
        store_claims.resend_unknown(conn, issues or _all_issues(conn, options), clock.now())
        issues = sorted(set(issues) | set(store_ledger.open_issues(conn)))
    total = store_claims.count_due(conn, issues, clock.now())
    issues_run, described = tuple(issues), transports.description
    all_problems = tuple(plan.problems) + problems
    if total == 0:
        return SendReport(seconds=time.monotonic() - started, note=_nothing_note(plan, conn),
                          issues=issues_run, transport=described, recovered=recovered,
                          problems=all_problems)
    envelope = envelope_for(config)
    prepared = prepared_editions(conn, issues, envelope)  # every edition and variant
    connections = max(1, min(config.connections, total))  # of all processes together

    def deliver_share(share: Share) -> Tally:  # this process's connections (processes.py)
        pool = share.open(transports.make)  # auth and TLS failures raise here, before claims
        if pool is None:  # another process could not connect, or the run stopped
            return Tally()
        url = database_url(config)  # the rate and the policy stop are the list's (shared_rate)
        gate = SharedStop(url)  # this process's owner (ledger.OWNER: forked children's own)
        limiter = SharedRateLimiter(url, config.rate_per_second)
        tally = GateTally(gate=gate)
        job = Job(url, prepared, envelope, unsubscribe_url_maker(config, secret), clock, limiter,
                  tally, signer, ReturnPaths(config, secret),
                  transport_label=transports.choice.label,
                  lease=timedelta(seconds=config.lease_seconds),
                  batch_size=batch_for(config.batch_size, total, connections),
                  links=reader_links(config, secret))
        try:
            with stop_on_signals(tally):
                run_deliveries(job, issues, pool, on_progress=share.on_progress)
        finally:
            limiter.close()
            gate.close()
        return tally

    tally = processes.deliver(config.processes, connections, deliver_share,
                              lambda t: on_progress(t, total))
    crash_point("summary")
    done = time.monotonic()
    timings = (("plan", planned - started), ("freeze", froze - planned),
               ("deliver", done - froze))
    return SendReport(tally.sent, tally.deferred, tally.failed, tally.unknown, tally.skipped,
                      done - started, stop_reason=tally.stop_reason, timings=timings,
                      issues=issues_run, transport=described, recovered=recovered,
                      problems=all_problems)


def _all_issues(conn: Db, options: SendOptions) -> list[str]:
    if options.issue:
        return [options.issue.issue]
    return store_ledger.all_issues(conn)


def _nothing_note(plan: Plan, conn: Db) -> str:
    done = list(store_ledger.counts(conn))
    parts = ["nothing to send"]
    if done:
        parts.append(f"sent already: {', '.join(done[-3:])}")
    if plan.waiting:
        parts.append(f"waiting: {', '.join(plan.waiting)}")
    return "; ".join(parts)


def _dry_run(config: Config, conn: Db, plan: Plan, clock: Clock,
             transports: Transports, secret: str, started: float) -> SendReport:
    """Render every message that would go out now; send nothing and write nothing."""
    note, problems = dry_run(config, conn, plan, clock, DryRunMail(
        envelope_for(config), unsubscribe_url_maker(config, secret),
        ReturnPaths(config, secret), transports.description))
    return SendReport(seconds=time.monotonic() - started, note=note,
                      transport=transports.description, problems=problems)


def _test_send(config: Config, now: datetime, options: SendOptions, transports: Transports,
               secret: str, started: float, signer: DkimSigner | None) -> SendReport:
    """--to: the issue as it would go out now, subject marked, ledger untouched."""
    if options.issue is None:
        raise InputError("--to needs an ISSUE (e.g. newsletter send 2026-12 --to you@example.org)")
    conn = open_store(database_url(config))
    try:
        edition = compose(config, options.issue.path, conn, now=now).edition
    finally:
        conn.close()
    envelope, url_of = envelope_for(config), unsubscribe_url_maker(config, secret)
    paths = ReturnPaths(config, secret)
    transport = transports.make()
    sent = failed = 0
    problems: list[str] = []
    try:
        transport.open()
        for addr in options.test_addresses:
            mid = message_id(f"test-{datetime.now(UTC):%Y%m%d%H%M%S%f}", addr, envelope.domain)
            data = build_message(edition, envelope, Personal(addr, "", url_of(addr), mid,
                                                             paths.mailto(addr)),
                                 datetime.now(UTC), subject=TEST_PREFIX + edition.subject)
            if signer is not None:
                data = signer.sign(data)
            outcome = transport.send(paths.envelope_sender(), addr, data)
            sent += outcome.kind == "sent"
            if outcome.kind != "sent":
                failed += 1
                problems.append(f"{addr}: {outcome.kind}: {outcome.reply}")
    finally:
        transport.close()
    return SendReport(sent=sent, failed=failed, seconds=time.monotonic() - started,
                      transport=transports.description, issues=(options.issue.issue,),
                      note=f"test send of {options.issue.issue} (ledger untouched)",
                      problems=tuple(problems))
