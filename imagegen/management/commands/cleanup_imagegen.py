"""manage.py cleanup_imagegen: list, and with --apply delete, the files imagegen no longer needs."""
from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from imagegen.services import cleanup


class Command(BaseCommand):
    help = _(
        "Orphan files in the imagegen storage folder, rejected images and retired model versions older than "
        "--older-than days: listed (dry run), or deleted with --apply."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, default=30, metavar="DAYS", help=_("Only what is older than this (default 30)."))
        parser.add_argument("--apply", action="store_true", help=_("Delete; without it nothing is deleted."))

    def handle(self, *args, older_than: float, apply: bool, **opts):
        if older_than < 0:
            raise CommandError(_("--older-than must be 0 or more days."))
        sweep = cleanup.plan(older_than)
        if apply:
            cleanup.apply(sweep)
        kinds = {
            "orphan": _("orphan files"), "rejected": _("rejected images"), "retired": _("retired model versions"),
        }
        for item in sweep.items:
            if item.error:
                line = _("could not delete %(label)s: %(error)s")
            else:
                line = _("deleted %(label)s (%(size)s)") if apply else _("would delete %(label)s (%(size)s)")
            self.stdout.write(line % {"label": item.label, "size": filesizeformat(item.size), "error": item.error})
        for what, title in kinds.items():
            items = [item for item in sweep.of(what) if not item.error]
            self.stdout.write(_("%(title)s: %(count)d (%(size)s)") % {
                "title": title, "count": len(items), "size": filesizeformat(sum(item.size for item in items)),
            })
        if not apply:
            self.stdout.write(_("Dry run: nothing was deleted. Run again with --apply to delete."))
        if sweep.errors:
            raise CommandError(_("%(count)d items could not be deleted.") % {"count": len(sweep.errors)})
