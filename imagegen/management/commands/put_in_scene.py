"""manage.py put_in_scene: put products' photos in a scene set's scenes, here or on the workers."""
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from imagegen import services
from imagegen.management.running import run_and_report
from imagegen.models import SceneSet
from imagegen.services import scene_sets
from imagegen.services.products import select_products


class Command(BaseCommand):
    help = "Put products in new scenes of a scene set (its trained scene generator's backdrops, or the studio sweep)."

    def add_arguments(self, parser):
        parser.add_argument("scene_set", help="The scene set's name or id.")
        parser.add_argument("--categories", nargs="+", metavar="CATEGORY")
        parser.add_argument("--products", nargs="+", type=int, metavar="ID")
        parser.add_argument("--per-category", type=int, default=None)
        parser.add_argument("--limit", type=int, default=None)
        parser.add_argument("--variants", type=int, default=2)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--options", default="{}", help='More options of the scene operation as JSON, e.g. \'{"aspect": "4:5"}\'.')
        parser.add_argument("--ready-only", action="store_true",
                            help="Only the products whose photo can be cut out now (without a trained cut-out model: "
                                 "photos on a plain backdrop); the others are named and skipped.")
        parser.add_argument("--queue", action="store_true", help="Send the jobs to the Celery workers and exit.")

    def handle(self, *args, **opts):
        name = opts["scene_set"]
        scene_set = SceneSet.objects.filter(pk=int(name)).first() if name.isdigit() else SceneSet.objects.filter(name=name).first()
        if scene_set is None:
            raise CommandError(f"There is no scene set {name!r}.")
        products = select_products(categories=opts["categories"], ids=opts["products"], per_category=opts["per_category"])
        if not products:
            raise CommandError("No products match the given --categories/--products.")
        if opts["ready_only"]:
            ready = scene_sets.cut_out_ready(products)
            self.stdout.write(f"{len(ready)} of {len(products)} products have a photo that can be cut out now; "
                              "train the cut-out model (background) for the others.")
            products = ready
        if opts["limit"]:
            products = products[: opts["limit"]]
        if not products:
            raise CommandError("None of the products has a photo that can be cut out.")
        try:
            extra = json.loads(opts["options"])
        except ValueError as exc:
            raise CommandError(f"--options is not JSON: {exc}") from exc
        options = {**extra, "scene_set": scene_set.pk, "variants": opts["variants"]}
        try:
            jobs = []
            for index, product in enumerate(products):
                # Each product its own seeds, as a bulk operation gives them.
                jobs.append(services.request_edit(product, "scene", send=opts["queue"],
                                                  options={**options, "seed": opts["seed"] + index * opts["variants"]}))
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if opts["queue"]:
            self.stdout.write(self.style.SUCCESS(f"Queued {len(jobs)} scene jobs."))
            return
        run_and_report(self, jobs, what="scene", name="put_in_scene")
