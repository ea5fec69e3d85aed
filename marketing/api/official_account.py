"""The official account's server callback: WeChat's servers push follows and unfollows here (``marketing.followers``).

No login: a request is authenticated by WeChat's signature over the callback token. Plaintext mode only.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from marketing import followers
from retail_crm.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)

_SIGNED_QUERY = [
    OpenApiParameter("signature", str, required=True, description="sha1 of the sorted token, timestamp and nonce"),
    OpenApiParameter("timestamp", str, required=True),
    OpenApiParameter("nonce", str, required=True),
]


def _text(content: str) -> HttpResponse:
    return HttpResponse(content, content_type="text/plain; charset=utf-8")


class OfficialAccountCallbackApi(APIView):
    """The official account's server URL (服务器地址): URL verification (GET) and event pushes (POST).

    A bad signature is a 403, a malformed, oversized or encrypted (safe-mode) message a 400. Follows link the
    follower to a member through their unionid, unfollows forget the link; every other message is answered
    ``success`` and ignored, so WeChat does not deliver it again.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @staticmethod
    def _query(request, *names: str) -> dict[str, str]:
        values = {name: request.query_params.get(name, "") for name in names}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise ApplicationError(ErrorCode.INVALID, "Missing callback parameters.",
                                   fields={name: ["This parameter is required."] for name in missing})
        return values

    @extend_schema(parameters=[*_SIGNED_QUERY, OpenApiParameter("echostr", str, required=True)],
                   responses={(200, "text/plain"): OpenApiTypes.STR}, auth=[])
    def get(self, request):
        query = self._query(request, "signature", "timestamp", "nonce", "echostr")
        echostr = query.pop("echostr")
        followers.callback_verify(**query)
        return _text(echostr)

    @extend_schema(parameters=_SIGNED_QUERY, request={"application/xml": OpenApiTypes.STR},
                   responses={(200, "text/plain"): OpenApiTypes.STR}, auth=[])
    def post(self, request):
        followers.callback_verify(**self._query(request, "signature", "timestamp", "nonce"))
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        followers.callback_size_check(declared)  # before the body is read
        message = followers.callback_message(request.body)
        outcome = followers.follower_event_apply(message=message)
        if outcome.result == "ignored":
            logger.info("Official-account callback %s %s ignored: %s", message.msg_type, message.event, outcome.detail)
        return _text("success")
