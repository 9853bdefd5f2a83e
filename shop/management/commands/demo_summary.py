"""manage.py demo_summary: what `make demo` left behind and where to look at it."""
from django.core.management.base import BaseCommand
from django.db.models import Count

from imagegen.models import GeneratedImage, Job, ModelVersion
from shop.models import Product


class Command(BaseCommand):
    help = "Print what the demo made and the URLs to see it."

    def handle(self, *args, **opts):
        base = "http://127.0.0.1:8000"
        with_images = Product.objects.annotate(n=Count("generated_images")).filter(n__gt=0)
        version = ModelVersion.objects.filter(is_active=True).exclude(kind="features").first()
        failed = Job.objects.filter(state=Job.State.FAILED).count()
        example = with_images.order_by("pk").first()
        lines = [
            "",
            "imagegen demo ready.",
            f"  products: {Product.objects.count()}, with generated images: {with_images.count()}",
            f"  generated images: {GeneratedImage.objects.count()}, failed jobs: {failed}",
            f"  active generator: {version} ({', '.join(version.categories)})" if version else "  no active generator",
            "  sample grid and loss curves: var/demo/",
            *self._evaluation(version),
            "",
            "Start the server:   .venv/bin/python manage.py runserver   (or: make serve)",
            f"Admin (admin/admin): {base}/admin/",
        ]
        if example:
            lines.append(f"  a product with its generated images: {base}/admin/shop/product/{example.pk}/change/")
            lines.append(f"API (all images, as staff): curl -u admin:admin {base}/api/products/{example.pk}/images/")
            lines.append(f"API (storefront: approved only): curl {base}/api/products/{example.pk}/images/")
        lines.append(f"API docs: {base}/api/docs/")
        self.stdout.write("\n".join(lines))

    @staticmethod
    def _evaluation(version) -> list[str]:
        evaluation = (version.metrics.get("evaluation") if version else None) or {}
        if not evaluation:
            return []
        overall = evaluation["overall"]
        copies = evaluation.get("near_copies", {}).get("flagged", "?")
        return [
            f"  measured on its training photos: classifier-FID {overall['fid']:.2f}, precision "
            f"{overall['precision']:.2f}, recall {overall['recall']:.2f}, near copies {copies}"
        ]
