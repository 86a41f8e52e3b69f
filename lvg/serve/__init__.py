"""``lvg serve``: the HTTP API (OpenAI Images compatible) and web page over one pipeline.

``create_app(ServeSettings(...), pipeline=None)`` builds the FastAPI app; ``lvg serve`` runs it with uvicorn.
The contract is in ``docs/serve-api.md``.
"""

from lvg.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
