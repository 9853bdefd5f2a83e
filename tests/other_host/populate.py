"""Fills the second test host with items (real demo photos) in two collections: python -m tests.other_host.populate"""
import os
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.other_host.settings")
django.setup()

from django.core.files import File  # noqa: E402

from tests.other_host.models import Collection, Item  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "shop" / "demo_catalogue"

for code in ("dress", "shoes"):
    collection = Collection.objects.create(code=code)
    for path in sorted((DEMO / code).glob("*.jpg"))[:6]:
        item = Item(title=f"A {code} called {path.stem}", blurb="made for the second host", collection=collection)
        with path.open("rb") as fh:
            item.photo.save(path.name, File(fh), save=True)
print(Item.objects.count())
