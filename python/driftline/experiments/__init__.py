"""Champion/challenger experiments: spec, store, report, decisions (docs/experiments.md)."""
