"""Retrievers that wrap retrievers: micro-batching, caching, timeouts and hybrid rank fusion."""
