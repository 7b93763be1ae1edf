"""Job webhooks: the target a job names (``target.py``), Standard Webhooks signatures
(``signing.py``) and the durable, retried delivery (``sender.py``)."""
