"""Calendar documents over e-mail (iTIP, RFC 5546): REQUEST, CANCEL and REPLY, built and read in one module (``itip``)."""
