"""The durable journal: dry-run plans, publish intents and outcomes, upload de-duplication.

``interface`` holds the async interface every backend keeps; ``sqlite`` is the default backend (one file,
nothing to set up) and ``postgres`` the shared one for several replicas (``POSTQUED_JOURNAL_URL``).
"""

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
]
