"""What the storefront tests share: the real Redis event buffer (fixtures in conftest) and posting events."""
from rest_framework.test import APIClient


def post_events(shopper, events):
    return APIClient().post("/api/storefront/events/", {"shopper": shopper, "events": events}, format="json")
