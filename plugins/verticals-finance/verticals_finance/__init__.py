"""verticals-finance: financial sentiment for the verticals platform."""
