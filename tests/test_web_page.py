"""The web page at `/`, in a real browser: Debian's chromium driven by Playwright for Python
(`executable_path`; Playwright's own browser download cannot be reached here).

A person's session, step by step, each step's screenshot under var/screenshots/ for people to
look at: log in by keyboard (a wrong password first: the API's message is shown), upload a
10 s clip with options, watch the job reach done, download it and check it with ffmpeg,
delete it; then a larger upload paused and resumed with the buttons, and one whose
connection drops mid-PATCH and that resumes by itself when the browser is back online.
"""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
import requests
from conftest import GATEWAY_URL, ROOT
from playwright.sync_api import sync_playwright

from mp3testing.media import decode, make_clip, raw_video, raw_video_seconds

pytestmark = pytest.mark.stack  # drives the stack make run started

#: The browser dev/install-browser.sh found or installed, looked for in the same order.
CHROMIUM = next(
    filter(None, map(shutil.which, ("chromium", "google-chrome-stable", "google-chrome"))),
    "/usr/bin/chromium",
)
SCREENSHOTS = ROOT / "var" / "screenshots"
# As tools/env asks of a browser started as root on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "no chromium: run make browser (apt install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def person(new_user):
    return new_user("web")


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    assert problems == []  # no script error, nothing the CSP had to block


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page, address: str, password: str) -> None:
    page.get_by_label("Email").click()
    page.keyboard.type(address)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Convert videos").wait_for()


def api_session(address: str, password: str) -> requests.Session:
    session = requests.Session()
    token = session.post(f"{GATEWAY_URL}/login", auth=(address, password), timeout=10).text
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def job_row(page, filename: str):
    return page.locator("#jobs li", has_text=filename)


def test_log_in_convert_with_options_download_and_delete(page, person, tmp_path):
    address, password = person
    answer = page.goto(f"{GATEWAY_URL}/")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    assert not page.get_by_role("button", name="Log out").is_visible()  # nobody to log out
    shot(page, "01-login")

    # A wrong password: the page shows the API's own message.
    refused = requests.post(f"{GATEWAY_URL}/login", auth=(address, "wrong"), timeout=10)
    log_in_failed = page.locator("#error")
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    log_in_failed.wait_for()
    assert log_in_failed.inner_text() == refused.json()["message"]
    shot(page, "02-wrong-password")

    page.get_by_label("Email").fill("")
    page.get_by_label("Password").fill("")
    log_in(page, address, password)
    assert page.get_by_label("Format").input_value() == "mp3"  # the defaults, preselected
    assert page.get_by_label("Quality").input_value() == "V2"
    shot(page, "03-logged-in")

    # A 10 s clip as Opus 96k, seconds 2 to 8, mono.
    clip = make_clip(tmp_path / "holiday.mp4", 10, args=["-c:v", "mpeg4", "-c:a", "aac"])
    page.get_by_label("Format").select_option("opus")
    page.get_by_label("Quality").select_option("96k")
    page.get_by_label("Start").fill("2")
    page.get_by_label("End").fill("8")
    page.get_by_label("Channels").select_option("mono")
    shot(page, "04-options")
    page.locator("#file-input").set_input_files(str(clip))
    row = job_row(page, "holiday.mp4")
    row.locator(".state", has_text="done").wait_for()
    assert "OPUS 96k" in row.inner_text()
    shot(page, "05-done")

    with page.expect_download() as download_info:
        row.get_by_role("button", name="Download holiday.mp4").click()
    download = download_info.value
    assert download.suggested_filename == "holiday.opus"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    info = decode(target)
    assert "Audio: opus" in info and "mono" in info
    seconds = re.search(r"time=(\d+):(\d+):([\d.]+)", info.rsplit("size=", 1)[-1])
    assert seconds is not None
    h, m, s = seconds.groups()
    assert int(h) * 3600 + int(m) * 60 + float(s) == pytest.approx(6, abs=0.2)
    shot(page, "06-downloaded")

    row.get_by_role("button", name="Delete holiday.mp4").click()
    row.wait_for(state="detached")
    # Focus goes to the list's heading (no other row), not back to the page's start.
    page.wait_for_function("() => document.activeElement.id === 'jobs-title'")
    assert (
        api_session(address, password).get(f"{GATEWAY_URL}/jobs", timeout=10).json()["total"] == 0
    )
    shot(page, "07-deleted")

    # A bad option: the upload is refused with the API's message, shown as it is.
    page.get_by_label("End").fill("soon")
    page.locator("#file-input").set_input_files(str(clip))
    page.locator("#error").filter(has_text="end must be seconds").wait_for()
    shot(page, "08-bad-option")
    refused_upload = page.locator("#uploads li", has_text="Not uploaded")
    refused_upload.get_by_role("button", name="Dismiss the upload of holiday.mp4").click()
    refused_upload.wait_for(state="detached")
    assert page.evaluate("() => document.activeElement.id") == "choose"


def test_pause_resume_and_a_dropped_connection_resume_the_upload(page, context, person, tmp_path):
    address, password = person
    page.goto(f"{GATEWAY_URL}/")
    log_in(page, address, password)
    video = raw_video(tmp_path / "lecture.mkv", 30)  # 4 PATCHes of 8 MiB
    held, patches, methods = [], [], []

    def on_upload_request(route):
        request = route.request
        methods.append(request.method)
        if request.method == "PATCH":
            patches.append(request.headers.get("upload-offset"))
            if len(patches) == 2:  # held until the person has pressed Pause
                held.append(route)
                return
            if len(patches) == 4:  # the connection drops mid-upload
                context.set_offline(True)
                route.abort("internetdisconnected")
                return
        route.continue_()

    page.route("**/uploads/*", on_upload_request)
    page.locator("#file-input").set_input_files(str(video))
    upload = page.locator("#uploads li", has_text="lecture.mkv")
    page.wait_for_function("() => document.querySelector('#uploads .pause') !== null")
    for _ in range(1200):  # a minute at most
        if held:
            break
        page.wait_for_timeout(50)
    assert held, f"the second PATCH never came (PATCHes: {patches})"
    upload.get_by_role("button", name="Pause the upload of lecture.mkv").click()
    upload.locator(".status", has_text="Paused").wait_for()
    try:
        held[0].abort()  # the browser has given this request up already
    except Exception:  # noqa: BLE001, S110 - Playwright says the request is gone: as it should
        pass
    shot(page, "09-paused")

    upload.get_by_role("button", name="Resume the upload of lecture.mkv").click()
    upload.locator(".status", has_text="Connection lost").wait_for()
    assert upload.get_by_role("button", name="Resume the upload of lecture.mkv").is_visible()
    shot(page, "10-connection-lost")

    context.set_offline(False)  # back online: the page resumes by itself
    row = job_row(page, "lecture.mkv")
    row.wait_for()
    row.locator(".state", has_text="done").wait_for()
    shot(page, "11-resumed-and-done")

    offsets = [int(offset) for offset in patches]
    assert offsets[2] == offsets[1]  # after the pause it went on where the server was
    assert len(offsets) > 4  # and after the dropped connection too
    # Each resume asked the server for its offset first (HEAD), as tus says.
    assert methods.count("HEAD") >= 2 and methods[-1] == "PATCH"
    # Every byte arrived once and in order: the size, and the audio's whole length.
    fid = row.get_attribute("data-fid")
    job = api_session(address, password).get(f"{GATEWAY_URL}/status", params={"fid": fid})
    assert job.json()["size"] == video.stat().st_size
    assert job.json()["duration_seconds"] == pytest.approx(raw_video_seconds(30), abs=0.2)


def test_the_page_fits_a_phone(browser, person):
    address, password = person
    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = phone.new_page()
    page.goto(f"{GATEWAY_URL}/")
    log_in(page, address, password)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    for label in ("Format", "Quality", "Start", "End", "Loudness", "Audio track", "Channels"):
        assert page.get_by_label(label).is_visible()
    shot(page, "12-phone")
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()
    assert page.evaluate("() => sessionStorage.length") == 0
    assert not page.get_by_role("button", name="Log out").is_visible()
    phone.close()


def test_several_files_dropped_at_once_each_become_a_job(page, person, tmp_path):
    address, password = person
    page.goto(f"{GATEWAY_URL}/")
    log_in(page, address, password)
    clips = [
        make_clip(tmp_path / name, 2, size="64x48", args=["-c:v", "mpeg4", "-c:a", "aac"])
        for name in ("first.mp4", "second.mp4")
    ]
    files = [[clip.name, base64.b64encode(clip.read_bytes()).decode()] for clip in clips]
    dropped = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, data] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type: "video/mp4" }));
            }
            return transfer;
        }""",
        files,
    )
    page.dispatch_event("#drop", "dragover", {"dataTransfer": dropped})
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    for clip in clips:
        job_row(page, clip.name).locator(".state", has_text="done").wait_for()
    shot(page, "13-dropped-two")


def test_after_a_reload_other_options_start_a_new_upload_and_the_same_ones_resume(
    page, person, tmp_path
):
    address, password = person
    page.goto(f"{GATEWAY_URL}/")
    log_in(page, address, password)
    clip = make_clip(tmp_path / "talk.mp4", 2, size="64x48", args=["-c:v", "mpeg4", "-c:a", "aac"])
    calls: list[tuple[str, str]] = []
    held = []

    def record(route):
        calls.append((route.request.method, route.request.url))
        if route.request.method == "PATCH" and not held:  # the first upload never gets its bytes
            held.append(route)
            return
        route.continue_()

    uploads = re.compile(r"/uploads(/[^/?]*)?$")
    page.route(uploads, record)
    page.locator("#file-input").set_input_files(str(clip))  # mp3 V2, the defaults
    page.wait_for_function("() => Object.keys(localStorage).some((k) => k.startsWith('tus::'))")
    for _ in range(1200):  # a minute at most
        if held:
            break
        page.wait_for_timeout(50)
    assert held, f"no PATCH came ({calls})"
    first = held[0].request.url

    # After a reload, the same file with another format: a new upload, converted as chosen.
    page.reload()
    page.get_by_role("heading", name="Convert videos").wait_for()
    calls.clear()
    page.get_by_label("Format").select_option("opus")
    page.locator("#file-input").set_input_files(str(clip))
    opus = page.locator("#jobs li", has_text="OPUS")
    opus.locator(".state", has_text="done").wait_for()
    assert ("POST", f"{GATEWAY_URL}/uploads") in calls
    assert all(url != first for _, url in calls)

    # After another reload, the first choice again: the first upload resumes, no new one.
    page.reload()
    page.get_by_role("heading", name="Convert videos").wait_for()
    calls.clear()
    page.locator("#file-input").set_input_files(str(clip))
    resumed = page.locator(f"#jobs li[data-fid='{first.rsplit('/', 1)[1]}']")
    resumed.locator(".state", has_text="done").wait_for()
    assert ("HEAD", first) in calls and ("PATCH", first) in calls
    assert not [call for call in calls if call[0] == "POST"]
    assert "MP3" in resumed.inner_text()


def test_log_out_forgets_the_upload_addresses_kept_for_resuming(page, person, tmp_path):
    address, password = person
    page.goto(f"{GATEWAY_URL}/")
    log_in(page, address, password)
    clip = make_clip(tmp_path / "kept.mp4", 2, size="64x48", args=["-c:v", "mpeg4", "-c:a", "aac"])
    held = []
    page.route(re.compile(r"/uploads/[^/?]+$"), lambda route: held.append(route))
    page.locator("#file-input").set_input_files(str(clip))
    stored = "() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')).length"
    page.wait_for_function(f"() => ({stored})() > 0")  # an unfinished upload, kept for resuming
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()
    assert page.evaluate(stored) == 0
