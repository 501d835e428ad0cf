"""The ``driftline`` command line: ``serve``, ``score``, ``drift``, ``models`` and ``keys`` (see main.py)."""
