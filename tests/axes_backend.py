"""The test suite's first authentication backend: django-axes, except for the test client's ``login()``.

``Client.login()`` calls ``authenticate()`` without a request, which axes refuses (it needs the request to
count per IP). Every HTTP entry point passes its request, so those stay guarded in the tests exactly as in
production; only the test client's shortcut, which no user can reach, is let through.
"""

from axes.backends import AxesStandaloneBackend


class AxesBackendAllowingTestClientLogin(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None  # not a user's login: the next backend checks the password
        return super().authenticate(request, username=username, password=password, **kwargs)
