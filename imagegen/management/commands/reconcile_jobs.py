"""manage.py reconcile_jobs: send again the jobs a broker outage or a dead worker left behind (for cron)."""
from django.core.management.base import BaseCommand

from imagegen import services


class Command(BaseCommand):
    help = "Send stale queued jobs and running jobs whose worker's lease ran out to the workers again."

    def handle(self, *args, **opts):
        counts = services.reconcile()
        self.stdout.write(f"Sent {counts['sent']} jobs again; {counts['unsent']} could not be sent (broker unreachable).")
