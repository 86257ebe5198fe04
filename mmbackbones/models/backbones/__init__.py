"""One family per module; importing a module registers its classes."""
