"""The queue providers: fal, Replicate and Black Forest Labs answer a job first and the image
later. Each module is a ``core.spec.ProviderSpec`` with its body builder, answer parser and
polling callbacks; ``common.py`` holds what the three share."""
