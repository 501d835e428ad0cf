"""The dashboard at ``/ui``: server-rendered pages per role (operations, data science, business, audit), signed
cookie sessions, and the inline SVG charts they draw; the routes are http/dashboard.py."""
