"""Schema versions 1-7: the list, the feed cache, editions and the delivery ledger, bounce
processing, imported files, claims, the subscribe form's requests and the outgoing-mail queue.

Each entry migrates from version i to i + 1 (newsletter.store.schema applies them); an entry
is never edited once released: a change is a new entry at the end of the later list."""

MIGRATIONS = [
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN
            ('active', 'pending', 'unsubscribed', 'bounced', 'complained')),
        reason TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE feed_cache (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        body BLOB NOT NULL,
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE editions (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        subject TEXT NOT NULL,
        preheader TEXT NOT NULL,
        html TEXT NOT NULL,
        text TEXT NOT NULL,
        fallback_name TEXT NOT NULL,
        frozen_at TEXT NOT NULL,
        PRIMARY KEY (issue, language)
    );
    CREATE TABLE deliveries (
        issue TEXT NOT NULL,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
        language TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        first_deferred_at TEXT,
        message_id TEXT,
        last_reply TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (issue, subscriber_id)
    );
    CREATE INDEX deliveries_by_state ON deliveries (state, issue);
    CREATE TABLE sent_items (
        item_id TEXT PRIMARY KEY,
        issue TEXT NOT NULL
    );
    """,
    # 2: bounce and complaint processing
    """
    CREATE TABLE processed_reports (
        report_key TEXT PRIMARY KEY,
        processed_at TEXT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE TABLE bounce_events (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
        report_key TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX bounce_events_by_email ON bounce_events (email, kind, at);
    """,
    # 3: double opt-in bookkeeping (one confirmation email per address per few minutes)
    """
    ALTER TABLE subscribers ADD COLUMN confirm_sent_at TEXT;
    """,
    # 4: which version of each subscriber CSV was imported last (send skips unchanged files)
    """
    CREATE TABLE imported_files (
        path TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        imported_at TEXT NOT NULL
    );
    """,
    # 5: which process claimed a row, so recovery never takes a live sender's rows
    """
    ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
    """,
    # web: subscribe requests (applied only when their own link is confirmed) and the
    # outgoing-mail queue that the serve worker delivers outside the request
    """
    CREATE TABLE optin_requests (
        id INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL COLLATE NOCASE,
        mailbox TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT '',
        client TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL,
        created_at TEXT NOT NULL,
        confirmed_at TEXT
    );
    CREATE INDEX optin_by_mailbox ON optin_requests (mailbox, outcome, created_at);
    CREATE INDEX optin_by_client ON optin_requests (client, created_at);
    CREATE INDEX optin_by_time ON optin_requests (outcome, created_at);
    CREATE TABLE mail_queue (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('confirm')),
        email TEXT NOT NULL,
        language TEXT NOT NULL,
        ref TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        first_deferred_at TEXT,
        claimed_by TEXT,
        claimed_at TEXT,
        message_id TEXT,
        last_reply TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at);
    """,
    # bounce classes: 'ours' (sender-side refusals, never a reader's fault) and 'unsubscribe'
    # events with their reason and remote domain; the table is rebuilt to widen its CHECK.
    # processed_reports keys are now sha256 of the bytes; old Message-ID keys never match one.
    """
    CREATE TABLE bounce_events_v7 (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'ours', 'complaint', 'unsubscribe')),
        report_key TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        domain TEXT NOT NULL DEFAULT ''
    );
    INSERT INTO bounce_events_v7 (id, email, kind, report_key, at)
        SELECT id, email, kind, report_key, at FROM bounce_events;
    DROP TABLE bounce_events;
    ALTER TABLE bounce_events_v7 RENAME TO bounce_events;
    CREATE INDEX bounce_events_by_email ON bounce_events (email, kind, at);
    CREATE INDEX bounce_events_by_time ON bounce_events (at, kind);
    """,
]
