"""Schema versions 8 on: translation memory, the reader's own fields, segments, consent,
reach, transports and the data link (newsletter.store.schema applies them in order).

Each entry migrates from version i to i + 1; an entry is never edited once released: a new
table or column is a new entry at the end."""

MIGRATIONS = [
    # the translation memory: one row per (languages, source text); `translate import`
    # stores each unit, `translate export` pre-fills identical sources (newsletter.xliff).
    """
    CREATE TABLE translation_memory (
        source_language TEXT NOT NULL,
        target_language TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        source_text TEXT NOT NULL,
        target_text TEXT NOT NULL,
        issue TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (source_language, target_language, source_hash)
    )
    """,
    # the fields a reader set themselves (preferences page, confirmed subscribe form): a CSV
    # import keeps them and reports the difference (newsletter.store_reader)
    """
    CREATE TABLE reader_fields (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
        field TEXT NOT NULL CHECK (field IN ('name', 'language')),
        changed_at TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, field)
    )
    """,
    # segments: the variant (the `only` tags a reader has) of each delivery row, the frozen
    # variants of each edition, and per freeze how many readers each variant, an empty
    # variant or the audience took (newsletter.store_segments)
    """
    ALTER TABLE deliveries ADD COLUMN variant TEXT NOT NULL DEFAULT '';
    CREATE TABLE edition_variants (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        variant TEXT NOT NULL,
        subject TEXT NOT NULL,
        preheader TEXT NOT NULL,
        html TEXT NOT NULL,
        text TEXT NOT NULL,
        fallback_name TEXT NOT NULL,
        PRIMARY KEY (issue, language, variant)
    );
    CREATE TABLE segment_counts (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        variant TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('send', 'empty', 'excluded')),
        readers INTEGER NOT NULL,
        audience TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (issue, language, variant, outcome)
    )
    """,
    # consent (newsletter.store_consent): each subscriber's history, the subscribe form's
    # text versions, the keyed hashes of forgotten readers (and their ledger rows as counts),
    # the welcome mail's once-per-reader mark, unsubscribe-reason totals; mail_queue is
    # rebuilt to widen its kind CHECK to the welcome mail.
    """
    CREATE TABLE consent_events (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX consent_by_email ON consent_events (email, at);
    CREATE TABLE consent_texts (
        version TEXT PRIMARY KEY,
        language TEXT NOT NULL,
        text TEXT NOT NULL,
        first_seen TEXT NOT NULL
    );
    CREATE TABLE optin_forms (
        public_id TEXT PRIMARY KEY,
        language TEXT NOT NULL,
        version TEXT NOT NULL
    );
    CREATE TABLE forgotten (
        key_hash TEXT PRIMARY KEY,
        forgotten_on TEXT NOT NULL
    );
    CREATE TABLE forgotten_deliveries (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        state TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (issue, language, state)
    );
    CREATE TABLE welcomed (
        key_hash TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    CREATE TABLE unsubscribe_reasons (
        reason TEXT PRIMARY KEY,
        count INTEGER NOT NULL
    );
    CREATE TABLE why_tickets_used (
        nonce TEXT PRIMARY KEY,
        expires TEXT NOT NULL
    );
    CREATE TABLE mail_queue_v2 (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('confirm', 'welcome')),
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
    INSERT INTO mail_queue_v2 SELECT * FROM mail_queue;
    DROP TABLE mail_queue;
    ALTER TABLE mail_queue_v2 RENAME TO mail_queue;
    CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at)
    """,
    # reach (newsletter.store_reach): each frozen edition's counted links and canary, with
    # click totals; a row names an issue, a language and a URL, never a reader
    """
    CREATE TABLE reach_links (
        id TEXT PRIMARY KEY,
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        url TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('link', 'canary')),
        position INTEGER NOT NULL,
        clicks INTEGER NOT NULL DEFAULT 0,
        filtered INTEGER NOT NULL DEFAULT 0,
        UNIQUE (issue, language, kind, url)
    );
    CREATE INDEX reach_links_by_issue ON reach_links (issue, language, position)
    """,
    # which transport each delivery row was handed to ('smtp://relay.example.org:587' without
    # the login, or 'maildir:outbox'), so `status` says where an issue went (store_transport)
    """
    ALTER TABLE deliveries ADD COLUMN transport TEXT NOT NULL DEFAULT ''
    """,
    # the data link a reader asks for (newsletter.store_manage): mail_queue is rebuilt to
    # widen its kind CHECK to 'manage'
    """
    CREATE TABLE mail_queue_v3 (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('confirm', 'welcome', 'manage')),
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
    INSERT INTO mail_queue_v3 SELECT * FROM mail_queue;
    DROP TABLE mail_queue;
    ALTER TABLE mail_queue_v3 RENAME TO mail_queue;
    CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at)
    """,
    # until when a `sending` row's claim holds (claim time + [delivery] lease_seconds, renewed
    # while the sender lives): on PostgreSQL a sender on another host recovers the row as
    # `unknown` once it is past; SQLite records it and still recovers by process identity
    """
    ALTER TABLE deliveries ADD COLUMN lease_until TEXT
    """,
    # the send gate (newsletter.store.send_gate): the list's next free send slot, so the rate
    # holds across processes and hosts, its policy streak and its last stop (database time,
    # epoch seconds); one row, id 1, made by the first run
    """
    CREATE TABLE send_gate (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        next_slot REAL NOT NULL DEFAULT 0,
        streak INTEGER NOT NULL DEFAULT 0,
        stop_reason TEXT NOT NULL DEFAULT '',
        stop_host TEXT NOT NULL DEFAULT '',
        stopped_at REAL
    )
    """,
    # when the send gate's streak last grew (database time): a message begun before it says
    # nothing about the relay now, so its success does not end the streak
    """
    ALTER TABLE send_gate ADD COLUMN streak_at REAL
    """,
    # which rows of each subscriber CSV the last import merged (newsletter.store.import_seen):
    # a digest per row, the subscriber it became and the values it gave, so a re-import of an
    # edited file validates and merges only its new and changed rows; a row goes with its
    # subscriber (a forgotten reader leaves nothing here)
    """
    CREATE TABLE import_sources (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE
    );
    CREATE TABLE import_seen (
        source_id INTEGER NOT NULL REFERENCES import_sources (id) ON DELETE CASCADE,
        row_hash TEXT NOT NULL,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        language TEXT NOT NULL,
        tags TEXT NOT NULL,
        PRIMARY KEY (source_id, row_hash)
    );
    CREATE INDEX import_seen_subscriber ON import_seen (subscriber_id)
    """,
]
