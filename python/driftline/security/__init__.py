"""Who may call what: API keys and roles (keys.py), listening beyond loopback (exposure.py), sha256 (digests.py)."""
