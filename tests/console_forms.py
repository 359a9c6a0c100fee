"""Posting the console's login form as a browser does: load the form (its cookie and CSRF token), then send it."""

from __future__ import annotations

import re


def login_token(client) -> str:
    """The CSRF token of the login form ``client`` was just given (the form sets its cookie on ``client``)."""
    page = client.get("/login")
    assert page.status_code == 200, page.status_code
    return re.search(r'<form method="post" action="/login".*?name="csrf" value="([^"]+)"', page.text, re.S).group(1)


def post_login(client, username: str, password: str, next: str | None = None, **kwargs):
    """Log ``client`` in through the console's form; ``kwargs`` go to ``client.post`` (``follow_redirects``)."""
    data = {"username": username, "password": password, "csrf": login_token(client)}
    if next is not None:
        data["next"] = next
    return client.post("/login", data=data, **kwargs)
