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


def test_repair_painted_with_the_brush_in_the_browser(worker, live_server, make_products, staff_user, browser_page, output_dir):
    """The shop paints over a defect on the photo in the repair action's page; the worker fills exactly the
    painted pixels (with OpenCV's Telea: a model trained on 8 photos has none held out to be validated on, so
    it is not used) and leaves every other pixel of the photo as it was."""
    import torch
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    from imagegen import services
    from imagegen.models import imagegen_storage

    page = browser_page
    products = make_products({"hat": 4, "dress": 4})
    training = wait_for_job(
        services.request_photo_model_training([p.pk for p in products], kind="inpaint", steps=3, batch_size=4).pk
    )
    assert training.state == Job.State.SUCCEEDED, training.error
    product, unpainted = products[0], products[1]
    log_in(page, live_server)

    run_action(page, live_server, [product.pk, unpainted.pk], "Repair marked regions of the photos (inpainting; paint or a rectangle)")
    block = page.locator(f".imagegen-paint[data-product='{product.pk}']")
    canvas = block.locator("canvas")
    page.wait_for_function("c => c.width > 1", arg=canvas.element_handle())
    box = canvas.bounding_box()
    # One horizontal stroke across the middle third of the photo, 30% from its top.
    page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.65 * box["width"], box["y"] + 0.3 * box["height"], steps=12)
    page.mouse.up()
    page.screenshot(path=str(output_dir / "repair-brush.png"), full_page=True)
    page.click("input[name=apply]")
    text = page.inner_text(".messagelist")
    assert "Queued 1 repair photos job" in text and f"Nothing marked to repair, skipped: {unpainted}" in text

    job = Job.objects.get(kind=Job.Kind.EDIT)
    assert job.product == product and set(job.parameters["options"]) == {"mask"}
    with imagegen_storage().open(job.parameters["options"]["mask"]) as fh, Image.open(fh) as stored:
        painted = pil_to_tensor(stored.convert("L"))[0] > 0
    rows, cols = torch.nonzero(painted, as_tuple=True)
    height, width = painted.shape
    assert abs(rows.float().mean().item() / height - 0.3) < 0.03, "the stroke is where it was painted"
    assert cols.min() / width < 0.36 and cols.max() / width > 0.64 and cols.max() / width < 0.8
    assert painted.float().mean() < 0.2

    done = wait_for_job(job.pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    with Image.open(product.image.path) as photo, Image.open(result.image.path) as repaired:
        before, after = pil_to_tensor(photo.convert("RGB")), pil_to_tensor(repaired.convert("RGB"))
        scaled = pil_to_tensor(
            Image.fromarray(painted.numpy().astype("uint8") * 255).resize(photo.size, Image.Resampling.BILINEAR)
        )[0] > 0
    assert torch.equal(before[:, ~scaled], after[:, ~scaled]), "nothing outside the painted stroke changes"
    assert not torch.equal(before[:, scaled], after[:, scaled]), "the stroke is filled in"

    page.goto(f"{live_server.url}/admin/imagegen/generatedimage/{result.pk}/change/")
    assert page.locator(".imagegen-before-after img").count() == 2
    page.screenshot(path=str(output_dir / "repair-before-after.png"), full_page=True)


def test_ab_report_in_the_browser(live_server, make_products, staff_user, browser_page, output_dir, settings):
    """Impressions and clicks recorded over three days show up per product and segment with their
    intervals, the bandit's allocation and a line per arm in the plot."""
    import datetime

    from django.utils import timezone

    from imagegen.storefront.services import shoppers

    settings.IMAGEGEN_EVENT_BUFFER_URL = None
    (product,) = make_products({"hat": 1})
    now = timezone.now()
    for day in range(3):
        at = (now - datetime.timedelta(days=day)).isoformat()
        events = [{"kind": "impression", "product": product.pk, "at": at}] * 40
        events += [{"kind": "click", "product": product.pk, "at": at}] * (4 + 2 * day)
        events += [{"kind": "purchase", "product": product.pk, "at": at}]
        cleaned = shoppers.clean_events(f"report-shopper-{day:03d}", events)
        for event in cleaned:
            event["verified"] = True  # a history as the storefront's tokens would have made it (only those count)
        shoppers.write_events(cleaned)
    page = browser_page
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/imagegen_storefront/armstats/?product={product.pk}")
    group = page.locator(f".imagegen-ab-group[data-product='{product.pk}']")
    assert group.count() == 1
    assert "shoppers without a segment" in group.inner_text()
    row = group.locator(".imagegen-ab-arm")
    assert row.count() == 1 and "original photo" in row.inner_text()
    # 120 impressions, 18 clicks: 15.00% with its Wilson interval.
    assert "15.00% (9.70% – 22.47%)" in row.locator(".imagegen-ctr").inner_text()
    assert "2.50%" in row.locator(".imagegen-conversion").inner_text()
    assert group.locator("svg.imagegen-ctr-plot polyline").count() == 1
    page.screenshot(path=str(output_dir / "ab-report.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/imagegen_storefront/armstats/?product=999999")
    assert "No impressions yet" in page.inner_text("#content")


def test_rollback_and_flagged_samples_on_the_version_page_in_the_browser(
    live_server, make_products, staff_user, browser_page, output_dir, settings
):
    """Staff roll back to an older version with the admin action in Chromium; generation then uses it for its
    categories while the newer one keeps the category the older lacks. The older version's page shows the
    near-copy test and each flagged sample beside its nearest training photo (a version measured with a
    stand-in generator whose samples are its training photos)."""
    from django.core.files.base import ContentFile

    from imagegen import services
    from imagegen.services.evaluation import ensure_feature_extractor, evaluate_after_training
    from imagegen.services.model_registry import version_for
    from imagegen.services.training import request_training

    from .test_copy_gate import PhotoSampler, _training_photos

    settings.IMAGEGEN_AUTO_ACTIVATE = "always"
    products = make_products({"dress": 8, "shoes": 8, "hat": 4})
    two = [p.pk for p in products if p.category.slug != "hat"]
    # Run here, not sent: the session's worker (started by the tests before) would race this process for them.
    old = services.execute(request_training(two, steps=2, batch_size=4, device="cpu", send=False).pk).model_version
    new = services.execute(
        request_training([p.pk for p in products], steps=2, batch_size=4, device="cpu", send=False).pk).model_version
    assert version_for("cgan", "dress") == new

    from imagegen.services import held_out
    from imagegen.services.products import product_photos
    from imagegen.services.training_sets import load_training_set

    train, held = held_out.split(list(product_photos(two)))
    data = load_training_set(train, 64)
    data.held_out = held
    measured = evaluate_after_training(old, PhotoSampler(_training_photos(data)), data, ensure_feature_extractor(data), per_class=10)
    old.metrics["evaluation"] = measured.report
    old.near_copy_sheet.save("near_copies.png", ContentFile(measured.sheet), save=False)
    old.save()

    page = browser_page
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/imagegen/modelversion/")
    page.check(f"input[name=_selected_action][value='{old.pk}']")
    page.select_option("select[name=action]", label="Activate selected versions")
    page.click("button[name=index]")
    assert "Activated 1 version" in page.inner_text(".messagelist")
    assert version_for("cgan", "dress") == old and version_for("cgan", "shoes") == old
    assert version_for("cgan", "hat") == new

    page.goto(f"{live_server.url}/admin/imagegen/modelversion/{old.pk}/change/")
    text = page.inner_text("#content")
    assert "20 of 20 samples are flagged as near copies" in text and "p = " in text
    assert "beside its nearest training photo" in text
    sheet = page.locator("img[src*='near_copies']")
    assert sheet.count() == 1 and sheet.evaluate("img => img.naturalWidth") > 0  # the picture really loads
    page.screenshot(path=str(output_dir / "model-version-near-copies.png"), full_page=True)


def test_enhance_colourways_and_expand_from_the_admin_in_the_browser(worker, live_server, make_products, staff_user,
                                                                    browser_page, output_dir):
    """The three operations' forms: Enhance's task boxes, Colourways' colour list and Expand's aspect ratio;
    the worker runs each job and stores what was asked."""
    from PIL import Image

    page = browser_page
    product = make_products({"hat": 1})[0]
    with Image.open(product.image.path) as photo:
        width, height = photo.size
    log_in(page, live_server)

    run_action(page, live_server, [product.pk], "Enhance photos (exposure, colour, denoise, sharpen, upscale)")
    page.uncheck("input[name=tasks][value=auto]")
    page.check("input[name=tasks][value=denoise]")
    page.check("input[name=tasks][value=deblur]")
    page.screenshot(path=str(output_dir / "enhance-tasks.png"), full_page=True)
    page.click("input[name=apply]")
    assert "Queued 1 enhance photos job" in page.inner_text(".messagelist")

    run_action(page, live_server, [product.pk], "Show the products in other colours (colourways)")
    page.fill("#id_colours", "navy, #c81e28")
    page.click("input[name=apply]")
    assert "Queued 1 colourways job" in page.inner_text(".messagelist")

    run_action(page, live_server, [product.pk], "Expand photos to an aspect ratio (outpainting the backdrop)")
    page.select_option("#id_aspect", "1:1")
    page.click("input[name=apply]")
    assert "Queued 1 expand photos job" in page.inner_text(".messagelist")

    jobs = {job.parameters["operation"]: wait_for_job(job.pk) for job in Job.objects.filter(kind=Job.Kind.EDIT)}
    assert set(jobs) == {"enhance", "colourways", "expand"} and all(j.state == Job.State.SUCCEEDED for j in jobs.values()), \
        {name: job.error for name, job in jobs.items()}
    enhanced = GeneratedImage.objects.get(job=jobs["enhance"])
    assert [s["task"] for s in enhanced.parameters["enhance"]["steps"]] == ["denoise", "deblur"]
    assert [i.parameters["colour"] for i in GeneratedImage.objects.filter(job=jobs["colourways"]).order_by("seed")] == [
        "navy", "#c81e28"]
    expanded = GeneratedImage.objects.get(job=jobs["expand"])
    assert expanded.width == expanded.height == max(width, height)
    page.goto(f"{live_server.url}/admin/imagegen/generatedimage/{expanded.pk}/change/")
    assert page.locator(".imagegen-before-after img").count() == 2
    page.screenshot(path=str(output_dir / "expand-before-after.png"), full_page=True)
