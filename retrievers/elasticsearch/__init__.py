"""Elasticsearch family: the backend, its config, the error translation at the client boundary, and indexing.

The ``elasticsearch`` client package loads with the modules that use it, never here."""
