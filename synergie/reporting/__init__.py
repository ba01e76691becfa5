"""The programme's results: the funnel against the reference case (``funnel``)."""
