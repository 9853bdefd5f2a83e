"""manage.py ensure_demo_admin: the demo's superuser (admin / admin) and its API token. For the local demo only."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create the demo superuser 'admin' with password 'admin' if it does not exist (DEBUG only)."

    def handle(self, *args, **opts):
        if not settings.DEBUG:
            raise CommandError("Refusing to create a user with a known password when DEBUG is off.")
        users = get_user_model().objects
        admin = users.filter(username="admin").first()
        if admin is not None:
            self.stdout.write("Demo admin user exists.")
        else:
            admin = users.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write(self.style.SUCCESS("Created the demo admin user: admin / admin"))
        # The README's API examples authenticate with a token, as API clients should.
        Token.objects.get_or_create(user=admin)
