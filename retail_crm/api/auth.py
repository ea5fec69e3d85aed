"""Obtaining a staff API token with a username and password (the third password entry point, after the
login page and the admin's): guarded by django-axes like the other two, and issuing an expiring token."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from retail_crm.api.permissions import IsStaffMember
from retail_crm.errors import ApplicationError, ErrorCode
from retail_crm.login_guard import lockout_for, lockout_message
from retail_crm.models import StaffPasswordReset
from retail_crm.passwords import guide_password_reset, password_change_required
from retail_crm.scoping import actor_for
from retail_crm.staff_tokens import staff_token_issue, token_expires_at
from retail_crm.throttling import ip_throttle


class LoginLocked(exceptions.APIException):
    """429 with Retry-After: too many wrong passwords for this username or from this IP."""

    status_code = 429
    default_code = ErrorCode.LOGIN_LOCKED.value

    def __init__(self, *, message: str, wait: int):
        super().__init__(detail=message, code=self.default_code)
        self.wait = wait  # DRF's exception handler turns it into the Retry-After header


class LockedErrorSerializer(serializers.Serializer):
    """The error shape of a 429 login_locked (documented for the token endpoint)."""

    class Detail(serializers.Serializer):
        code = serializers.CharField()
        message = serializers.CharField()

    class Meta:
        ref_name = "LoginLockedError"

    error = Detail()


class StaffTokenObtainApi(APIView):
    """Exchange a staff username and password for an API token valid for STAFF_TOKEN_TTL_HOURS."""

    authentication_classes = ()
    permission_classes = ()
    # Per address, before any password is checked: 429 throttled with Retry-After (axes' lock-out comes after).
    throttle_classes = [ip_throttle("auth_token")]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffTokenCredentials"

        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StaffToken"

        token = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer,
                   responses={200: OutputSerializer, 429: OpenApiResponse(
                       LockedErrorSerializer, description="login_locked: too many wrong passwords; see Retry-After")},
                   description="Wrong passwords count towards the lock-out (429 login_locked with Retry-After); "
                               "each call issues a fresh token and revokes the previous one.")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The plain HttpRequest, not DRF's wrapper: axes marks a locked-out attempt on the request it is given,
        # and its middleware reads the mark from the HttpRequest.
        http_request = request._request
        user = authenticate(http_request, username=data.validated_data["username"],
                            password=data.validated_data["password"])
        if getattr(http_request, "axes_locked_out", False):
            lockout = lockout_for(username=data.validated_data["username"],
                                  ip_address=getattr(http_request, "axes_ip_address", None))
            raise LoginLocked(message=lockout_message(lockout), wait=lockout.retry_after)
        if user is None:
            raise ApplicationError(ErrorCode.INVALID, _("Wrong username or password."), status=400)
        if password_change_required(user=user):
            raise ApplicationError(ErrorCode.PASSWORD_CHANGE_REQUIRED,
                                   _("Your password was reset: log in on the website and choose a new one first."),
                                   status=403)
        token = staff_token_issue(user=user)
        return Response(self.OutputSerializer({"token": token.key, "expires_at": token_expires_at(token)}).data)


class GuidePasswordResetApi(APIView):
    """A store manager or above gives a guide in their scope a temporary password (returned once); the guide
    must choose a new one at the next login. 403 for guides, 404 outside scope."""

    permission_classes = [IsStaffMember]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GuidePasswordReset"

        guide = serializers.CharField(source="guide.code")
        username = serializers.CharField(source="guide.user.username")
        temporary_password = serializers.CharField()

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request, pk: int):
        result = guide_password_reset(actor=actor_for(request.user), guide_id=pk,
                                      channel=StaffPasswordReset.Channel.API)
        response = Response(self.OutputSerializer(result).data)
        response["Cache-Control"] = "no-store"  # the temporary password must not sit in a cache
        return response
