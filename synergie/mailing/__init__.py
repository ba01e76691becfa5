"""Mailing campaigns: who is due a campaign step, what it says, sending a claimed batch (``campaigns``)."""
