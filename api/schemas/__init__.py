"""The documented shapes of the API's replies, one module per resource family (the OpenAPI's components)."""
