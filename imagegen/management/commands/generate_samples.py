"""manage.py generate_samples: PNG samples of a model version, named <category>_<index>.png."""
import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from imagegen.conf import settings
from imagegen.models import ModelVersion
from imagegen.services import JobError
from imagegen.services.evaluation import write_samples


def _json_object(value: str) -> dict:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise argparse.ArgumentTypeError('must be a JSON object of strings, e.g. {"colour": "red"}')
    return data


class Command(BaseCommand):
    help = "Write samples of a trained generator to a folder as <category>_<index>.png."

    def add_arguments(self, parser):
        parser.add_argument("--model-version", type=int, required=True, metavar="ID")
        parser.add_argument("--count", type=int, required=True, help="Images per category.")
        parser.add_argument("--out", type=Path, required=True, metavar="DIR")
        parser.add_argument("--category", default=None, help="Only this category.")
        parser.add_argument(
            "--attributes", type=_json_object, default=None, metavar="JSON",
            help='Attributes to generate, e.g. \'{"colour": "red", "material": "leather"}\' (text-conditioned kinds).',
        )
        parser.add_argument("--text", default=None, help='A product text, e.g. "red leather skirt" (text-conditioned kinds).')
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        version = ModelVersion.objects.filter(pk=opts["model_version"]).exclude(kind="features").first()
        if version is None:
            raise CommandError(f"There is no generator model version {opts['model_version']}.")
        if version.kind not in settings.KINDS:
            raise CommandError(f"Kind {version.kind!r} is not enabled in IMAGEGEN_KINDS.")
        if not 1 <= opts["count"] <= 10_000:
            raise CommandError("--count must be from 1 to 10000.")
        try:
            paths, ignored = write_samples(
                version, opts["out"], count=opts["count"], seed=opts["seed"], category=opts["category"],
                attributes=opts["attributes"], text=opts["text"],
            )
        except JobError as exc:
            raise CommandError(str(exc)) from exc
        if ignored:
            self.stderr.write(f"Not known to {version} (ignored): {', '.join(ignored)}")
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(paths)} images to {opts['out']}"))
