"""The expert bank and how a candidate becomes weights: coefficient rows, layer groups,
delta-space merges."""
