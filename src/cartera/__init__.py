"""The `cartera` command: runs the whole system on its embedded default, and operates it."""
