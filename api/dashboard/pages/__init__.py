"""One router per dashboard page (``/dashboard/...``), none in the OpenAPI schema."""
