"""A faithful local simulator of the PostQued API (v2 and legacy v1), for the demo, tests and manual trials.

``Sandbox`` holds one simulated tenant (an organisation, a workspace, TikTok and Instagram accounts), an
injectable clock that moves publish targets through their states, presigned-URL storage on disk, rate
limits, idempotency, fault switches and a ledger of every request. ``sb.transport()`` serves it in-process
to httpx; ``run_in_thread``/``serve`` put it on loopback with uvicorn. Only this package and the tests know
how the simulator works; the client talks to it like to the real API.

Layout, imports flowing downwards only (tests/test_sandbox_structure.py):

- ``core`` (the ``Sandbox``), ``server`` (uvicorn), ``transport`` (in-process httpx)
- ``app``: the ASGI pipeline: ledger, faults, auth, the limiter (``limits``), then the route's handler
- ``router``: one route per operation and API version of ``postqued.api.operations``, plus the storage PUT
- ``handlers/<resource>``: accounts, uploads, content, publishing, admin, providers, analytics, engagement,
  approvals, team; each lists its handlers in ``HANDLERS``
- ``http`` (the request a handler sees, its answer), ``validation`` (publish bodies), ``storage``
- ``world`` (everything remembered, as plain fields), ``seed`` (the seeded tenant), ``records``, ``common``
"""

from postqued.sandbox.core import SANDBOX_API_KEY, Sandbox
from postqued.sandbox.faults import FAULT_KINDS, Fault
from postqued.sandbox.ledger import LedgerEntry
from postqued.sandbox.limits import DEFAULT_LIMITS
from postqued.sandbox.server import run_in_thread, serve
from postqued.sandbox.transport import SandboxTransport

__all__ = [
    "DEFAULT_LIMITS",
    "FAULT_KINDS",
    "SANDBOX_API_KEY",
    "Fault",
    "LedgerEntry",
    "Sandbox",
    "SandboxTransport",
    "run_in_thread",
    "serve",
]
