"""manage.py train_scenes: make (or reuse) a scene set and train its scene generator, here or on the workers."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from imagegen import services
from imagegen.models import Job, SceneSet
from imagegen.services import scene_sets
from imagegen.services.products import select_products


class Command(BaseCommand):
    help = ("Train the scene generator of a scene set. With --from-products, the set (made if new) learns the "
            "backdrops of those products' photos, with the product removed.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="The scene set's name.")
        parser.add_argument("--from-products", action="store_true",
                            help="Make the set from the products' own backdrops (--categories/--products, else all).")
        parser.add_argument("--categories", nargs="+", metavar="CATEGORY")
        parser.add_argument("--products", nargs="+", type=int, metavar="ID")
        parser.add_argument("--steps", type=int, default=None)
        parser.add_argument("--max-minutes", type=float, default=None)
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--image-size", type=int, default=None,
                            help="Side of the backdrops it learns (default IMAGEGEN_SCENE_IMAGE_SIZE, 256).")
        parser.add_argument("--queue", action="store_true", help="Send the job to the Celery workers and exit.")

    def handle(self, *args, **opts):
        scene_set = SceneSet.objects.filter(name=opts["name"]).first()
        try:
            if opts["from_products"]:
                ids = [p.pk for p in select_products(categories=opts["categories"], ids=opts["products"])]
                if not ids:
                    raise CommandError("No products match the given --categories/--products.")
                if scene_set is None:
                    scene_set = scene_sets.create_scene_set(name=opts["name"], source=SceneSet.Source.BACKDROPS, product_ids=ids)
                elif scene_set.source == SceneSet.Source.BACKDROPS:
                    scene_set.product_ids = sorted(set(scene_set.product_ids) | set(ids))
                    scene_set.save(update_fields=["product_ids", "updated_at"])
            if scene_set is None:
                raise CommandError(f"There is no scene set {opts['name']!r}; make it in the admin, or pass --from-products.")
            job = scene_sets.request_scene_training(
                scene_set, steps=opts["steps"], max_minutes=opts["max_minutes"], batch_size=opts["batch_size"],
                seed=opts["seed"], image_size=opts["image_size"], send=opts["queue"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if opts["queue"]:
            self.stdout.write(self.style.SUCCESS(f"Queued training job #{job.pk} of the scene set {scene_set}."))
            return
        done = services.execute(job.pk)
        if done.state != Job.State.SUCCEEDED:
            raise CommandError(f"Training the scene generator of {scene_set} {done.state}: {done.error}")
        version = done.model_version
        self.stdout.write(self.style.SUCCESS(
            f"Trained {version} on {version.image_count} backdrops of the scene set {scene_set} "
            f"({version.metrics.get('steps')} steps, {version.metrics.get('seconds')} s); "
            f"{'active' if version.is_active else 'not activated: ' + str(version.metrics.get('activation'))}."
        ))
