"""Storefront personalization, an optional app of its own: add ``"imagegen.storefront"`` to INSTALLED_APPS.

Shoppers (pseudonymous), their events, segments of similar taste, a personalized variant of each product's
photo per segment (an edit job of imagegen's) and an A/B bandit between the variant and the original photo,
served by the public ``/api/storefront/`` routes. imagegen's core knows nothing of it: the storefront listens
to the core's signals (``imagegen.signals``) and adds its routes to the core's API through
``StorefrontConfig.imagegen_api_urls``.
"""
