"""Built-in task specs (installed as ``edge_app.builtin_configs``)."""
