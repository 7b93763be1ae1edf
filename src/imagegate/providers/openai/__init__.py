"""The OpenAI-shaped providers: OpenAI and any OpenAI-compatible server, Azure OpenAI, xAI and
Together AI. Each module is a ``core.spec.ProviderSpec`` with its body builder and parser."""
