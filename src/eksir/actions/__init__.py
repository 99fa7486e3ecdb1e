"""Response actions: one small module per action, each declaring its permissions and full lifecycle."""
