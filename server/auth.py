"""Optional API keys. With keys configured, /v1 needs `Authorization: Bearer KEY` and each key is an owner:
it sees only its own jobs. Owners are stored as a hash of the key, never the key itself."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, HTTPException, Request, status

from .deps import settings as get_settings
from .settings import Settings

PUBLIC = "public"  # the owner of every job when authentication is off


class Unauthorized(Exception):
    pass


def owner_for(authorization: str | None, api_keys: list[str]) -> str:
    """The owner id for an Authorization header value; raises Unauthorized."""
    if not api_keys:
        return PUBLIC
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing API key: send 'Authorization: Bearer KEY'")
    matched = [k for k in api_keys if hmac.compare_digest(k.encode(), token.strip().encode())]
    if not matched:
        raise Unauthorized("invalid API key")
    return "key-" + hashlib.sha256(matched[0].encode()).hexdigest()[:16]


def owner(request: Request, settings: Settings = Depends(get_settings)) -> str:
    try:
        return owner_for(request.headers.get("authorization"), settings.api_keys)
    except Unauthorized as e:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(e), headers={"WWW-Authenticate": "Bearer"}) from None
