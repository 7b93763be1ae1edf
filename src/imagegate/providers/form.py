"""A shim: moved to ``core/form.py``. The old import path stays for the adapters not yet on the
spec runner (none of them today; tests and bench import it); removed in phase 2."""

from .core.form import FilePart, FormBody, form_body, form_parts, multipart

__all__ = ["FilePart", "FormBody", "form_body", "form_parts", "multipart"]
