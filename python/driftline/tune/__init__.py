"""`driftline tune`: measure candidate configurations of a model on real servers and recommend one for an SLO."""
