"""manage.py evaluate_imagegen: a model version's metrics against real photos, as JSON."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from imagegen.models import ModelVersion
from imagegen.services import JobError
from imagegen.services.evaluation import evaluate_version


class Command(BaseCommand):
    help = "Compare a generator's samples with real photos (DIR/<category>/<image>) and print the metrics as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--model-version", type=int, required=True, metavar="ID")
        parser.add_argument("--real", type=Path, required=True, metavar="DIR", help="Held-out photos, never trained on.")
        parser.add_argument("--per-class", type=int, default=50, help="Generated images per category.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        version = ModelVersion.objects.filter(pk=opts["model_version"]).first()
        if version is None or version.kind == "features":
            raise CommandError(f"There is no generator model version {opts['model_version']}.")
        if not opts["real"].is_dir():
            raise CommandError(f"{opts['real']} is not a folder.")
        try:
            report = evaluate_version(version, opts["real"], per_class=opts["per_class"], seed=opts["seed"])
        except JobError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
