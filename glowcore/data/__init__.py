"""Training data: data sets and their sources, the decoded-image cache, compact data packs."""
