"""Admin for generated images: the review list, the inline on the product page and the review view."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from .. import services
from ..models import GeneratedImage
from .readonly import ReadOnlyModelAdmin
from .widgets import state_badge, thumbnail

REVIEW_PERMISSION = "imagegen.review_generatedimage"


@admin.display(description="Quality", ordering="quality_score")
def quality(obj: GeneratedImage) -> str:
    return "—" if obj.quality_score is None else f"{obj.quality_score:.2f}"


def _review_buttons(image: GeneratedImage):
    url = reverse("admin:imagegen_generatedimage_review", args=[image.pk])
    # formaction lets these buttons live inside the product's change form and post to the review view.
    return format_html(
        '<button type="submit" class="button imagegen-approve" formaction="{0}" name="decision" value="approved">'
        "Approve</button> "
        '<button type="submit" class="button imagegen-reject" formaction="{0}" name="decision" value="rejected">'
        "Reject</button>",
        url,
    )


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    fk_name = "product"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("preview", "review", "actions_", quality, "seed", "model_version", "created_at")
    readonly_fields = fields
    verbose_name_plural = "Generated images"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Image")
    def preview(self, obj):
        return thumbnail(obj.image, 96, alt=f"generated image {obj.pk}")

    @admin.display(description="Review")
    def review(self, obj):
        badge = state_badge(obj.review_state, obj.get_review_state_display())
        return format_html("{}<br><small>{}</small>", badge, obj.review_note) if obj.review_note else badge

    @admin.display(description="")
    def actions_(self, obj):
        return _review_buttons(obj)


@admin.register(GeneratedImage)
class GeneratedImageAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "preview", "product", "kind", "review", quality, "seed", "model_version", "created_at")
    list_filter = ("review_state", "kind", "model_version")
    list_select_related = ("product", "model_version")
    readonly_fields = ["preview", "before_after"]
    actions = ["approve", "reject"]

    def has_review_permission(self, request):
        return request.user.has_perm(REVIEW_PERMISSION)

    @admin.display(description="Image")
    def preview(self, obj):
        return thumbnail(obj.image, 64)

    @admin.display(description="Before / after")
    def before_after(self, obj):
        """An edited photo next to the photo it was made from, at the same displayed height."""
        before = services.editing.source_url(obj)
        if before is None:
            return "—"
        return format_html(
            '<div class="imagegen-before-after" style="display:flex;gap:16px;align-items:flex-start">'
            '<figure style="margin:0"><img src="{}" alt="before" style="height:320px;border:1px solid #ddd">'
            "<figcaption>Before: {}</figcaption></figure>"
            '<figure style="margin:0"><img src="{}" alt="after" style="height:320px;border:1px solid #ddd;'
            'background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 0 0/16px 16px">'
            "<figcaption>After: {} ({}×{})</figcaption></figure></div>",
            before, obj.source_image, obj.image.url, obj.get_kind_display(), obj.width, obj.height,
        )

    @admin.display(description="Review", ordering="review_state")
    def review(self, obj):
        return state_badge(obj.review_state, obj.get_review_state_display())

    @admin.action(description="Approve selected images", permissions=["review"])
    def approve(self, request, queryset):
        changed = services.review(queryset, GeneratedImage.ReviewState.APPROVED, request.user)
        self.message_user(request, f"Approved {changed} image(s).", messages.SUCCESS)

    @admin.action(description="Reject selected images", permissions=["review"])
    def reject(self, request, queryset):
        changed = services.review(queryset, GeneratedImage.ReviewState.REJECTED, request.user)
        self.message_user(request, f"Rejected {changed} image(s).", messages.SUCCESS)

    def get_urls(self):
        review = path(
            "<int:pk>/review/", self.admin_site.admin_view(self.review_view), name="imagegen_generatedimage_review"
        )
        return [review, *super().get_urls()]

    def review_view(self, request, pk: int):
        """POST-only: approve or reject one image, then go back to where the button was."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_review_permission(request):
            raise PermissionDenied
        image = get_object_or_404(GeneratedImage, pk=pk)
        decision = request.POST.get("decision", "")
        try:
            services.review(image, decision, request.user)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Image #{image.pk} {decision}.", messages.SUCCESS)
        product_meta = image.product._meta
        fallback = reverse(f"admin:{product_meta.app_label}_{product_meta.model_name}_change", args=[image.product_id])
        target = request.POST.get("next") or request.headers.get("referer") or fallback
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = fallback
        return HttpResponseRedirect(target)
