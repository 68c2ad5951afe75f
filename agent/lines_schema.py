"""The store's tables for subscribers, lines of service and gateways (migration 3).

Kept beside :mod:`agent.lines`, which reads and writes them; :mod:`agent.store` applies it.
"""

LINES_SCHEMA = """
CREATE TABLE subscribers (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX subscribers_name ON subscribers (name COLLATE NOCASE);

CREATE TABLE gateways (
    name       TEXT PRIMARY KEY,
    class      TEXT NOT NULL,
    address    TEXT NOT NULL,
    port       INTEGER CHECK (port BETWEEN 1 AND 65535),
    ont_serial TEXT,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
CREATE INDEX gateways_ont ON gateways (ont_serial);

CREATE TABLE lines (
    code       TEXT PRIMARY KEY,
    subscriber TEXT REFERENCES subscribers (code),
    gateway    TEXT UNIQUE REFERENCES gateways (name),
    phan_url   TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX lines_subscriber ON lines (subscriber);

-- What each gateway should hold (desired_url, '' to clear it), for which line (whose history
-- records it, for a clear the line that left), and how far the agent got.
-- 'writing' is recorded before the device is touched, a crash leaves it for a re-run.
CREATE TABLE gateway_state (
    gateway     TEXT PRIMARY KEY REFERENCES gateways (name),
    line        TEXT,
    desired_url TEXT NOT NULL,
    phase       TEXT NOT NULL CHECK (phase IN ('pending', 'writing', 'written', 'failed')),
    error_class TEXT,
    message     TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    verified_at TEXT
);
CREATE INDEX gateway_state_phase ON gateway_state (phase);

CREATE TABLE line_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    line    TEXT NOT NULL,
    at      TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX line_events_line ON line_events (line, id);
CREATE TRIGGER line_events_no_update BEFORE UPDATE ON line_events
BEGIN SELECT RAISE(ABORT, 'line_events is append-only'); END;
CREATE TRIGGER line_events_no_delete BEFORE DELETE ON line_events
BEGIN SELECT RAISE(ABORT, 'line_events is append-only'); END;
"""
