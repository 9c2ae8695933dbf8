"""Linear regression on synthetic data, as a reproducible DVC pipeline.

Kept empty on purpose: each stage imports only the modules it needs, so a
stage without torch or matplotlib never pays for importing them.
"""
