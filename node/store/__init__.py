"""Storage of a node: the only package that speaks SQL.

`Database` opens a SQLite file (WAL) or PostgreSQL (psycopg 3) from a URL and
hands out transactions (`Tx`) whose methods take and return domain values.
Migrations are alembic's, under `migrations/`.
"""
