"""The HTTP surface: routers (one per resource), API keys, the request gate, request ids and access records,
micro-batching, the OpenAPI document."""
