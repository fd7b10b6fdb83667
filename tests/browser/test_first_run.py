"""A new user's first minutes in Chromium: the front page, the admin with the demo's staff user,
and the styled error pages."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import NewPage, Server, call, shot
from tests.support.servers import manage

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PHONE = {"width": 390, "height": 844}


async def test_front_page_leads_into_the_admin_with_the_printed_password(
    new_page: NewPage, server: Server, room_name: str
):
    username = f"adm{room_name[-6:]}"
    out = await call(manage, "demo_staff", "--username", username, env=server.env)
    password = re.search(r"write it down\): (\S+)$", out, re.M)
    assert password, out

    page = await new_page()
    await page.goto(f"{server.base}/")
    await expect(page.get_by_role("heading", name="A waiting room for video calls")).to_be_visible()
    await expect(page.get_by_role("link", name="The REST API's OpenAPI document")).to_be_visible()
    await shot(page, "home")
    await page.get_by_role("link", name="Sign in to the admin").click()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password.group(1))
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    await shot(page, "admin-home")

    again = await call(manage, "demo_staff", "--username", username, env=server.env)
    assert "exists" in again and password.group(1) not in again


async def test_front_page_and_404_on_a_phone(new_page: NewPage, server: Server):
    page = await new_page(viewport=PHONE)
    await page.goto(f"{server.base}/")
    await expect(page.get_by_role("link", name="Sign in to the admin")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(page, "home-phone")
    resp = await page.goto(f"{server.base}/nothing/here")
    assert resp.status == 404
    await expect(page.get_by_role("heading", name="There is no page here")).to_be_visible()
    await page.get_by_role("link", name="What is this server?").click()
    await expect(page.get_by_role("heading", name="A waiting room for video calls")).to_be_visible()
