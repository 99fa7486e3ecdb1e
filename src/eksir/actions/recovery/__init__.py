"""Recovery actions (playbook Part 4): each a registered Action run only by the engine."""
