"""The API's interactive documentation, served by this service alone: Swagger UI at ``/docs`` and ReDoc at
``/redoc`` with their scripts and styles from the installed ``fastapi-offline`` package (which ships
swagger-ui-dist's and redoc's bundles), so that both work on an intranet with no internet. The pages hold no
inline script (the content security policy allows only this service's own): ``static/docs-init.js`` starts
whichever viewer the page holds."""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

VENDOR = Path(fastapi_offline.__file__).resolve().parent / "static"
OWN = Path(__file__).resolve().parents[1] / "static"
ASSETS = {"swagger-ui-bundle.js": VENDOR, "swagger-ui.css": VENDOR, "redoc.standalone.js": VENDOR,
          "favicon.png": VENDOR, "docs-init.js": OWN}
ASSET_PATH = "/docs/assets"
# the one address in the bundles a page would fetch: ReDoc's footer logo; ours instead
REWRITES = {"redoc.standalone.js": (b"https://cdn.redoc.ly/redoc/logo-mini.svg", ASSET_PATH.encode() + b"/favicon.png")}
CACHE = {"Cache-Control": "max-age=86400"}

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
{head}
</head>
<body style="margin:0">
{body}
<script src="{assets}/{bundle}"></script>
<script src="{assets}/docs-init.js"></script>
</body>
</html>
"""


def _page(request: Request, title: str, head: str, body: str, bundle: str) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=escape(f"{request.app.title} · {title}"), head=head, body=body,
                                    bundle=bundle, assets=ASSET_PATH))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, "Swagger UI", f'<link rel="stylesheet" href="{ASSET_PATH}/swagger-ui.css">',
                 f'<div id="swagger-ui" data-openapi-url="{escape(request.app.openapi_url)}"></div>',
                 "swagger-ui-bundle.js")


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _page(request, "ReDoc", "", f'<div id="redoc" data-openapi-url="{escape(request.app.openapi_url)}"></div>',
                 "redoc.standalone.js")


@cache
def _rewritten(name: str) -> bytes:
    old, new = REWRITES[name]
    return (ASSETS[name] / name).read_bytes().replace(old, new)


@router.get(ASSET_PATH + "/{name}")
def asset(name: str) -> Response:
    folder = ASSETS.get(name)
    if folder is None or not (folder / name).is_file():
        raise HTTPException(404)
    if name in REWRITES:
        return Response(_rewritten(name), media_type="text/javascript", headers=CACHE)
    return FileResponse(folder / name, headers=CACHE)
