"""Async image jobs: submit now, run on any replica, poll or receive a signed webhook.

``store/jobs.py`` keeps the queue (PostgreSQL ``FOR UPDATE SKIP LOCKED``, or SQLite's single
writer) with leases; ``runner.py`` claims jobs and runs each through ``Gateway.handle`` like
the synchronous route; ``service.py`` is what the HTTP edge, the CLI and the library call;
``webhooks/`` delivers the signed completion message. Nothing is imported here, so
``config.py`` can read ``jobs.settings`` without pulling in the gateway.
"""
