"""The mailbox: read what comes back by mail (delivery reports, unsubscribe mails, calendar answers) and act on it once."""
