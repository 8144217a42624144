"""quantpipe's HTTP API: what the main app, non-Python apps and operators call.

``create_app()`` (in ``api.app``) builds the FastAPI application; ``quantpipe api``
serves it with uvicorn. Routers per area live in ``api.routers``, their pydantic
request/response models in ``api.schemas``. Every handler is a thin client of a
pool's public functions or the shared read queries: the API has no query or write
logic of its own beyond authentication and HTTP concerns.
"""
