"""The durable journal: dry-run plans, publish intents and outcomes, upload de-duplication.

``interface`` holds the async interface every backend keeps; ``sqlite`` (its file in ``sqlite_schema``) is
the default backend (one file, nothing to set up) and ``postgres`` the shared one for several replicas
(``POSTQUED_JOURNAL_URL``).
"""

from postqued.clock import Clock
from postqued.errors import ConfigError
from postqued.journal.interface import (
    KEY_TTL,
    PLAN_TTL,
    SENDING_GRACE,
    TERMINAL_REQUEST_STATUSES,
    Journal,
    JournalEntry,
    LocalStatus,
    PublishIntent,
)
from postqued.journal.sqlite import SCHEMA_VERSION, SqliteJournal
from postqued.settings import Settings

__all__ = [
    "KEY_TTL",
    "PLAN_TTL",
    "SCHEMA_VERSION",
    "SENDING_GRACE",
    "TERMINAL_REQUEST_STATUSES",
    "Journal",
    "JournalEntry",
    "LocalStatus",
    "PublishIntent",
    "SqliteJournal",
    "open_journal",
]


def open_journal(settings: Settings, clock: Clock, *, recover: bool = True) -> Journal:
    """The configured journal (no I/O yet): PostgreSQL with ``POSTQUED_JOURNAL_URL`` (never for the sandbox,
    whose posts are not real), else the SQLite file under the state folder, whose previous process's
    unfinished sends are settled as ``unknown`` when it opens (``recover``; not for a mere check)."""
    if settings.journal_url is not None and not settings.sandbox:
        try:
            from postqued.journal.postgres import PostgresJournal
        except ImportError:
            raise ConfigError(
                "POSTQUED_JOURNAL_URL is set but the PostgreSQL driver is not installed.",
                next_step="pip install 'postqued-mcp[postgres]', or unset POSTQUED_JOURNAL_URL for the SQLite journal.",
            ) from None
        return PostgresJournal(settings.journal_url.get_secret_value(), clock, timeout=min(settings.timeout, 10.0))
    return SqliteJournal(settings.state_dir / "journal.sqlite3", clock, recover_on_open=recover)
