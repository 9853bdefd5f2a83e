"""The storefront became an app of its own (``imagegen.storefront``, label ``imagegen_storefront``).

- Its four models leave imagegen's state only: their tables (``imagegen_segment``, ``imagegen_shopper``,
  ``imagegen_shopperevent``, ``imagegen_armstats``) and their rows stay where they are, and the storefront's
  first migration takes them over as they are. Without the storefront installed they stay unused.
- ``GeneratedImage.segment`` goes (the column too): the storefront links a variant to its segment in a table
  of its own now. Before the column is dropped each link is written into its image's ``parameters`` under
  ``"segment"`` (as the edit job that made it had it in its parameters); the storefront's first migration,
  whenever it runs (with this one, or later when the storefront is installed), turns those into its links.
  Without the storefront the links are then only that, unused, in the images' parameters.

Kept this way round (the storefront depends on this migration, not the reverse) so that a site can
install the storefront later: a dependency of imagegen's on the storefront's migration would make such a
database's history inconsistent.
"""
from django.db import migrations

BATCH = 1000


def keep_segment_links(apps, schema_editor):
    GeneratedImage = apps.get_model("imagegen", "GeneratedImage")
    images = GeneratedImage.objects.using(schema_editor.connection.alias)
    batch = []
    for image in images.filter(segment__isnull=False).only("pk", "parameters", "segment").iterator(chunk_size=BATCH):
        image.parameters = {**(image.parameters if isinstance(image.parameters, dict) else {}), "segment": image.segment_id}
        batch.append(image)
        if len(batch) == BATCH:
            images.bulk_update(batch, ["parameters"])
            batch = []
    images.bulk_update(batch, ["parameters"])


def restore_segment_links(apps, schema_editor):
    GeneratedImage = apps.get_model("imagegen", "GeneratedImage")
    Segment = apps.get_model("imagegen", "Segment")
    alias = schema_editor.connection.alias
    images = GeneratedImage.objects.using(alias)
    segments = set(Segment.objects.using(alias).values_list("pk", flat=True))
    batch = []
    for image in images.filter(parameters__has_key="segment").only("pk", "parameters").iterator(chunk_size=BATCH):
        segment = image.parameters.pop("segment")
        image.segment_id = segment if segment in segments else None
        batch.append(image)
        if len(batch) == BATCH:
            images.bulk_update(batch, ["parameters", "segment"])
            batch = []
    images.bulk_update(batch, ["parameters", "segment"])


class Migration(migrations.Migration):

    dependencies = [
        ("imagegen", "0008_shopper_event_verified"),
    ]

    operations = [
        migrations.RunPython(keep_segment_links, restore_segment_links, elidable=False),
        migrations.RemoveField(model_name="generatedimage", name="segment"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ShopperEvent"),
                migrations.DeleteModel(name="Shopper"),
                migrations.DeleteModel(name="ArmStats"),
                migrations.DeleteModel(name="Segment"),
            ],
            database_operations=[],
        ),
    ]
