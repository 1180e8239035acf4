"""Tools for testing hopgym and its plugins: tiny models, a vLLM server launcher and conformance checks."""
