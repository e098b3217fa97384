"""Security headers on every response: a Content-Security-Policy and a Permissions-Policy."""

from django.conf import settings

# Scripts and styles come from our own static files only; Plotly draws with inline styles, and
# figures travel as JSON (json_script), which is data, not script.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Redoc's page bootstraps itself with one inline script (docs/decisions/0005-...).
RELAXED_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
)
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
        "interest-cohort",
    )
)


class SecurityHeadersMiddleware:
    """Add the policies to every response that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.relaxed_paths = tuple(getattr(settings, "PRIMER_CSP_RELAXED_PATHS", ()))

    def __call__(self, request):
        response = self.get_response(request)
        relaxed = request.path.startswith(self.relaxed_paths) if self.relaxed_paths else False
        response.headers.setdefault(
            "Content-Security-Policy",
            RELAXED_CONTENT_SECURITY_POLICY if relaxed else CONTENT_SECURITY_POLICY,
        )
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response
