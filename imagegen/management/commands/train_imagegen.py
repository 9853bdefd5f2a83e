"""manage.py train_imagegen: train a generator on the shop's own product photos."""
import shutil
import tempfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from imagegen import services
from imagegen.conf import settings
from imagegen.models import Job
from imagegen.services import distributed_training
from imagegen.services.products import product_photos, select_products
from imagegen.services.training import train, training_parameters, write_plots

DRY_RUN_STEPS = 3


class Command(BaseCommand):
    help = "Train an image generator on the photos of the shop's products and register it as a model version."

    def add_arguments(self, parser):
        parser.add_argument("--kind", default=None, help=f"Generator kind (default {settings.DEFAULT_KIND}).")
        parser.add_argument("--categories", nargs="+", metavar="CATEGORY", help="Only products of these categories.")
        parser.add_argument("--products", nargs="+", type=int, metavar="ID", help="Only these product ids.")
        parser.add_argument("--image-size", type=int, choices=[64, 128], default=None)
        length = parser.add_mutually_exclusive_group()
        length.add_argument("--steps", type=int, default=None, help=f"Training steps (default {settings.TRAIN_STEPS}).")
        length.add_argument("--epochs", type=float, default=None, help="Passes over the photos instead of steps.")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--max-minutes", type=float, default=None, help="Wall-clock budget; stops when it is spent.")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--r1-gamma", type=float, default=None, metavar="GAMMA",
            help="R1 gradient penalty weight for GAN kinds (default IMAGEGEN_R1_GAMMA; 0 switches it off).",
        )
        parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: IMAGEGEN_DEVICE).")
        parser.add_argument("--resume", type=int, metavar="VERSION_ID", help="Continue training this model version.")
        parser.add_argument("--out", type=Path, help="Also write the sample grid and loss curves here as PNG.")
        parser.add_argument("--dry-run", action="store_true", help=f"Run {DRY_RUN_STEPS} steps; register nothing.")
        parser.add_argument("--queue", action="store_true", help="Send the job to the Celery workers and exit.")
        parser.add_argument(
            "--nproc", type=int, default=None,
            help="Train with this many local processes (DistributedDataParallel under torchrun; one GPU each with --device cuda).",
        )
        parser.add_argument(
            "--prepare", action="store_true",
            help="Store the training job without running or queueing it and print its id (for --job under torchrun).",
        )
        parser.add_argument(
            "--job", type=int, metavar="JOB_ID",
            help="Run this stored training job (under torchrun: as one of its processes) instead of a new one.",
        )

    def handle(self, *args, **opts):
        nproc = opts["nproc"]
        if nproc is not None and (opts["dry_run"] or opts["queue"] or opts["prepare"]):
            raise CommandError("--nproc cannot be combined with --dry-run, --queue or --prepare.")
        if opts["prepare"] and (opts["dry_run"] or opts["queue"]):
            raise CommandError("--prepare cannot be combined with --dry-run or --queue.")
        device = opts["device"] or settings.DEVICE
        if nproc is not None:
            try:
                distributed_training.check_processes(nproc, device)
            except distributed_training.DistributedSetupError as exc:
                raise CommandError(str(exc)) from exc
        if opts["job"] is not None:
            job = Job.objects.filter(pk=opts["job"], kind=Job.Kind.TRAIN).first()
            if job is None:
                raise CommandError(f"There is no training job #{opts['job']}.")
            return self._run_job(job, nproc, device, out=opts["out"])
        products = select_products(categories=opts["categories"], ids=opts["products"])
        if not products.exists():
            raise CommandError("No products match the given --categories/--products.")
        options = {
            "kind": opts["kind"],
            "image_size": opts["image_size"],
            "steps": DRY_RUN_STEPS if opts["dry_run"] else opts["steps"],
            "epochs": None if opts["dry_run"] else opts["epochs"],
            "batch_size": opts["batch_size"],
            "seed": opts["seed"],
            "max_minutes": opts["max_minutes"],
            "resume_from": opts["resume"],
            "device": opts["device"],
            "r1_gamma": opts["r1_gamma"],
        }
        try:
            if opts["dry_run"]:
                return self._dry_run(products, training_parameters(**options), opts["out"])
            job = services.request_training(products, send=opts["queue"], **options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if opts["queue"]:
            self.stdout.write(f"Queued training job #{job.pk} on {products.count()} products.")
            return
        if opts["prepare"]:
            self.stdout.write(f"Stored training job #{job.pk} on {products.count()} products; run it with --job {job.pk}.")
            return
        self._run_job(job, nproc, device, out=opts["out"])

    def _run_job(self, job: Job, nproc: int | None, device: str, out: Path | None = None) -> None:
        if distributed_training.launched_by_torchrun():
            # One of torchrun's processes: rank 0 runs the job, the others train beside it.
            main = distributed_training.is_main_process()
            with _ProgressBar(enabled=main) as on_progress:
                ran = distributed_training.run_rank(job.pk, device=device, on_progress=on_progress)
            if not main:
                return
            if ran is None:
                self.stderr.write(f"Training job #{job.pk} was not claimed (running elsewhere, finished or cancelled).")
                return
            job = ran
        elif nproc is not None:
            self.stdout.write(f"Training job #{job.pk} with {nproc} processes (torchrun).")
            status = distributed_training.launch(job.pk, nproc, device=device)
            job.refresh_from_db()
            if status != 0 and job.state != Job.State.SUCCEEDED:
                raise CommandError(f"torchrun exited with status {status}; training job #{job.pk} is {job.state}. {job.error}")
        else:
            with _ProgressBar() as on_progress:
                job = services.execute(job.pk, on_progress=on_progress) or Job.objects.get(pk=job.pk)
        self._report(job, out)

    def _report(self, job: Job, out: Path | None) -> None:
        if job.state != Job.State.SUCCEEDED:
            raise CommandError(f"Training job #{job.pk} {job.state}: {job.error}")
        version = job.model_version
        self.stdout.write(self.style.SUCCESS(f"Registered {version} (id {version.pk}) on {version.image_count} photos."))
        self.stdout.write(f"Categories: {', '.join(version.categories)}")
        self.stdout.write(f"Metrics: {version.metrics}")
        if out:
            out.mkdir(parents=True, exist_ok=True)
            for field, name in ((version.sample_grid, "sample_grid.png"), (version.loss_curve, "loss_curve.png")):
                with field.open("rb") as src, open(out / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            self.stdout.write(f"Wrote the sample grid and loss curves to {out}")

    def _dry_run(self, products, params: dict, out: Path | None) -> None:
        photos = list(product_photos(products))
        try:
            trainer, summary, data = train(params, photos)
        except services.JobError as exc:
            raise CommandError(str(exc)) from exc
        target = out or Path(tempfile.mkdtemp(prefix="imagegen-dry-run-"))
        paths = write_plots(trainer, target)
        self.stdout.write(
            self.style.SUCCESS(
                f"Dry run: {summary['steps_done']} steps on {len(data.images)} photos "
                f"({len(data.skipped)} skipped) in {summary['seconds']:.1f} s; nothing registered."
            )
        )
        self.stdout.write("Plots: " + ", ".join(str(p) for p in paths))


class _ProgressBar:
    """A tqdm bar as a progress callback, for ``with``."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def __enter__(self):
        # disable=None: no bar when the output is not a terminal.
        self.bar = tqdm(total=100, desc="train_imagegen", unit="%", disable=None if self.enabled else True)

        def on_progress(percent: int, message: str) -> None:
            self.bar.update(percent - self.bar.n)
            self.bar.set_postfix_str(message, refresh=False)

        return on_progress

    def __exit__(self, *exc) -> None:
        self.bar.close()
