"""The media types the API answers with, named once for the routes and the published OpenAPI document."""

JSON = "application/json"
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
TEXT = "text/plain"
