"""How messages leave Synergie: e-mail and SMS backends behind one narrow seam."""
