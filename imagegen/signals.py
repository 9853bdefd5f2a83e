"""imagegen's signals: the ones it sends, for apps built on it (the storefront, ``imagegen.storefront``).

The core never imports such an app: the app listens here instead.
"""
from django.dispatch import Signal

# Sent by the edit runner (``services.editing.edit_photo``) with ``job`` and ``image`` once the edited
# image's row is saved, inside the transaction that stores it and finishes the job: a receiver's writes
# commit with the result, and a receiver raising ``JobError`` rolls the result back and fails the job with
# its message. ``job.parameters`` carries what the caller of ``request_edit`` added (e.g. ``"segment"``).
edited_image_stored = Signal()

# Sent by ``services.review`` with ``image_ids`` (a list) after it changed their review state; not sent when
# nothing changed.
images_reviewed = Signal()

