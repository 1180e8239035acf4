"""QA dataset readers: each format into FlashRAG-style tasks (and a corpus when rows carry paragraphs)."""
