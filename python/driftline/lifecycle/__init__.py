"""The model lifecycle: aliases, routing, pins, and propose -> approve -> promote -> rollback, each on record."""
