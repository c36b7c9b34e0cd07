"""MCP tools, one module per toolset; each tool is a thin, typed adapter over ``postqued``."""
