"""`cotforge view` in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven by Selenium
with the system driver, so nothing is downloaded. Skipped, saying why, where Chromium is not installed."""

from __future__ import annotations

import shutil

import pytest

from .test_view import SCRIPT, Viewer, cut_problem, make_view_build, problem_id

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Chromium and its driver (Debian: apt-get install chromium chromium-driver; .ci/run installs them)",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    out = make_view_build(tmp_path_factory.mktemp("browser") / "build")
    server = Viewer(out).start()
    yield out, f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture(scope="module")
def browser(monkeypatch_module):
    pytest.importorskip("selenium", reason="needs selenium (the dev extra)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch_module.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look anything up
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def no_alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018 (the lookup is the check)
    except NoAlertPresentException:
        return True
    return False


def test_from_the_overview_to_a_question_with_its_levels_side_by_side(browser, site) -> None:
    from selenium.webdriver.common.by import By

    out, url = site
    browser.get(url + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    browser.find_element(By.LINK_TEXT, "scripted-g1-cot").click()  # the subset's records
    pears = problem_id(out, "pears")
    browser.find_element(By.LINK_TEXT, pears).click()
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Question {pears}"
    table = browser.find_elements(By.TAG_NAME, "table")[1]
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers[1:] == ["level 1", "level 4"]
    for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        assert len(cells) == 2 and all("✓ correct" in c.text and "The answer is 5" in c.text for c in cells)
    browser.find_element(By.LINK_TEXT, "next question →").click()
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Question ")
    assert browser.find_element(By.TAG_NAME, "h1").text != f"Question {pears}"


def test_rejections_filtered_by_reason(browser, site) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    out, url = site
    browser.get(url + "/browse")
    Select(browser.find_element(By.ID, "f-kind")).select_by_value("rejections")  # the page's script submits
    WebDriverWait(browser, 20).until(lambda d: "kind=rejections" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Rejections"
    Select(browser.find_element(By.ID, "f-reason")).select_by_value("truncated")
    WebDriverWait(browser, 20).until(lambda d: "reason=truncated" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert len(rows) == 4
    for row in rows:
        assert "rejected: truncated" in row.text and "We work it out step" in row.text  # the raw response
        assert cut_problem(out) in row.text


def test_a_script_in_a_rationale_is_text_and_never_runs(browser, site) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, url = site
    browser.get(url + "/question")
    box = browser.find_element(By.ID, "q")
    box.send_keys("apples")
    box.submit()
    WebDriverWait(browser, 20, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: "q=apples" in d.current_url and SCRIPT in d.find_element(By.TAG_NAME, "main").text
    )  # shown as the teacher wrote it
    assert no_alert(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, "main script")
    browser.get(url + "/browse?kind=rejections&reason=unparseable")
    assert '<img src=x onerror="alert(2)">' in browser.find_element(By.TAG_NAME, "main").text
    assert not browser.find_elements(By.CSS_SELECTOR, "main img") and no_alert(browser)
