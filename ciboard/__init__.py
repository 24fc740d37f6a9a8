"""CI Board: the shared data room for outcomes-based contracts."""
