"""Design-space analysis and the ``bsp`` command line."""
