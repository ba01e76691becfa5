"""The flow inventory: each visited site's incoming and outgoing material flows (the seed's fourth step).

``codes`` reads the European List of Waste and the material categories (data files), ``rows``
validates a flow, ``store`` writes and reads them, ``questionnaire`` sends the portal link and
tells the officer, ``importing`` reads a CSV of flows. ``flows/`` is Prefect's; this is not.
"""
