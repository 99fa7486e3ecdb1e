"""Closeout actions (playbook Part 5): each a registered Action run only by the engine."""
