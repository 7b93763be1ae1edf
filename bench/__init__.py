"""Image-shaped benchmark of imagegate against a direct-to-upstream floor (``make bench``).

Everything runs on 127.0.0.1: a cheap fake OpenAI images upstream (``bench.upstream``), the
gateway under test started as its own process, and a load generator (wrk, or the Python one
in ``bench.pyload`` when wrk is missing). ``python -m bench.run --help`` lists the knobs.
"""
