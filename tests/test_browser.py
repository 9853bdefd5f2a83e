"""The admin buttons pressed in a real headless Chromium (Debian's, driven by Playwright), with the jobs
run by the real Celery worker; screenshots go to test-output/."""
import pytest

from imagegen.models import GeneratedImage, Job

from .conftest import wait_for_job

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def log_in(page, live_server):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-pass-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def run_action(page, live_server, product_ids: list[int], action_label: str):
    page.goto(f"{live_server.url}/admin/shop/product/")
    for pk in product_ids:
        page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", label=action_label)
    page.click("button[name=index]")
    page.wait_for_selector("#imagegen-action-form")


def test_generate_and_review_in_the_browser(worker, live_server, trained_version, staff_user, browser_page, output_dir):
    page = browser_page
    product = trained_version.test_products[1]
    log_in(page, live_server)

    run_action(page, live_server, [product.pk], "Generate images")
    page.fill("#id_count", "4")
    page.fill("#id_seed", "21")
    page.screenshot(path=str(output_dir / "generate-confirmation.png"))
    page.click("input[name=apply]")
    assert "Queued 1 generate job" in page.inner_text(".messagelist")

    job = wait_for_job(Job.objects.get(product=product, kind=Job.Kind.GENERATE).pk)
    assert job.state == Job.State.SUCCEEDED, job.error

    page.goto(f"{live_server.url}/admin/imagegen/job/")
    assert page.locator(".imagegen-state-succeeded").count() == 1
    page.screenshot(path=str(output_dir / "jobs-page.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/shop/product/{product.pk}/change/")
    thumbs = page.locator("img.imagegen-thumb")
    assert thumbs.count() == 4
    # Every thumbnail really loaded (served by the live server, decoded by the browser).
    widths = thumbs.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert widths == [64, 64, 64, 64]
    page.locator("#generated_images-group").scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "product-page-generated-images.png"), full_page=True)

    first = GeneratedImage.objects.filter(product=product).order_by("-created_at", "-id").first()
    page.locator("button.imagegen-approve").first.click()
    page.wait_for_selector(".messagelist")
    assert f"Image #{first.pk} approved" in page.inner_text(".messagelist")
    first.refresh_from_db()
    assert first.review_state == GeneratedImage.ReviewState.APPROVED and first.reviewed_by == staff_user
    assert page.locator(".imagegen-state-approved").count() == 1

    page.locator("button.imagegen-reject").nth(1).click()
    page.wait_for_selector(".messagelist")
    states = sorted(GeneratedImage.objects.filter(product=product).values_list("review_state", flat=True))
    assert states == ["approved", "pending", "pending", "rejected"]
    page.screenshot(path=str(output_dir / "product-page-reviewed.png"), full_page=True)


def test_train_in_the_browser(worker, live_server, make_products, staff_user, browser_page, output_dir):
    page = browser_page
    products = make_products({"dress": 4, "pants": 4})
    log_in(page, live_server)

    run_action(page, live_server, [p.pk for p in products], "Train generator on selected products")
    page.fill("#id_steps", "2")
    page.click("input[name=apply]")
    assert "Queued training job" in page.inner_text(".messagelist")

    job = wait_for_job(Job.objects.get(kind=Job.Kind.TRAIN).pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    page.goto(f"{live_server.url}/admin/imagegen/modelversion/")
    assert page.locator("img.imagegen-thumb").count() == 1
    page.screenshot(path=str(output_dir / "model-versions.png"), full_page=True)
