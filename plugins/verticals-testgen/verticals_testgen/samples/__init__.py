"""Small dependency-free sample modules, written for this plugin, to demonstrate and evaluate test generation."""
