"""Storage: SQLAlchemy models, the session factory (owner of database I/O), migrations."""
