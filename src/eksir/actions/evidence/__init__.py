"""Evidence-collection actions."""
