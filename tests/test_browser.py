"""The listening demo in a real browser: JupyterLab from this environment, notebook 07 run in headless Chromium.

The test starts JupyterLab on a free 127.0.0.1 port with a random token (its config, data, settings and workspace
folders fresh, so nothing of this machine's Jupyter set-up helps), opens a copy of notebook 07 with its outputs
cleared, runs every cell, then uses the app as a person would: picks a question, plays its clip (the <audio>
element loads and has the clip's duration), asks every system, runs the shuffle probe, asks a free question and a
bad one, uploads a clip. It fails on any error in the browser console. Screenshots go to results/figures/.

Needs Chromium (Debian's ``chromium`` package; ``AQA_CHROMIUM`` names another executable) and Playwright for
Python; it is skipped, with the reason, without them (Playwright's own browser download is not used). The CI
profile's base and adapters are set up first as notebook 07 would: reused from work/ci when there, else trained
(on a clean clone, before `make test-notebooks` has made them: 144 s measured once on the shared 2-core machine,
on top of the test's own 40-120 s there, most of it notebook 07 running in the kernel).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07_demo.ipynb"
FIGURES = REPO / "results" / "figures"
CHROMIUM = os.environ.get("AQA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
RUN_TIMEOUT_S = 240  # notebook 07 from a fresh kernel; it takes well under this with the CI systems in place

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                 "(pip install -e '.[dev]')")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium executable (apt-get install chromium, or set "
                                                         "AQA_CHROMIUM)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ci_systems():
    """The CI profile's data, base and adapters, as notebook 07 sets them up (reused when finished)."""
    from aqa_utils import workbook

    prof = workbook.profile("ci")
    workbook.ensure_mini_benchmark(prof)
    workbook.ensure_base(prof)
    for system in prof.systems()[1:]:
        workbook.train_lora(prof, system)
    return prof


@pytest.fixture(scope="module")
def lab(tmp_path_factory, ci_systems):
    """A JupyterLab server on 127.0.0.1 serving a copy of notebook 07 without outputs; stopped afterwards with
    every kernel it started (they share its process group)."""
    home = tmp_path_factory.mktemp("lab")
    root = home / "notebooks"
    root.mkdir()
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["metadata"].pop("widgets", None)
    (root / NOTEBOOK.name).write_text(json.dumps(nb))
    # Every cell rendered (no windowing), so the app stays in the page while later cells run; no news toast.
    for plugin, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                           "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}.items():
        path = home / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {**os.environ, "AQA_PROFILE": "ci", "PYTHONPATH": str(REPO), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    env.pop("MPLBACKEND", None)  # the kernel draws with the inline backend, as in `make lab`
    port, token = free_port(), os.urandom(16).hex()
    log = (home / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        + (["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; its log:\n{(home / 'lab.log').read_text()}") from None
                time.sleep(0.5)
        yield {"url": url, "token": token, "home": home}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _kernel_connected(lab) -> bool:
    """The notebook's kernel is idle and the page holds a connection to it (a run asked for before that is lost)."""
    try:
        with urllib.request.urlopen(f"{lab['url']}/api/kernels?token={lab['token']}", timeout=5) as reply:
            kernels = json.loads(reply.read())
    except OSError:  # the server can answer 500 while the kernel is still starting
        return False
    return any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels)


def test_demo_runs_and_answers_in_jupyterlab(lab, ci_systems, tmp_path):
    from aqa_utils.data.dcase import load_split

    dev = {q.qid: q for q in load_split(ci_systems.data_root, "dev").questions}
    FIGURES.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            # Tall enough for the whole app: an element screenshot of a part scrolled under the toolbar shows the toolbar.
            page = browser.new_page(viewport={"width": 1100, "height": 2300})
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page: {e}"))
            # Only 127.0.0.1: anything else is refused (and would show up as a console error).
            page.route("**/*", lambda route: route.continue_() if urlparse(route.request.url).hostname == "127.0.0.1"
                       else route.abort())
            _use_the_demo(page, lab, tmp_path, dev)
        finally:
            browser.close()
    assert errors == [], "errors in the browser console:\n" + "\n".join(errors)


def _app(page):
    return page.locator(".jp-OutputArea-output .widget-vbox").first


def _shot(locator, name: str) -> None:
    """A screenshot of ``locator`` in results/figures/, in 128 colours (a third of the size, still legible)."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(locator.screenshot())).convert("RGB").quantize(colors=128)
    image.save(FIGURES / name, optimize=True)


def _wait_until(page, check, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not shown within {seconds:g} s: {what}"
        page.wait_for_timeout(250)


def _dropdown(page, label: str):
    return page.locator(f".widget-dropdown:has(> label:text-is('{label}')) select").first


def _click(app, label: str) -> None:
    app.locator("button.jupyter-button", has_text=label).first.click()


def _use_the_demo(page, lab, tmp_path, dev):
    from aqa_utils.demo import clip_summary

    page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK.name}?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    deadline = time.monotonic() + 60
    while not _kernel_connected(lab):
        assert time.monotonic() < deadline, "the notebook's kernel did not start within 60 s"
        page.wait_for_timeout(500)  # not time.sleep: the page's requests pass through this process's route
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator("li[data-command='runmenu:run-all']").click()
    # The last cell's finding is rendered once every cell has run.
    try:
        page.locator(".jp-OutputArea-output", has_text="systems choose the true answer").wait_for(
            timeout=RUN_TIMEOUT_S * 1000)
    except playwright.TimeoutError:
        shown = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        raise AssertionError(f"notebook 07 did not finish in {RUN_TIMEOUT_S} s; its outputs end:\n{shown[-3000:]}")
    app = _app(page)
    assert app.is_visible()
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()  # close the file browser: room

    # Pick a clip: the third dev question.
    _dropdown(page, "split").select_option("dev")
    picker = _dropdown(page, "question")
    picker.select_option(index=2)
    qid = picker.evaluate("s => s.options[s.selectedIndex].text").split()[0]  # labels use no-break spaces
    expected = clip_summary(dev[qid].audio_path)["heard_seconds"]
    # The player loads the picked clip: its duration is the clip's as the model hears it (16 kHz WAV of it).
    page.wait_for_function(
        "exp => { const a = document.querySelector('.jp-Notebook audio');"
        " return a !== null && a.readyState >= 1 && Math.abs(a.duration - exp) < 0.05; }",
        arg=expected, timeout=30_000)
    played = page.locator(".jp-Notebook audio").first.evaluate(
        "a => a.play().then(() => new Promise(ok => setTimeout(() => { ok(a.currentTime); a.pause(); }, 500)))")
    assert played > 0

    # Ask every system: a table with one column per system, every option's probability, the measured times.
    _click(app, "Ask every system")
    table = app.locator("table.aqa-answers")  # in the app: the notebook's outputs hold the same tables
    table.wait_for(timeout=60_000)
    text = table.inner_text()
    for name in ("base (zero-shot)", "LoRA r=8", "LoRA r=16", "LoRA r=32"):
        assert name in text
    assert "answer time (measured)" in text and text.count("%") >= 2 * 4
    assert "true answer" in app.inner_text()
    _wait_until(page, lambda: app.locator("img").evaluate_all(
        "imgs => imgs.filter(i => i.naturalWidth > 0).length") == 2, "the clip figure and the probability bars")
    _shot(app, "demo_browser_answers.png")

    _click(app, "Shuffle probe")
    app.locator("table.aqa-probe").wait_for(timeout=60_000)
    assert "largest probability change" in app.locator("table.aqa-probe").inner_text()
    _shot(app, "demo_browser_probe.png")

    options = app.locator(".widget-textarea textarea").first
    options.fill("")
    _click(app, "Ask every system")
    app.locator("table.aqa-free-answers").wait_for(timeout=60_000)
    assert "Free generation" in app.inner_text()

    options.fill("only one option")
    _click(app, "Ask every system")
    app.locator(".aqa-error").wait_for(timeout=10_000)
    assert "got 1 option(s)" in app.locator(".aqa-error").inner_text()
    _shot(app, "demo_browser_bad_input.png")

    # Upload a 25 s FLAC: it becomes the clip, and the app says how the model windows it.
    upload = tmp_path / "chirp.flac"
    t = np.arange(25 * 16000) / 16000
    sf.write(upload, 0.3 * np.sin(2 * np.pi * (300 + 20 * t) * t), 16000, format="FLAC")
    with page.expect_file_chooser() as chooser:
        _click(app, "upload clip")
    chooser.value.set_files(str(upload))
    app.locator(".widget-html", has_text="chirp.flac").wait_for(timeout=30_000)
    assert "3 window(s) of 10 s" in app.inner_text() and "Free generation" not in app.inner_text()
    _shot(app, "demo_browser_upload.png")
