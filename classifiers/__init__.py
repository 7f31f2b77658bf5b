"""Indonesian partisan-content classifier: normaliser, election profiles, model and artifacts.

Imports only `pipeline.records` and `pipeline.errors` from the pipeline package.
"""
