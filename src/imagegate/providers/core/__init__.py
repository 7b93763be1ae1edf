"""The generic part of the providers: one runner reads a declarative spec per provider.

``spec.ProviderSpec`` says what a provider is (auth, base URL, model table, batching, mask
convention, option keys) and names its two functions, a body builder and an answer parser;
``runner.SpecProvider`` does everything else once for all of them (inputs, batching, seeds,
fan-out, polling, content-policy mapping, error translation). See docs/adding-a-provider.md.
"""
