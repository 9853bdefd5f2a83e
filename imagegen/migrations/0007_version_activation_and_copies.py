from django.db import migrations, models
from django.db.models import F

import imagegen.models


def activated_when_created(apps, schema_editor):
    # Before this field the newest active version served; keep that order for the versions active now.
    ModelVersion = apps.get_model("imagegen", "ModelVersion")
    # On the database being migrated (not always the default one).
    ModelVersion.objects.using(schema_editor.connection.alias).filter(is_active=True).update(activated_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [("imagegen", "0006_bulk_operations")]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="activated_at",
            field=models.DateTimeField(
                blank=True, null=True, help_text="When it was last activated: the most recently activated version serves."
            ),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="copy_reference",
            field=models.FileField(
                blank=True, max_length=255, storage=imagegen.models.imagegen_storage, upload_to=imagegen.models.checkpoint_path,
                help_text="Features and thumbnails of the training photos, for checking generated images for near copies.",
            ),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="near_copy_sheet",
            field=models.ImageField(
                blank=True, max_length=255, storage=imagegen.models.imagegen_storage, upload_to=imagegen.models.model_plot_path,
                help_text="Each sample flagged as a near copy, beside its nearest training photo.",
            ),
        ),
        migrations.RunPython(activated_when_created, migrations.RunPython.noop),
    ]
