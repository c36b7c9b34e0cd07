"""The PostQued core library: settings, models, the HTTP client, uploads, rules and the journal.

Nothing in this package imports ``mcp``; the MCP layer (``tools/``, ``server.py``) imports from here.
"""

__version__ = "0.1.0"
