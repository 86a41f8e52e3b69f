"""``lvg serve``: the HTTP API (OpenAI Images and Models compatible) and web page over one or more pipelines.

``create_app(ServeSettings(...), pipeline=None, pipelines=None)`` builds the FastAPI app; ``lvg serve`` runs it
with uvicorn.
The contract is in ``docs/serve-api.md``.
"""

from lvg.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
