"""Google: the Gemini API (``google/``, ``gemini_api.py``) and Vertex AI (``vertex/``,
``vertex.py``), which share the model table (``models.py``) and the two wire formats:
Gemini's ``generateContent`` (``content.py``) and Imagen's ``predict`` (``imagen.py``).
Vertex authenticates with OAuth tokens from ``tokens.py`` (google-auth)."""
