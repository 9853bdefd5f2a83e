"""The storefront's tables, taken over from imagegen (``imagegen.0009_storefront_moved_out``).

- Segment, Shopper, ShopperEvent and ArmStats enter this app's state only: their tables were created by
  imagegen's migrations (0005, 0008) and keep their names and rows. On a database migrated from zero they
  exist too, empty.
- Variant is new (its table is created): the link of a variant image to its segment that was the core's
  ``GeneratedImage.segment``. imagegen's 0009 left each link in its image's ``parameters["segment"]``; here
  they become Variant rows again (links to segments deleted meanwhile are dropped, as the old foreign key's
  SET_NULL would have done) and the key is taken out of the parameters.
- The four models' content types move from app label ``imagegen`` to ``imagegen_storefront``, keeping their
  ids, so the permissions granted on them and the admin's history carry over.
"""
import django.db.models.deletion
from django.db import migrations, models

from imagegen.conf import settings as imagegen_settings

PRODUCT_MODEL = imagegen_settings.PRODUCT_MODEL
MOVED = ("segment", "shopper", "shopperevent", "armstats")
BATCH = 1000


def links_from_parameters(apps, schema_editor):
    alias = schema_editor.connection.alias
    GeneratedImage = apps.get_model("imagegen", "GeneratedImage")
    Segment = apps.get_model("imagegen_storefront", "Segment")
    Variant = apps.get_model("imagegen_storefront", "Variant")
    images = GeneratedImage.objects.using(alias)
    segments = set(Segment.objects.using(alias).values_list("pk", flat=True))
    stripped, variants = [], []
    for image in images.filter(parameters__has_key="segment").only("pk", "parameters").iterator(chunk_size=BATCH):
        segment = image.parameters.pop("segment")
        if segment in segments:
            variants.append(Variant(image_id=image.pk, segment_id=segment))
        stripped.append(image)
        if len(stripped) == BATCH:
            images.bulk_update(stripped, ["parameters"])
            Variant.objects.using(alias).bulk_create(variants)
            stripped, variants = [], []
    images.bulk_update(stripped, ["parameters"])
    Variant.objects.using(alias).bulk_create(variants)


def links_to_parameters(apps, schema_editor):
    alias = schema_editor.connection.alias
    GeneratedImage = apps.get_model("imagegen", "GeneratedImage")
    Variant = apps.get_model("imagegen_storefront", "Variant")
    images = GeneratedImage.objects.using(alias)
    segment_of = dict(Variant.objects.using(alias).values_list("image_id", "segment_id"))
    batch = []
    for image in images.filter(pk__in=list(segment_of)).only("pk", "parameters").iterator(chunk_size=BATCH):
        image.parameters = {**(image.parameters if isinstance(image.parameters, dict) else {}), "segment": segment_of[image.pk]}
        batch.append(image)
        if len(batch) == BATCH:
            images.bulk_update(batch, ["parameters"])
            batch = []
    images.bulk_update(batch, ["parameters"])


def _move_content_types(apps, schema_editor, source: str, target: str) -> None:
    try:
        ContentType = apps.get_model("contenttypes", "ContentType")
    except LookupError:  # no django.contrib.contenttypes: nothing to move
        return
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        moving = types.filter(app_label=source, model=model).first()
        if moving is None:
            continue
        # Only the one with the history is kept: a target row can only have been made by a migrate that ran
        # while the models were in neither app's state, and has no history of its own.
        types.filter(app_label=target, model=model).delete()
        moving.app_label = target
        moving.save(update_fields=["app_label"])


def content_types_here(apps, schema_editor):
    _move_content_types(apps, schema_editor, "imagegen", "imagegen_storefront")


def content_types_back(apps, schema_editor):
    _move_content_types(apps, schema_editor, "imagegen_storefront", "imagegen")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("imagegen", "0009_storefront_moved_out"),
        # The host's product model, named by IMAGEGEN_PRODUCT_MODEL (never a hard-coded app).
        migrations.swappable_dependency(PRODUCT_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Segment",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("index", models.PositiveIntegerField(help_text="0 .. IMAGEGEN_SEGMENTS - 1, stable across refreshes.", unique=True)),
                        ("centroid", models.JSONField(help_text="The segment's taste vector (see services.taste.FEATURES).")),
                        ("shoppers", models.PositiveIntegerField(default=0, help_text="Shoppers in it at the last refresh.")),
                        ("refreshed_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "imagegen_segment",
                        "ordering": ["index"],
                    },
                ),
                migrations.CreateModel(
                    name="Shopper",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(help_text="HMAC-SHA256 of the storefront's shopper id.", max_length=64, unique=True)),
                        ("opted_out", models.BooleanField(default=False, help_text="Gets the default images; no events are kept.")),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("segment", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="members", to="imagegen_storefront.segment")),
                    ],
                    options={
                        "db_table": "imagegen_shopper",
                    },
                ),
                migrations.CreateModel(
                    name="ArmStats",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("segment_index", models.IntegerField()),
                        ("arm", models.BigIntegerField()),
                        ("day", models.DateField()),
                        ("impressions", models.PositiveIntegerField(default=0)),
                        ("clicks", models.PositiveIntegerField(default=0)),
                        ("add_to_carts", models.PositiveIntegerField(default=0)),
                        ("purchases", models.PositiveIntegerField(default=0)),
                        ("product", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to=PRODUCT_MODEL)),
                    ],
                    options={
                        "verbose_name": "A/B result",
                        "verbose_name_plural": "A/B results",
                        "db_table": "imagegen_armstats",
                        "constraints": [models.UniqueConstraint(fields=("product", "segment_index", "arm", "day"), name="imagegen_armstats_unique")],
                    },
                ),
                migrations.CreateModel(
                    name="ShopperEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("kind", models.CharField(choices=[("impression", "Impression"), ("view", "View"), ("click", "Click"), ("add_to_cart", "Add to cart"), ("purchase", "Purchase")], max_length=16)),
                        ("at", models.DateTimeField(db_index=True)),
                        ("verified", models.BooleanField(default=False, help_text="Whether it carried a valid impression token (services.impressions); only verified events count for the A/B results and the segments.")),
                        ("image", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="imagegen.generatedimage")),
                        ("product", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to=PRODUCT_MODEL)),
                        ("segment", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="imagegen_storefront.segment")),
                        ("shopper", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="events", to="imagegen_storefront.shopper")),
                    ],
                    options={
                        "db_table": "imagegen_shopperevent",
                        "ordering": ["-at", "-id"],
                        "indexes": [models.Index(fields=["shopper", "product", "kind"], name="imagegen_sh_shopper_541fa8_idx")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.CreateModel(
            name="Variant",
            fields=[
                ("image", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name="storefront_variant", serialize=False, to="imagegen.generatedimage")),
                ("segment", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="variants", to="imagegen_storefront.segment")),
            ],
        ),
        migrations.RunPython(links_from_parameters, links_to_parameters, elidable=False),
        migrations.RunPython(content_types_here, content_types_back, elidable=False),
    ]
