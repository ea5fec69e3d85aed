"""QR images of guide tokens and share codes, drawn by the project itself (segno), never by a third party.

The payload is the mini-program landing URL carrying the token (``guides.sharing.join_link``
/ ``share_link``). Settings are fixed here so that the same payload always gives the same
picture: medium error correction (a printed code survives a scratch), never a Micro QR
(WeChat's scanner does not read them).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Literal

import segno

QR_ERROR = "m"
SVG_SCALE = 8
PNG_SCALE = 10
BORDER = 4  # the quiet zone the QR standard asks for, in modules

ImageKind = Literal["svg", "png"]
CONTENT_TYPES: dict[str, str] = {"svg": "image/svg+xml", "png": "image/png"}


@dataclass(frozen=True)
class QrImage:
    content: bytes
    content_type: str
    etag: str


def qr_code(payload: str) -> segno.QRCode:
    """The QR symbol for ``payload`` with the project's fixed settings."""
    return segno.make(payload, error=QR_ERROR, micro=False)


def qr_image(payload: str, *, kind: ImageKind = "svg") -> QrImage:
    """The QR of ``payload`` as an SVG (starts with ``<?xml``) or PNG document."""
    if kind not in CONTENT_TYPES:
        raise ValueError(f"unknown QR image kind {kind!r}")
    out = io.BytesIO()
    code = qr_code(payload)
    if kind == "svg":
        code.save(out, kind="svg", scale=SVG_SCALE, border=BORDER, xmldecl=True, dark="#000", light="#fff")
    else:
        code.save(out, kind="png", scale=PNG_SCALE, border=BORDER, dark="#000", light="#fff")
    digest = hashlib.sha256(f"{kind}:{payload}".encode()).hexdigest()[:32]
    return QrImage(content=out.getvalue(), content_type=CONTENT_TYPES[kind], etag=f'"{digest}"')
