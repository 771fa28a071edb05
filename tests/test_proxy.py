"""The app behind a TLS-terminating reverse proxy: Debian's nginx with a self-signed certificate, over real HTTP.

nginx connects to the app from 127.0.0.2, the app's only RAG_TRUSTED_PROXIES address, so its X-Forwarded-Proto,
-Host and -For headers count; the same headers sent straight to the app from 127.0.0.1 must change nothing. The
app also has RAG_PUBLIC_URL set, to an origin no request reaches it by, and a rate limit per client address.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from config import load_settings
from tests.conftest import AppServer, free_port, wait_until_ok
from tests.servers import stop_process
from tests.test_browser import ARTIFACTS, Recorder, ask, browser, wait_for_final  # noqa: F401 - the module's Chromium

QUESTION = "Who is the president of the University of Hong Kong?"
PUBLIC_URL = "https://qa.example.org"
PROXY_ADDRESS = "127.0.0.2"
RATE = 20

NGINX_CONF = """
daemon off;
%(user)s
worker_processes 1;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/error.log;
events { worker_connections 256; }
http {
    access_log %(tmp)s/access.log;
    client_body_temp_path %(tmp)s/client_body;
    proxy_temp_path %(tmp)s/proxy;
    fastcgi_temp_path %(tmp)s/fastcgi;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; "" close; }
    server {
        listen 127.0.0.1:%(port)d ssl;
        ssl_certificate %(tmp)s/cert.pem;
        ssl_certificate_key %(tmp)s/key.pem;
        location / {
            proxy_pass http://127.0.0.1:%(app_port)d;
            proxy_bind %(proxy_address)s;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_read_timeout 300s;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
"""
"""The README's lines, and nginx's default `Host` (the app's own address), so the public host comes only forwarded."""


class Nginx:
    """nginx terminating TLS on a free port of 127.0.0.1, proxying to `app` from PROXY_ADDRESS."""

    def __init__(self, tmp: Path, app: AppServer) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            pytest.fail("nginx is missing: `make test` installs Debian's nginx package")
        if not shutil.which("openssl"):
            pytest.fail("the openssl command is missing: it makes the proxy's self-signed certificate")
        self.app, self.port = app, free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
            check=True, capture_output=True,
        )
        user = "user root;" if os.geteuid() == 0 else ""  # workers as nobody could not enter tmp_path
        conf = NGINX_CONF % {"user": user, "tmp": tmp, "port": self.port, "app_port": app.port, "proxy_address": PROXY_ADDRESS}
        (tmp / "nginx.conf").write_text(conf)
        self.error_log = tmp / "error.log"
        self.process = subprocess.Popen(
            [nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(self.error_log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        if wait_until_ok(f"{self.url}/api/health", 30, self.process, verify=False):
            return
        self.stop()
        log = self.error_log.read_text() if self.error_log.exists() else ""
        raise RuntimeError(f"nginx did not proxy to the app: {log[-3000:]}")

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    tmp = tmp_path_factory.mktemp("proxy")
    env = {"RAG_TRUSTED_PROXIES": PROXY_ADDRESS, "RAG_PUBLIC_URL": PUBLIC_URL, "RAG_RATE_LIMIT": f"{RATE}/minute"}
    app = AppServer(tmp, env)
    try:
        (tmp / "nginx").mkdir()
        nginx = Nginx(tmp / "nginx", app)
    except BaseException:
        app.stop()
        raise
    yield nginx
    nginx.stop()
    app.stop()


def post(url: str, origin: str, question: str = QUESTION, local_address: str | None = None, **headers: str) -> httpx.Response:
    """`POST /api/ask` with a browser's `Origin`, from `local_address` when given (nginx's certificate is self-signed)."""
    transport = httpx.HTTPTransport(verify=False, local_address=local_address)
    with httpx.Client(transport=transport, timeout=120) as client:
        return client.post(f"{url}/api/ask", json={"question": question}, headers={"Origin": origin, **headers})


def test_settings_reject_a_public_url_or_proxy_that_is_not_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(public_url="https://QA.example.org:443/chat/").public_url == "https://qa.example.org"
    assert load_settings(public_url="http://10.1.2.3:8080").public_url == "http://10.1.2.3:8080"
    monkeypatch.setenv("RAG_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.2,::1")
    assert load_settings().trusted_proxies == ["10.0.0.0/8", "127.0.0.2", "::1"]
    for name, value in (("public_url", "qa.example.org"), ("public_url", "ftp://qa.example.org"),
                        ("public_url", "https://qa.example.org:port"), ("trusted_proxies", "proxy.internal")):
        with pytest.raises(SystemExit) as exit_:
            load_settings(**{name: value})
        message = str(exit_.value)
        assert message.startswith(f"error: RAG_{name.upper()}: ") and value in message and "\n" not in message


@pytest.mark.slow
def test_chat_and_widget_answer_through_nginx_over_https(browser, proxy: Nginx) -> None:  # noqa: ANN001, F811
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    try:
        for path in ("/", "/widget/"):
            page = context.new_page()
            recorder = Recorder(page)
            page.goto(proxy.url + path)
            try:
                ask(page, QUESTION)
                sources = wait_for_final(page)
            except Exception:  # what the page showed and fetched, for the next reader of a failure
                page.screenshot(path=str(ARTIFACTS / f"proxy-failure{path.replace('/', '-')}png"), full_page=True)
                raise AssertionError(f"{path}: no answer; the page requested {recorder.urls}") from None
            assert "[1]" in page.locator("#rag-chatbot").inner_text(), path  # an answer, cited (its words vary by build)
            assert "Zhang Xiang said." in page.locator("#rag-sources mark").first.inner_text(), path
            assert "Shanghai, Hong Kong Draw Closer" in sources, path
            elsewhere = [u for u in recorder.urls if urlparse(u).scheme in ("http", "https", "ws", "wss")
                         and not u.startswith(proxy.url + "/")]
            assert elsewhere == [], f"{path}: requests that bypassed the proxy's https origin: {elsewhere}"
            page.close()
    finally:
        context.close()


@pytest.mark.slow
def test_origin_guard_behind_nginx_honours_forwarded_headers_only_from_it(proxy: Nginx, reliability) -> None:  # noqa: ANN001
    foreign = post(proxy.url, "https://evil.example")
    assert foreign.status_code == 403 and "RAG_ALLOWED_ORIGINS" in foreign.json()["error"]
    own = post(proxy.url, proxy.url)
    assert own.status_code == 200 and "Zhang Xiang" in own.json()["citations"][0]["quote"]
    # Straight to the app from 127.0.0.1, an untrusted peer: forged forwarded headers change nothing, neither ours
    # (scheme and host of the proxy) nor uvicorn's (scheme only, which it would trust from 127.0.0.1 by default).
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": f"127.0.0.1:{proxy.port}"}
    assert post(proxy.app.url, proxy.url, **forged).status_code == 403
    app_https = proxy.app.url.replace("http://", "https://")
    assert post(proxy.app.url, app_https, **{"X-Forwarded-Proto": "https"}).status_code == 403
    # The same forged headers from the trusted address are believed: the 403s above are about trust.
    trusted = post(proxy.app.url, proxy.url, local_address=PROXY_ADDRESS, **forged)
    assert trusted.status_code == 200 and "Zhang Xiang" in trusted.json()["citations"][0]["quote"]
    reliability(
        "Behind a TLS-terminating reverse proxy (nginx)", 5,
        "own https origin 200, foreign 403 through nginx; forwarded headers believed only from the trusted proxy",
    )


@pytest.mark.slow
def test_public_url_counts_as_the_apps_own_origin(proxy: Nginx) -> None:
    public = post(proxy.app.url, PUBLIC_URL)
    assert public.status_code == 200 and "Zhang Xiang" in public.json()["citations"][0]["quote"]
    other = post(proxy.app.url, "https://other.example")
    assert other.status_code == 403 and "https://other.example" in other.json()["error"]


@pytest.mark.slow
def test_rate_limit_counts_the_real_client_behind_nginx(proxy: Nginx) -> None:
    """Through nginx every request comes from 127.0.0.2; X-Forwarded-For names the client the limit applies to."""
    statuses = []
    for _ in range(RATE + 1):  # empty questions: cheap (422), but each one counts against the limit
        statuses.append(post(proxy.url, proxy.url, question="", local_address="127.0.0.3").status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {422}, statuses
    assert post(proxy.url, proxy.url, question="").status_code == 422  # another client (127.0.0.1) is not limited
