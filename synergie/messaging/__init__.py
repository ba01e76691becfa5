"""How messages leave, for every step: templates (``rendering``), the outbox, sending batches, signed links, opt-outs, backends chosen from settings (``transports``), progress."""
