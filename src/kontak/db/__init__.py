"""Database: declarative base, engines and sessions, models and Alembic migrations."""
