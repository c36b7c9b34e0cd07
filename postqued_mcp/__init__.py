"""postqued-mcp: the MCP server for PostQued and its command line (the layer above ``tools`` and ``postqued``).

Modules, one job each, imports flowing one way (command line and transports -> tools -> core):

- ``app``: ``build_server(settings)``, the ``MCPServer`` with its lifespan, tools and resources;
- ``cli``: the ``postqued-mcp`` command (stdio by default, ``--http``, ``sandbox``, ``demo``, ``doctor``);
- ``http_transport``: streamable HTTP behind a bearer token and Host/Origin checks;
- ``http_limits``: what uvicorn does not bound: a header deadline, a connection cap below the descriptor limit;
- ``demo``: the whole publishing chain against the embedded sandbox;
- ``logs``: stderr logging: secrets redacted, a repeated line shown once per window with a count.

``tools`` (the MCP tools) lives at the repository's top, the skill folder's layout; ``postqued_mcp/tools`` links
to it, so the installed wheel has it as ``postqued_mcp.tools`` and no generic top-level name.
"""
