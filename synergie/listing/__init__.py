"""The company listing: file formats and the SIRENE scan (``reading``), row validation (``rows``), the loader (``loader``)."""
