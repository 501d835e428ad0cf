"""Persistence: the database and its migrations (db.py), and one module per owner of tables."""
