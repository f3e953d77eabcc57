"""Packaging: the metadata, dependencies and extras are in pyproject.toml (PEP 621).

This file maps the repository's folders onto the one installed name, ``edge_app``: the
training and export code live in the top-level ``train/`` and ``export/`` folders (the
project's layout) and install as ``edge_app.train`` and ``edge_app.export`` (the folders are
reached through the links ``edge_app/train`` and ``edge_app/export``, so source checkouts,
editable installs, mypy and import-linter all see the same names). ``configs/`` installs as
``edge_app.builtin_configs`` so regular and editable installs find the built-in task specs.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["edge_app", "edge_app.*"]) + ["edge_app.builtin_configs"],
    package_dir={"edge_app.builtin_configs": "configs"},
    package_data={"edge_app.builtin_configs": ["*.yaml"], "edge_app.studio": ["static/*"]},
)
