"""Data layer: SQLModel tables, engines and migrations."""
