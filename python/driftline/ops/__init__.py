"""The operations view's back end: the minute history, SLOs with burn rates, and the rules and dashboard
generated from them (docs/slo.md)."""
