"""The `hdx` command: sets a node up, serves it, administers it, and talks to it as a client.

This package is where the layers are wired together; nothing else sees them all.
"""
