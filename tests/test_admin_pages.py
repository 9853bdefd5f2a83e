"""Admin pages rendered in-process (the clicks themselves are in test_browser.py)."""
import pytest

from imagegen.models import Job

pytestmark = pytest.mark.slow


def test_jobs_page_reloads_itself_only_while_jobs_are_active(client, staff_user, make_products):
    (product,) = make_products({"hat": 1})
    client.force_login(staff_user)
    job = Job.objects.create(kind=Job.Kind.GENERATE, product=product, parameters={}, state="running", progress=35)
    page = client.get("/admin/imagegen/job/").content.decode()
    assert '<meta http-equiv="refresh" content="5">' in page and 'value="35"' in page
    Job.objects.filter(pk=job.pk).update(state="succeeded", progress=100)
    page = client.get("/admin/imagegen/job/").content.decode()
    assert 'http-equiv="refresh"' not in page


def test_actions_are_offered_only_with_the_permissions(client, django_user_model, make_products):
    from django.contrib.auth.models import Permission

    make_products({"hat": 1})
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename__in=["view_product", "change_product"]))
    client.force_login(clerk)
    page = client.get("/admin/shop/product/").content.decode()
    assert 'value="generate_images"' not in page and 'value="train_generator"' not in page
    clerk.user_permissions.add(Permission.objects.get(codename="generate_images"))
    page = client.get("/admin/shop/product/").content.decode()
    assert 'value="generate_images"' in page and 'value="train_generator"' not in page


def test_review_view_refuses_get(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/admin/imagegen/generatedimage/1/review/").status_code == 405


def test_versions_compare_side_by_side(client, staff_user, trained_version):
    from imagegen.models import ModelVersion

    other = ModelVersion.objects.create(
        kind="cgan", name="older", checkpoint="x.pt", categories=["dress"],
        metrics={"steps": 10, "evaluation": {"overall": {"fid": 12.3456}, "real_dir": "training photos"}},
    )
    client.force_login(staff_user)
    page = client.post(
        "/admin/imagegen/modelversion/",
        {"action": "compare", "_selected_action": [trained_version.pk, other.pk]},
    ).content.decode()
    assert 'id="imagegen-compare"' in page
    assert "12.346" in page and "training photos" in page
    assert page.count('alt="samples of') == 1  # only the trained version has a grid
    assert f"{trained_version} (active)" in page
