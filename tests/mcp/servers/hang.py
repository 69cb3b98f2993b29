"""A stdio "MCP server" that reads requests and never answers, not even `initialize`."""

import sys

if __name__ == "__main__":
    for _line in sys.stdin:
        pass
