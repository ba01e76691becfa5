"""Site visits: the slot engine and diary (``diary``), the visit life cycle from booking to closing (``lifecycle``)."""
