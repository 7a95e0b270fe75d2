"""Optional integrations with the MLOps stack (each behind its own extra, imported on first use)."""
