"""Start headless Chromium inside the Mahimahi shell (standard library only).

Run as ``python3 _browser.py WORK_DIR`` inside ``mm-delay ... mm-link ... --``. It writes
``$MAHIMAHI_BASE`` to ``WORK_DIR/base``, waits for the page's URL in ``WORK_DIR/url`` (the
harness starts its servers on that address), then replaces itself with Chromium, whose profile
and home are in ``WORK_DIR``. Chromium's flags: headless, no sandbox (the shell's user namespace),
no GPU, muted autoplay, no background or component traffic, and every host name unresolvable
except the server's address, so nothing leaves this host.
"""

import os
import sys
import time


def main(work_dir):
    base = os.environ["MAHIMAHI_BASE"]
    with open(os.path.join(work_dir, "base.tmp"), "w") as file:
        file.write(base + "\n")
    os.rename(os.path.join(work_dir, "base.tmp"), os.path.join(work_dir, "base"))
    url_path = os.path.join(work_dir, "url")
    deadline = time.monotonic() + 30.0
    while not os.path.exists(url_path):
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the page's URL")
        time.sleep(0.01)
    with open(url_path) as file:
        url = file.read().strip()
    profile = os.path.join(work_dir, "profile")
    os.makedirs(profile, exist_ok=True)
    os.environ["HOME"] = work_dir
    browser = os.environ.get("ABRSIM_CHROMIUM", "chromium")
    arguments = [
        browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
        "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
        "--disable-default-apps", "--disable-extensions", "--disable-breakpad",
        "--disable-features=Translate,MediaRouter,OptimizationHints,InterestFeedContentSuggestions",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
        f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {base}",
        f"--user-data-dir={profile}", "--disk-cache-size=1", url,
    ]
    os.execvp(browser, arguments)


if __name__ == "__main__":
    main(sys.argv[1])
