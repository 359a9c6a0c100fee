"""The API under ``/api/v1``: ``create_app`` builds the service, ``routes`` holds one router per resource."""

from serving.api.main import create_app
from serving.deps import API_PREFIX

__all__ = ["API_PREFIX", "create_app"]
