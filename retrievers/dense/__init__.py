"""Dense family: the FAISS-backed backend (``backend``), query/passage encoders and the FAISS index wrapper.

torch, faiss and sentence-transformers load with the modules that use them, never here."""
