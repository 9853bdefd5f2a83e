"""manage.py generate_images: generate images for products, here or on the Celery workers."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from imagegen import services
from imagegen.conf import settings
from imagegen.management.running import run_and_report
from imagegen.services.products import select_products


class Command(BaseCommand):
    help = "Generate images for products with the active generator of their category."

    def add_arguments(self, parser):
        parser.add_argument("--categories", nargs="+", metavar="CATEGORY")
        parser.add_argument("--products", nargs="+", type=int, metavar="ID")
        parser.add_argument("--limit", type=int, default=None, help="At most this many products (the first by id).")
        parser.add_argument("--per-category", type=int, default=None, help="At most this many products per category.")
        parser.add_argument("--count", type=int, default=4, help=f"Images per product (1-{settings.MAX_IMAGES_PER_JOB}).")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--kind", default=None)
        parser.add_argument("--queue", action="store_true", help="Send the jobs to the Celery workers and exit.")

    def handle(self, *args, **opts):
        products = select_products(
            categories=opts["categories"], ids=opts["products"], per_category=opts["per_category"]
        )
        if opts["limit"]:
            products = products[: opts["limit"]]
        if not products:
            raise CommandError("No products match the given --categories/--products.")
        try:
            jobs = [
                services.request_generation(
                    product, count=opts["count"], seed=opts["seed"], kind=opts["kind"], send=opts["queue"]
                )
                for product in products
            ]
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if opts["queue"]:
            self.stdout.write(self.style.SUCCESS(f"Queued {len(jobs)} generate jobs."))
            return
        run_and_report(self, jobs, what="generate", name="generate_images")
