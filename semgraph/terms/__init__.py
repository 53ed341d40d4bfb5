"""Term models: texture features to calibrated term likelihoods, and out-of-distribution checks of queries."""
