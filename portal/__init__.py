"""The portal: the small web app where companies answer links from Synergie's messages."""
