"""Example workflows shipped with durable-workflows."""
