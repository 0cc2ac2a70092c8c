"""The ML core: search space, data, models, training, and the engine adapters.

Knows nothing of studies, the CLI or the web. Heavy frameworks are imported lazily.
"""
