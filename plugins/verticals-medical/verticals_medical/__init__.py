"""verticals-medical: de-identification and clinical entities with assertion status."""

__version__ = "0.1.0"
