"""The ``synergie`` command line, for staff: one module per command group (``common`` holds what they share), French messages, rich tables."""
