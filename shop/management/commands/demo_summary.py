"""manage.py demo_summary: what `make demo` made, how good it measured, and where to look at it.

It is the demo's own check: it exits non-zero when no generator is active or no image was generated, so
`make demo` never ends with "0 images" and a success status.
"""
from pathlib import Path

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from rest_framework.authtoken.models import Token

from imagegen.conf import settings as imagegen_settings
from imagegen.models import GeneratedImage, Job, ModelVersion
from imagegen.services.model_registry import SERVING_ORDER
from shop.models import Product

# Generated files named in the summary.
SHOWN_FILES = 4


class Command(BaseCommand):
    help = "Print what the demo made and the URLs to see it; fail when it made no image."

    def add_arguments(self, parser):
        parser.add_argument("--out", type=Path, default=Path("var/demo"), help="Where train_imagegen --out wrote its plots.")

    def handle(self, *args, **opts):
        base = "http://127.0.0.1:8000"
        generators = ModelVersion.objects.filter(kind__in=imagegen_settings.KINDS)
        version = generators.filter(is_active=True).order_by(*SERVING_ORDER).first()
        latest = generators.order_by("-created_at", "-id").first()
        scenes = GeneratedImage.objects.filter(kind="scene")
        images = GeneratedImage.objects.filter(kind=GeneratedImage.Kind.GENERATED)
        if version is None:
            why = (latest.metrics.get("activation") if latest else None) or "no generator was trained"
            raise CommandError(f"The demo trained no active generator ({why}), so it generated nothing to show.")
        if not images.exists():
            failed = Job.objects.filter(state=Job.State.FAILED).exclude(error="").first()
            why = failed.error if failed else "no generate job ran"
            raise CommandError(f"The demo generated no image ({why}).")
        with_images = Product.objects.annotate(n=Count("generated_images")).filter(n__gt=0)
        rejected = images.filter(review_state=GeneratedImage.ReviewState.REJECTED).count()
        failed = Job.objects.filter(state=Job.State.FAILED).count()
        example = with_images.order_by("pk").first()
        grid = opts["out"] / "sample_grid.png"
        lines = [
            "",
            "imagegen demo ready.",
            f"  products: {Product.objects.count()}, with generated images: {with_images.count()}",
            f"  generated images: {images.count()} ({rejected} attached as rejected), failed jobs: {failed}",
            f"  active generator: {version} ({', '.join(version.categories)}), {version.metrics.get('steps', '?')} steps "
            f"in {version.metrics.get('seconds', '?')} s",
            *self._evaluation(version),
            f"  sample grid: {grid}" + ("" if grid.exists() else " (missing)"),
            "  a few generated images:",
            *(f"    {self._path(image)}" for image in images.order_by("pk")[:SHOWN_FILES]),
            *self._scenes(scenes),
            "",
            "Start the server:   .venv/bin/python manage.py runserver   (or: make serve)",
            f"Admin (admin/admin): {base}/admin/",
        ]
        if example:
            lines.append(f"  a product with its generated images: {base}/admin/shop/product/{example.pk}/change/")
            token = Token.objects.filter(user__username="admin").values_list("key", flat=True).first() or "<token>"
            lines.append(
                f'API (all images, as staff): curl -H "Authorization: Token {token}" {base}/api/products/{example.pk}/images/'
            )
            lines.append(f"API (storefront: approved only): curl {base}/api/products/{example.pk}/images/")
        lines.append(f"API docs: {base}/api/docs/")
        self.stdout.write("\n".join(lines))

    def _scenes(self, scenes) -> list[str]:
        """The products put in scenes learned from the catalogue's own backdrops."""
        if not scenes.exists():
            return ["  product scenes: none made"]
        generator = ModelVersion.objects.filter(kind="scenes", is_active=True).order_by(*SERVING_ORDER).first()
        lines = [f"  product scenes: {scenes.count()} images of {scenes.values('product').distinct().count()} products"]
        if generator is not None:
            lines.append(f"    scene generator: {generator} on {generator.image_count} backdrops of the scene set "
                         f"“{generator.scene_set}”, {generator.metrics.get('steps', '?')} steps")
        lines += [f"    {self._path(image)}" for image in scenes.order_by("pk")[:SHOWN_FILES]]
        return lines

    @staticmethod
    def _path(image: GeneratedImage) -> str:
        try:
            return str(Path(image.image.path).relative_to(Path(django_settings.BASE_DIR)))
        except (NotImplementedError, ValueError):  # not on the local disk, or outside the project
            return image.image.name

    @staticmethod
    def _evaluation(version) -> list[str]:
        evaluation = version.metrics.get("evaluation") or {}
        if not evaluation:
            return ["  not measured (no feature extractor could be trained)"]
        overall, copies = evaluation["overall"], evaluation.get("near_copies", {})
        return [
            f"  measured on {overall['count_real']} {evaluation.get('real_dir', 'real photos')} against "
            f"{overall['count_fake']} samples: classifier-FID {overall['fid']:.2f}, precision {overall['precision']:.2f}, "
            f"recall {overall['recall']:.2f}, coverage {overall['coverage']:.2f}",
            f"  near copies of training photos: {copies.get('flagged', '?')} of {copies.get('generated_total', '?')} samples "
            f"({copies.get('pixel_confirmed', '?')} confirmed in pixels), {copies.get('held_out_flagged', '?')} of "
            f"{copies.get('held_out_total', '?')} held-out real photos; p = {copies.get('p_value', 1.0):.2g}",
            f"  activation: {version.metrics.get('activation', '?')}",
        ]
