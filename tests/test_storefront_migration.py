"""Upgrading a database made before the storefront became an app of its own (imagegen 0008 was the head):
after `migrate` every storefront row, each variant's link to its segment and the permissions on the moved
models are still there, read through the new models; and migrating back returns the old layout.

Each test migrates a PostgreSQL database of its own from zero, with Django's migration executor (as
`migrate` does), and fills it through the historical models of that state, as the code of the time would.
"""
import datetime
import uuid

import psycopg
import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from imagegen.conf import settings as imagegen_settings

OLD_HEAD = ("imagegen", "0008_shopper_event_verified")
ALIAS = "storefront_migration"
MOVED = {"segment", "shopper", "shopperevent", "armstats"}


@pytest.fixture
def old_database(django_db_blocker):
    """A new, empty PostgreSQL database next to the test database, as connection ``ALIAS``; dropped afterwards."""
    default = connections["default"].settings_dict
    if default["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("This test migrates a PostgreSQL database of its own: set DATABASE_URL to PostgreSQL.")
    name = f"imagegen_storefront_migration_{uuid.uuid4().hex[:10]}"
    admin = dict(host=default["HOST"], port=default["PORT"] or 5432, user=default["USER"],
                 password=default["PASSWORD"] or None, dbname="postgres")
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    connections.settings[ALIAS] = {**default, "NAME": name}
    try:
        with django_db_blocker.unblock():
            yield connections[ALIAS]
            connections[ALIAS].close()
    finally:
        del connections[ALIAS]
        del connections.settings[ALIAS]
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(connection, targets=None):
    """Migrate ``connection`` to ``targets`` (default: every app's latest); the project state there."""
    executor = MigrationExecutor(connection)
    return executor.migrate(targets or executor.loader.graph.leaf_nodes())


def fill_at_old_head(state) -> dict:
    """Rows in every storefront table, two variant images linked to segments and one plain image, the
    content types of the four models and a group's permission on one of them; their ids."""
    get = state.apps.get_model
    Product, Category = get(imagegen_settings.PRODUCT_MODEL), get("shop", "Category")
    GeneratedImage = get("imagegen", "GeneratedImage")
    Segment, Shopper = get("imagegen", "Segment"), get("imagegen", "Shopper")
    ShopperEvent, ArmStats = get("imagegen", "ShopperEvent"), get("imagegen", "ArmStats")
    ContentType, Permission, Group = get("contenttypes", "ContentType"), get("auth", "Permission"), get("auth", "Group")
    db = ALIAS

    category = Category.objects.using(db).create(name="Hats", slug="hats")
    product = Product.objects.using(db).create(name="A hat", slug="a-hat", category=category, image="products/hat.jpg")
    first = Segment.objects.using(db).create(index=0, centroid=[0.5, 0.1, 0.2, 0.8, 0.0, 0.05], shoppers=1)
    second = Segment.objects.using(db).create(index=1, centroid=[0.4, 0.0, 0.1, 0.3, 0.2, -0.1], shoppers=0)

    def image(segment, name):
        parameters = {"operation": "background", "options": {"background": "#cc8844"}, "source": {"type": "product"}}
        return GeneratedImage.objects.using(db).create(
            product=product, kind="background", image=f"imagegen/{name}.png", seed=0, width=64, height=64,
            parameters=parameters, review_state="approved", segment=segment,
        )

    variant, other_variant, plain = image(first, "v0"), image(second, "v1"), image(None, "plain")
    shopper = Shopper.objects.using(db).create(key="k" * 64, segment=first)
    opted_out = Shopper.objects.using(db).create(key="o" * 64, opted_out=True)
    at = timezone.now() - datetime.timedelta(hours=1)
    event = ShopperEvent.objects.using(db).create(
        shopper=shopper, product=product, image=variant, segment=first, kind="click", at=at, verified=True
    )
    unverified = ShopperEvent.objects.using(db).create(shopper=shopper, product=product, kind="view", at=at)
    stats = ArmStats.objects.using(db).create(
        product=product, segment_index=0, arm=variant.pk, day=at.date(), impressions=9, clicks=3, add_to_carts=2, purchases=1
    )
    # What post_migrate made for the models while they were imagegen's, and a grant on one of them.
    types = {m: ContentType.objects.using(db).create(app_label="imagegen", model=m).pk for m in sorted(MOVED)}
    view = Permission.objects.using(db).create(content_type_id=types["armstats"], codename="view_armstats", name="Can view A/B result")
    analysts = Group.objects.using(db).create(name="analysts")
    analysts.permissions.add(view)
    return {
        "product": product.pk, "segments": (first.pk, second.pk), "variant": variant.pk, "other_variant": other_variant.pk,
        "plain": plain.pk, "shoppers": (shopper.pk, opted_out.pk), "events": (event.pk, unverified.pk), "stats": stats.pk,
        "types": types, "permission": view.pk, "at": at,
    }


def assert_kept(ids: dict) -> None:
    """Everything ``fill_at_old_head`` stored, read through today's models."""
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    from imagegen.models import GeneratedImage
    from imagegen.storefront.models import ArmStats, Segment, Shopper, ShopperEvent, Variant

    db = ALIAS
    first, second = ids["segments"]
    assert list(Segment.objects.using(db).values_list("pk", "index", "shoppers")) == [(first, 0, 1), (second, 1, 0)]
    assert Segment.objects.using(db).get(pk=first).centroid == [0.5, 0.1, 0.2, 0.8, 0.0, 0.05]
    shopper, opted_out = ids["shoppers"]
    assert Shopper.objects.using(db).get(pk=shopper).segment_id == first
    assert Shopper.objects.using(db).get(pk=opted_out).opted_out is True
    event, unverified = ids["events"]
    click = ShopperEvent.objects.using(db).get(pk=event)
    assert (click.shopper_id, click.product_id, click.image_id, click.segment_id, click.kind, click.at, click.verified) == (
        shopper, ids["product"], ids["variant"], first, "click", ids["at"], True
    )
    assert ShopperEvent.objects.using(db).get(pk=unverified).verified is False
    stats = ArmStats.objects.using(db).get(pk=ids["stats"])
    assert (stats.product_id, stats.segment_index, stats.arm, stats.impressions, stats.clicks, stats.add_to_carts, stats.purchases) == (
        ids["product"], 0, ids["variant"], 9, 3, 2, 1
    )
    # The image -> segment links, now the storefront's; the images themselves unchanged.
    assert dict(Variant.objects.using(db).values_list("image_id", "segment_id")) == {ids["variant"]: first, ids["other_variant"]: second}
    images = GeneratedImage.objects.using(db)
    assert images.filter(storefront_variant__segment__index=0).get().pk == ids["variant"]
    assert images.count() == 3 and all(
        image.parameters == {"operation": "background", "options": {"background": "#cc8844"}, "source": {"type": "product"}}
        for image in images
    ), "the links were taken out of the images' parameters again"
    # The content types moved (same ids), so the group still holds its permission on the A/B results.
    moved = dict(ContentType.objects.using(db).filter(model__in=MOVED).values_list("model", "app_label"))
    assert moved == {m: "imagegen_storefront" for m in MOVED}
    assert dict(ContentType.objects.using(db).filter(model__in=MOVED).values_list("model", "pk")) == ids["types"]
    granted = Group.objects.using(db).get(name="analysts").permissions.get()
    assert (granted.pk, granted.content_type.app_label, granted.codename) == (ids["permission"], "imagegen_storefront", "view_armstats")


def columns(connection, table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)}


def test_a_database_at_the_old_head_migrates_forward_and_back_with_nothing_lost(old_database):
    ids = fill_at_old_head(migrate(old_database, [OLD_HEAD]))
    migrate(old_database)
    assert_kept(ids)
    assert "segment_id" not in columns(old_database, "imagegen_generatedimage")

    # And back: the column and its links return, the content types go back to imagegen.
    migrate(old_database, [OLD_HEAD, ("imagegen_storefront", None)])
    with old_database.cursor() as cursor:
        cursor.execute("SELECT id, segment_id FROM imagegen_generatedimage ORDER BY id")
        assert dict(cursor.fetchall()) == {ids["variant"]: ids["segments"][0], ids["other_variant"]: ids["segments"][1], ids["plain"]: None}
        cursor.execute("SELECT count(*) FROM django_content_type WHERE app_label = 'imagegen_storefront'")
        assert cursor.fetchone() == (0,)
    assert "imagegen_storefront_variant" not in old_database.introspection.table_names()


def test_a_site_that_installs_the_storefront_after_upgrading_gets_its_links_back(old_database):
    """A site upgraded without the storefront (only imagegen migrated) keeps the links in the images'
    parameters; installing the storefront later turns them into its links, with no inconsistent history."""
    ids = fill_at_old_head(migrate(old_database, [OLD_HEAD]))
    executor = MigrationExecutor(old_database)
    core_head = next(node for node in executor.loader.graph.leaf_nodes() if node[0] == "imagegen")
    migrate(old_database, [core_head])
    with old_database.cursor() as cursor:
        cursor.execute("SELECT id, (parameters->>'segment')::bigint FROM imagegen_generatedimage ORDER BY id")
        assert dict(cursor.fetchall()) == {ids["variant"]: ids["segments"][0], ids["other_variant"]: ids["segments"][1], ids["plain"]: None}
    assert "imagegen_storefront_variant" not in old_database.introspection.table_names()

    executor = MigrationExecutor(old_database)
    executor.loader.check_consistent_history(old_database)
    migrate(old_database)
    assert_kept(ids)
