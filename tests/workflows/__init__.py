"""Workflow definitions used by the tests.

They live in importable modules, not in test files: Temporal's workflow sandbox re-imports a
workflow's module by name for every run. Steps and workflows are named ``tests.*``: the
registry is process-wide and other test modules define steps of their own.
"""
