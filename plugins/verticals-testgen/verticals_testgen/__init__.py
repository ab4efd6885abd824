"""verticals-testgen: generate pytest tests, run them in a sandbox, keep those that pass and add coverage."""

__version__ = "0.1.0"
