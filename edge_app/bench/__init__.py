"""``edge-app bench``: how fast a model runs here, where the time goes, and at what power."""
