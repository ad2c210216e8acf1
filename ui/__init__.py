"""Streamlit UI helpers for the app (session state, caching, plotly figures, click component).

Nothing here does science: every number shown comes from an ``xrfcore`` call. This package is
imported only by ``app.py`` and ``pages/``; ``xrfcore`` never imports it.
"""
