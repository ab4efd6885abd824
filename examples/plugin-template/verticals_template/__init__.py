"""verticals-template: the smallest plugin in the one shape (plugin.py hooks only, one module per task)."""
