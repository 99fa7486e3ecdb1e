"""Containment actions (playbook Part 2)."""
