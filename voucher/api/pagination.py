"""Limit/offset pagination that refuses what it cannot honour (400 invalid_request)
instead of silently falling back to the defaults, and says its bounds in the schema."""

import re

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 10**9  # far past any list we keep, and inside SQL's integer range


class StrictLimitOffsetPagination(LimitOffsetPagination):
    max_limit = 200

    def get_limit(self, request):
        return self._number(request, self.limit_query_param, 1, self.max_limit, self.default_limit)

    def get_offset(self, request):
        return self._number(request, self.offset_query_param, 0, MAX_OFFSET, 0)

    @staticmethod
    def _number(request, name: str, low: int, high: int, default: int) -> int:
        values = request.query_params.getlist(name)
        if not values:
            return default
        if len(values) > 1 or not re.fullmatch(r"[0-9]{1,10}", values[0]) or not low <= int(values[0]) <= high:
            raise serializers.ValidationError({name: [f"A whole number from {low} to {high}, given once."]})
        return int(values[0])

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: (1, self.max_limit), self.offset_query_param: (0, MAX_OFFSET)}
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"].update(minimum=low, maximum=high)
        return parameters
