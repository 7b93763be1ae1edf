"""Amazon Bedrock (``bedrock/<modelId>``): ``InvokeModel`` signed with SigV4 (``sigv4.py``),
declared in ``invoke.py``; the model table in ``models.py``; the bodies and answers of Titan
Image Generator and Nova Canvas (``amazon.py``, inputs in ``images.py``) and of Stability's
models on Bedrock (``stability.py``)."""
