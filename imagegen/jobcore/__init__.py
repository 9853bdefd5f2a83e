"""The job core: creating, sending, claiming, leasing, reporting, finishing and reconciling jobs, and the
registry of the runners that do their work.

It knows nothing of that work. The work modules (``imagegen.services``) import it and declare a runner per
kind of job (``runners.register``); it never imports them, which ``make test``'s import contracts check.
"""
