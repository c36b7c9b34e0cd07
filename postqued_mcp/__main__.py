"""``python -m postqued_mcp`` == ``postqued-mcp``."""

from postqued_mcp.cli import main

raise SystemExit(main())
