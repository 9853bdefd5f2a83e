"""What the commands that run jobs here share: run them with a progress bar, summarise their states, name the
failed ones, and fail the command when no image was made (a command checks its own result)."""
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from imagegen import services
from imagegen.models import GeneratedImage, Job

# Failed jobs named one by one; the rest are counted.
SHOWN_FAILURES = 10


def run_and_report(command: BaseCommand, jobs: list[Job], *, what: str, name: str) -> list[Job]:
    """Run ``jobs`` in this process and print "N <what> jobs: <states>; M images" and the failures; a
    CommandError when none of them made an image."""
    finished = [services.execute(job.pk) for job in tqdm(jobs, desc=name, unit="product", disable=None)]
    states = Counter(job.state for job in finished)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    images = GeneratedImage.objects.filter(job__in=[job.pk for job in finished]).count()
    command.stdout.write(command.style.SUCCESS(f"{len(jobs)} {what} jobs: {summary}; {images} images."))
    for job in [j for j in finished if j.state == Job.State.FAILED][:SHOWN_FAILURES]:
        command.stdout.write(command.style.WARNING(f"Job #{job.pk} (product {job.product_id}) failed: {job.error}"))
    # Asked for images and made none: that is a failure, whatever else went right.
    if not states.get(Job.State.SUCCEEDED):
        raise CommandError(f"No {what} job succeeded ({summary}); no image was made.")
    if not images:
        raise CommandError(f"No {what} job made an image ({summary}).")
    return finished
