"""manage.py train_feature_extractor: the catalogue classifier whose frozen features the metrics use."""
from django.core.management.base import BaseCommand, CommandError

from imagegen.services import JobError
from imagegen.services.evaluation import train_feature_extractor
from imagegen.services.products import select_products


class Command(BaseCommand):
    help = "Train the small catalogue classifier used (frozen) as the feature extractor of evaluate_imagegen."

    def add_arguments(self, parser):
        parser.add_argument("--categories", nargs="+", metavar="CATEGORY")
        parser.add_argument("--image-size", type=int, choices=[64, 128], default=64)
        parser.add_argument("--epochs", type=int, default=15)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--device", default=None)

    def handle(self, *args, **opts):
        products = select_products(categories=opts["categories"])
        try:
            version = train_feature_extractor(
                products, image_size=opts["image_size"], epochs=opts["epochs"], seed=opts["seed"], device=opts["device"]
            )
        except JobError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Registered {version} (id {version.pk}): {version.metrics}"))
