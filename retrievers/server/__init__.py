"""The retriever HTTP server (Search-R1's ``/retrieve`` API and hopgym's own): the app and its schemas."""
