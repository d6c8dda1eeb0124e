"""Answers under /api/ that Django would otherwise give as HTML: an over-long query
string (414) and, with DEBUG on, the technical 404 page of a path no route matches
(e.g. /api/v1/payments/abc/), which bypasses handler404. Both in the error shape."""

from django.conf import settings
from django.http import JsonResponse

from bank.http.errors import api_not_found, error_body


class ApiEdgeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        query = request.META.get("QUERY_STRING", "")
        if len(query) > settings.API_MAX_QUERY_STRING:
            body = error_body(
                "query_too_long",
                "The query string is too long.",
                {"max_length": settings.API_MAX_QUERY_STRING},
            )
            return JsonResponse(body, status=414)
        response = self.get_response(request)
        if response.status_code == 404 and not response.get("Content-Type", "").startswith("application/json"):
            return api_not_found(request)
        return response
