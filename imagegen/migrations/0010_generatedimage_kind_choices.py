# GeneratedImage.kind takes its choices from the registered photo operations (models.image_kinds): the
# migration keeps a reference to the callable, so adding an operation needs no migration.

import imagegen.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('imagegen', '0009_storefront_moved_out'),
    ]

    operations = [
        migrations.AlterField(
            model_name='generatedimage',
            name='kind',
            field=models.CharField(choices=imagegen.models.image_kinds, default='generated', max_length=32),
        ),
    ]
