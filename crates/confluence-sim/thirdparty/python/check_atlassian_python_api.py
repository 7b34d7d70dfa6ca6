#!/usr/bin/env python3
"""Runs atlassian-python-api (unchanged, pinned in requirements.txt) against a running
confluence-sim and checks that every call answers as Confluence Cloud would.

Environment (set by ../run.sh):
  SIM_BASE                 site root, e.g. http://127.0.0.1:41234 (no /wiki)
  CONF_EMAIL, CONF_TOKEN   the service account's Basic credentials
  SIM_LEGACY_DOWNLOAD_401  "1": assert that the legacy /wiki/download/attachments/... path
                           answers 401 to API tokens (Atlassian CHANGE-2735); default off

Only the expected values come from the simulator's /_sim/ control surface (plain HTTP, it
is not Confluence); every Confluence call goes through the library's public methods, or its
generic get() where it has no method for the endpoint.

Prints one line per check (PASS/FAIL/SKIP) and a last line "RESULT <passed> <failed>".
"""

import datetime
import json
import os
import sys
import traceback
import urllib.parse
import urllib.request
import warnings

warnings.simplefilter("ignore")  # the library warns about its own deprecations

from atlassian import ConfluenceV2  # noqa: E402  (the Cloud v2 client)
from atlassian.confluence import ConfluenceServer  # noqa: E402  (the classic v1 REST client)

BASE = os.environ["SIM_BASE"].rstrip("/")
EMAIL = os.environ["CONF_EMAIL"]
TOKEN = os.environ["CONF_TOKEN"]
LEGACY_401 = os.environ.get("SIM_LEGACY_DOWNLOAD_401", "0") == "1"

RESULTS = {"pass": 0, "fail": 0}


def sim(path):
    """GET a /_sim/ control route (expected values only)."""
    with urllib.request.urlopen(f"{BASE}/_sim{path}", timeout=30) as r:
        return json.load(r)


def check(name):
    """Decorator: runs the check now, records PASS/FAIL."""

    def run(fn):
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - every failure is a finding
            RESULTS["fail"] += 1
            detail = f"{type(e).__name__}: {e}"
            print(f"FAIL {name}: {detail[:600]}", flush=True)
            if os.environ.get("CHECK_VERBOSE"):
                traceback.print_exc()
            return None
        if out == "skip":
            print(f"SKIP {name}", flush=True)
            return None
        RESULTS["pass"] += 1
        print(f"PASS {name}" + (f" ({out})" if isinstance(out, str) and out else ""), flush=True)
        return out

    return run


def eq(a, b, what):
    if a != b:
        raise AssertionError(f"{what}: got {a!r}, expected {b!r}")


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


# ---------------------------------------------------------------------------------------------
# Expected values from /_sim/
# ---------------------------------------------------------------------------------------------
users = sim("/users")
me = next(u for u in users if u["email"].lower() == EMAIL.lower())
SA_ID = me["account_id"]
spaces = sim("/spaces")
spaces.sort(key=lambda s: int(s["id"]))
by_key = {s["key"]: s for s in spaces}


def sim_content(key, **params):
    """/_sim/spaces/{key}/pages: what the service account sees in the space, as parallel
    ids/parents/statuses/types lists. Defaults: status=current, type=page."""
    return sim(f"/spaces/{key}/pages?{urllib.parse.urlencode({'visible_to': SA_ID, **params})}")


def index(listing):
    """id -> {parent, status, type} of a sim_content() answer."""
    return {
        i: {"parent": p, "status": st, "type": t}
        for i, p, st, t in zip(listing["ids"], listing["parents"], listing["statuses"], listing["types"])
    }


# the space the service account sees most (current) pages of drives the paging checks
visible = {s["key"]: sim_content(s["key"]) for s in spaces}
BIG = max(spaces, key=lambda s: visible[s["key"]]["count"])
BIG_IDS = set(visible[BIG["key"]]["ids"])
PARENTS = dict(zip(visible[BIG["key"]]["ids"], visible[BIG["key"]]["parents"]))
ok(len(BIG_IDS) > 250, f"the site needs a space with > 250 visible pages (biggest has {len(BIG_IDS)})")
# v2 page lists return current and archived pages unless given status= (v2 spec: "By default,
# current and archived are used")
LIVE = index(sim_content(BIG["key"], status="current,archived"))
ARCHIVED_IDS = {i for i, x in LIVE.items() if x["status"] == "archived"}
ok(ARCHIVED_IDS, "the space needs an archived page the service account sees")
ok(BIG_IDS == {i for i, x in LIVE.items() if x["status"] == "current"}, "/_sim/ status=current is the default")
# every kind of current content the service account sees (folders, blog posts, whiteboards, ...)
ALL_KINDS = index(sim_content(BIG["key"], type="all"))


def sim_page(pid):
    return sim(f"/pages/{pid}")


def visible_children(pid):
    """The current pages directly below pid (a page or a folder) the service account sees."""
    return [q for q in BIG_IDS if PARENTS[q] == pid]


def visible_direct_children(pid):
    """Every current item of any type directly below pid the service account sees."""
    return {q: x["type"] for q, x in ALL_KINDS.items() if x["parent"] == pid}


# A page with labels, attachments, children and ancestors, visible to the service account.
def pick_pages():
    chosen = {}
    for pid in sorted(BIG_IDS, key=int):
        p = sim_page(pid)
        if "labelled" not in chosen and len(p["labels"]) >= 2:
            chosen["labelled"] = p
        if "deep" not in chosen and len(p["ancestors"]) >= 2:
            chosen["deep"] = p
        if "restricted" not in chosen and p["read_restrictions"]["users"] + p["read_restrictions"]["groups"]:
            chosen["restricted"] = p
        if len(chosen) == 3:
            break
    return chosen


PAGES = pick_pages()
ok(len(PAGES) == 3, f"could not find the sample pages: {sorted(PAGES)}")
HOME = sim_page(BIG["homepage_id"])
ATT_PAGE = None  # set by the v2 attachment check

v2 = ConfluenceV2(url=f"{BASE}/wiki", username=EMAIL, password=TOKEN)
# cloud=True: downloads go through the REST endpoint, not the legacy _links.download path.
v1 = ConfluenceServer(url=f"{BASE}/wiki", username=EMAIL, password=TOKEN, cloud=True)


def follow_v2(path, params):
    """v2 cursor paging through the library's generic get(): _links.next is a path from the
    site root (/wiki/api/v2/...), so it is requested as an absolute URL."""
    out, pages = [], 0
    resp = v2.get(path, params=params)
    while True:
        pages += 1
        ok(pages <= 500, f"{path}: more than 500 pages of results")
        out.extend(resp["results"])
        nxt = resp.get("_links", {}).get("next")
        if not nxt:
            return out, pages
        ok(nxt.startswith("/wiki/api/v2/"), f"v2 _links.next is a path from the site root: {nxt}")
        resp = v2.get(BASE + nxt, absolute=True)


# ---------------------------------------------------------------------------------------------
# v2
# ---------------------------------------------------------------------------------------------
@check("v2 get_spaces(keys=[..]) -> GET /wiki/api/v2/spaces?keys=")
def _():
    keys = [s["key"] for s in spaces[:2]]
    got = v2.get_spaces(keys=keys)
    eq(sorted(s["key"] for s in got), sorted(keys), "keys")
    for s in got:
        eq(s["id"], str(by_key[s["key"]]["id"]), f"id of {s['key']}")
        ok(s["name"] == by_key[s["key"]]["name"], "name")
    return f"{len(got)} spaces"


@check("v2 get_space_by_key -> GET /wiki/api/v2/spaces?keys=K&limit=1")
def _():
    s = v2.get_space_by_key(BIG["key"])
    eq(s["id"], str(BIG["id"]), "id")
    eq(s.get("homepageId"), str(BIG["homepage_id"]), "homepageId")


@check("v2 get_space(id) -> GET /wiki/api/v2/spaces/{id}")
def _():
    s = v2.get_space(str(BIG["id"]))
    eq(s["key"], BIG["key"], "key")


@check("v2 get(spaces/{id}/pages?body-format=storage&limit=250) following _links.next: current and archived")
def _():
    got, calls = follow_v2(f"api/v2/spaces/{BIG['id']}/pages", {"body-format": "storage", "limit": 250})
    ids = [p["id"] for p in got]
    eq(len(ids), len(set(ids)), "no page twice")
    eq(set(ids), set(LIVE), "the current and archived pages /_sim/ says the service account sees")
    ok(calls >= 2, f"paged ({calls} calls)")
    for p in got:
        eq(p["status"], LIVE[p["id"]]["status"], f"status of {p['id']}")
        ok(p["body"]["storage"]["representation"] == "storage", "storage body")
        ok(isinstance(p["body"]["storage"]["value"], str), "body value")
        eq(p["spaceId"], str(BIG["id"]), "spaceId")
    return f"{len(ids)} pages ({len(ARCHIVED_IDS)} archived) in {calls} calls"


@check("v2 get(spaces/{id}/pages?limit=7) small pages: every page once")
def _():
    got, calls = follow_v2(f"api/v2/spaces/{BIG['id']}/pages", {"limit": 7, "sort": "-modified-date"})
    ids = [p["id"] for p in got]
    eq(len(ids), len(set(ids)), "no page twice")
    eq(set(ids), set(LIVE), "all current and archived pages")
    return f"{calls} calls"


@check("v2 get(spaces/{id}/pages?status=current&limit=250): current pages only")
def _():
    got, calls = follow_v2(f"api/v2/spaces/{BIG['id']}/pages", {"status": "current", "limit": 250})
    ids = [p["id"] for p in got]
    eq(len(ids), len(set(ids)), "no page twice")
    eq(set(ids), BIG_IDS, "the current pages /_sim/ says the service account sees")
    for p in got:
        eq(p["status"], "current", f"status of {p['id']}")
    return f"{len(ids)} pages in {calls} calls"


@check("v2 get_pages(space_id, body_format=storage, limit=250) -> GET /wiki/api/v2/pages?space-id=&status=current")
def _():
    # the library sends status=current unless told otherwise
    got = v2.get_pages(space_id=str(BIG["id"]), body_format="storage", limit=250)
    ids = [p["id"] for p in got]
    eq(len(ids), len(set(ids)), "no page twice")
    eq(set(ids), BIG_IDS, "all current pages of the space")
    return f"{len(ids)} pages"


@check("v2 get_pages(space_id, status=archived) -> GET /wiki/api/v2/pages?space-id=&status=archived")
def _():
    # body_format given: without it the library sends body-format=none, outside the v2 spec's
    # PrimaryBodyRepresentation (storage, atlas_doc_format), which the simulator refuses (400)
    got = v2.get_pages(space_id=str(BIG["id"]), status="archived", body_format="storage", limit=250)
    eq({p["id"] for p in got}, ARCHIVED_IDS, "the archived pages of the space")
    for p in got:
        eq(p["status"], "archived", f"status of {p['id']}")
    return f"{len(got)} pages"


@check("v2 get_page_by_id(id, body_format=storage) -> GET /wiki/api/v2/pages/{id}")
def _():
    p = PAGES["labelled"]
    got = v2.get_page_by_id(p["id"], body_format="storage")
    eq(got["id"], p["id"], "id")
    eq(got["title"], p["title"], "title")
    eq(got["version"]["number"], p["version"], "version")
    eq(got["body"]["storage"]["value"], p["body"], "storage body")


@check("v2 get(pages/{id}?body-format=storage&include-labels=true)")
def _():
    p = PAGES["labelled"]
    got = v2.get(f"api/v2/pages/{p['id']}", params={"body-format": "storage", "include-labels": "true"})
    eq(sorted(lbl["name"] for lbl in got["labels"]["results"]), sorted(p["labels"]), "labels")


@check("v2 get_page_labels(id) -> GET /wiki/api/v2/pages/{id}/labels")
def _():
    p = PAGES["labelled"]
    got = v2.get_page_labels(p["id"])
    eq(sorted(lbl["name"] for lbl in got), sorted(p["labels"]), "labels")
    for lbl in got:
        ok(lbl["id"] and lbl["prefix"] == "global", f"label shape {lbl}")


@check("v2 get(pages/{id}/attachments)")
def _():
    global ATT_PAGE
    for pid in sorted(BIG_IDS, key=int):
        got, _calls = follow_v2(f"api/v2/pages/{pid}/attachments", {"limit": 50})
        if got:
            ATT_PAGE = (pid, got)
            break
    ok(ATT_PAGE, "some page of the space has attachments")
    pid, atts = ATT_PAGE
    for a in atts:
        eq(a["pageId"], pid, "pageId")
        ok(a["id"].startswith("att"), "attachment id")
        ok(isinstance(a["fileSize"], int) and a["fileSize"] > 0, "fileSize")
        ok(a["mediaType"], "mediaType")
    return f"page {pid}: {len(atts)}"


LABEL_PAGES = {}


@check("v2 get(labels/{id}/pages) following _links.next")
def _():
    p = PAGES["labelled"]
    got = v2.get(f"api/v2/pages/{p['id']}/labels")["results"]
    label = got[0]
    pages, calls = follow_v2(f"api/v2/labels/{label['id']}/pages", {"limit": 25})
    ids = [x["id"] for x in pages]
    eq(len(ids), len(set(ids)), "no page twice")
    ok(p["id"] in ids, "the page we read the label from is listed")
    for x in pages[:5]:
        ok(label["name"] in sim_page(x["id"])["labels"], f"page {x['id']} has label {label['name']}")
    LABEL_PAGES["name"], LABEL_PAGES["ids"] = label["name"], set(ids)
    return f"{label['name']}: {len(ids)} pages"


# ---------------------------------------------------------------------------------------------
# v1
# ---------------------------------------------------------------------------------------------
GONE = "This deprecated endpoint has been removed"


def expect_gone(call):
    """Atlassian removed GET content/{id} (CHANGE-864, in effect since 30 April 2026): Cloud
    answers 410 Gone with a GoneException. The library raises requests.HTTPError for it."""
    try:
        call()
    except Exception as e:  # noqa: BLE001
        status = getattr(getattr(e, "response", None), "status_code", None)
        eq(status, 410, f"status ({type(e).__name__}: {str(e)[:200]})")
        ok(GONE in str(e), f"GoneException message: {e}")
        return "410 Gone"
    raise AssertionError("the removed v1 endpoint answered")


@check("v1 get_page_by_id(id, expand=body.storage,version,ancestors,metadata.labels) -> 410 Gone (removed)")
def _():
    return expect_gone(
        lambda: v1.get_page_by_id(PAGES["deep"]["id"], expand="body.storage,version,ancestors,metadata.labels")
    )


@check("v1 get_page_child_by_type(id, type=page, start, limit=7) paged by start")
def _():
    # Without start/limit the library pages through _links.next itself, and (5.0.5) resolves
    # that path against the site root, dropping /wiki: the README's library notes.
    ids, start = [], 0
    for _ in range(100):
        got = v1.get_page_child_by_type(HOME["id"], type="page", start=start, limit=7)
        ids.extend(c["id"] for c in got)
        for c in got:
            eq(c["type"], "page", "type")
        if len(got) < 7:
            break
        start += len(got)
    eq(len(ids), len(set(ids)), "no child twice")
    eq(set(ids), set(visible_children(HOME["id"])), "children")
    return f"{len(ids)} children"


@check("v1 get_page_child_by_type(id, start=0, limit=2) one page of children")
def _():
    got = v1.get_page_child_by_type(HOME["id"], type="page", start=0, limit=2)
    ok(isinstance(got, list) and len(got) == min(2, len(visible_children(HOME["id"]))), f"2 children: {got!r}"[:200])


@check("v1 get_page_labels(id) -> GET .../content/{id}/label")
def _():
    p = PAGES["labelled"]
    got = v1.get_page_labels(p["id"])
    eq(sorted(lbl["name"] for lbl in got["results"]), sorted(p["labels"]), "labels")
    eq(got["size"], len(p["labels"]), "size")


@check("v1 get_attachments_from_content(id) -> GET .../content/{id}/child/attachment")
def _():
    ok(ATT_PAGE, "needs the v2 attachment check")
    pid, atts = ATT_PAGE
    got = v1.get_attachments_from_content(pid)
    eq(sorted(a["id"] for a in got["results"]), sorted(a["id"] for a in atts), "attachment ids (v1 = v2)")
    sizes = {x["id"]: x["fileSize"] for x in atts}
    for a in got["results"]:
        eq(a["type"], "attachment", "type")
        eq(a["extensions"]["fileSize"], sizes[a["id"]], "extensions.fileSize")


@check("v1 download_attachments_from_page(id, to_memory=True) -> child/attachment, then REST .../download")
def _():
    ok(ATT_PAGE, "needs the v2 attachment check")
    pid, atts = ATT_PAGE
    files = v1.download_attachments_from_page(pid, to_memory=True)
    sizes = {a["title"]: a["fileSize"] for a in atts}
    eq(sorted(files), sorted(sizes), "downloaded files")
    for name, buf in files.items():
        eq(len(buf.getvalue()), sizes[name], f"bytes of {name} = fileSize")
    return f"{len(files)} files"


@check("v2 get(pages/{id}/children) -> the children, following _links.next")
def _():
    got, calls = follow_v2(f"api/v2/pages/{HOME['id']}/children", {"limit": 5})
    ids = [c["id"] for c in got]
    eq(len(ids), len(set(ids)), "no child twice")
    eq(set(ids), set(visible_children(HOME["id"])), "children")
    return f"{len(ids)} children in {calls} calls"


@check("v1 get(rest/api/content/{id}/child/attachment/{attId}/download) follows a redirect either way")
def _():
    ok(ATT_PAGE, "needs the v2 attachment check")
    pid, atts = ATT_PAGE
    hops = 0
    for a in atts:
        # advanced_mode: the requests.Response, after requests followed any 302 (to another
        # origin requests drops the Authorization header, as it must for a signed media URL).
        r = v1.get(f"rest/api/content/{pid}/child/attachment/{a['id']}/download", advanced_mode=True)
        eq(r.status_code, 200, "status after redirects")
        eq(len(r.content), a["fileSize"], f"bytes of {a['title']} = fileSize")
        hops += len(r.history)
    return f"{len(atts)} files, {hops} redirect(s)"


@check("v1 legacy _links.download (/wiki/download/attachments/...) answers 401 to API tokens")
def _():
    pid, atts = ATT_PAGE
    link = atts[0]["downloadLink"]
    r = v1.get(f"{BASE}/wiki{link}", absolute=True, advanced_mode=True)
    if not LEGACY_401:
        # Not modelled yet: the simulator still serves the file (SIM_LEGACY_DOWNLOAD_401=1 to assert).
        print(f"  note: legacy download answered {r.status_code} (401 not asserted)", flush=True)
        return "skip"
    eq(r.status_code, 401, "legacy download status")


@check("v1 get_all_restrictions_for_content(id) -> GET .../restriction/byOperation")
def _():
    p = PAGES["restricted"]
    got = v1.get_all_restrictions_for_content(p["id"])
    read = got["read"]["restrictions"]
    ok("user" in read or "user" in read.get("_expandable", {}), f"read.restrictions shape: {read}")


@check("v1 get(rest/api/content/{id}/restriction/byOperation/read)")
def _():
    p = PAGES["restricted"]
    got = v1.get(f"rest/api/content/{p['id']}/restriction/byOperation/read")
    eq(got["operation"], "read", "operation")
    users = sorted(u["accountId"] for u in got["restrictions"]["user"]["results"])
    groups = sorted(g["id"] for g in got["restrictions"]["group"]["results"])
    eq(users, sorted(p["read_restrictions"]["users"]), "users")
    eq(groups, sorted(p["read_restrictions"]["groups"]), "groups")


@check("v1 get_current_user() -> GET /wiki/rest/api/user/current")
def _():
    got = v1.get_current_user()
    eq(got["accountId"], SA_ID, "accountId")
    eq(got["type"], "known", "type")
    ok(got.get("displayName"), "displayName")


@check("v1 get_space(key, expand=permissions) -> GET /wiki/rest/api/space/{key}")
def _():
    got = v1.get_space(BIG["key"], expand="description.plain,homepage,permissions")
    eq(got["key"], BIG["key"], "key")
    eq(got["id"], BIG["id"], "id")
    ok(isinstance(got.get("permissions"), list), "permissions expanded")


def cql_all(cql, limit=None, expand=None):
    """Every result of a CQL search: cql() for the first page, then _links.next (a path
    relative to _links.base, .../wiki) through the generic get(). The library's own
    iter_cql()/cql_all() resolve that path against the site root and drop /wiki (5.0.5), which
    fails on Cloud as on the simulator; see the README."""
    got = v1.cql(cql, limit=limit, expand=expand)
    out = list(got["results"])
    for _ in range(500):
        nxt = got["_links"].get("next")
        if not nxt:
            return out
        ok(nxt.startswith("/rest/api/search"), f"v1 next is relative to _links.base: {nxt}")
        got = v1.get(got["_links"]["base"] + nxt, absolute=True)
        out.extend(got["results"])
    raise AssertionError("more than 500 pages of results")


def search_ids(results):
    return [r["content"]["id"] for r in results]


def sim_now():
    return datetime.datetime.fromisoformat(sim("/clock")["now"].replace("Z", "+00:00"))


@check('v1 cql(space = X and type = page, limit=100) -> GET /wiki/rest/api/search (start/limit)')
def _():
    seen, start = [], 0
    for _ in range(50):
        got = v1.cql(f'space = "{BIG["key"]}" and type = page', start=start, limit=100)
        seen.extend(search_ids(got["results"]))
        eq(got["start"], start, "start")
        if got["size"] < 100 or start + got["size"] >= got["totalSize"]:
            break
        start += got["size"]
    eq(len(seen), len(set(seen)), "no page twice")
    eq(set(seen), BIG_IDS, "all pages")
    return f"{len(seen)} via start/limit"


@check("v1 cql(space = X, limit=100) then _links.next cursors past 250")
def _():
    got = cql_all(f'space = "{BIG["key"]}" and type = page', limit=100)
    ids = search_ids(got)
    eq(len(ids), len(set(ids)), "no page twice")
    eq(set(ids), BIG_IDS, "all pages")
    return f"{len(ids)}"


@check('v1 cql(title ~ "word")')
def _():
    word = PAGES["labelled"]["title"].split()[0]
    got = v1.cql(f'space = "{BIG["key"]}" and title ~ "{word}"', limit=250)
    ids = search_ids(got["results"])
    ok(PAGES["labelled"]["id"] in ids, f"the page titled {PAGES['labelled']['title']!r} is found")
    for r in got["results"]:
        ok(word.lower() in r["title"].lower(), f"title {r['title']!r} contains {word!r}")
    return f"{word}: {len(ids)}"


@check('v1 cql(text ~ "word")')
def _():
    word = PAGES["labelled"]["title"].split()[0]
    got = v1.cql(f'space = "{BIG["key"]}" and text ~ "{word}"', limit=250)
    ids = search_ids(got["results"])
    ok(PAGES["labelled"]["id"] in ids, "a page whose title has the word matches text ~")


def search_types(results):
    return {r["content"]["id"]: r["content"]["type"] for r in results}


@check("v1 cql(type in (page, blogpost))")
def _():
    # a space with a blog post the service account sees (the biggest one if it has one)
    for sp in sorted(spaces, key=lambda s: s["key"] != BIG["key"]):
        want = index(sim_content(sp["key"], type="page,blogpost"))
        if "blogpost" in {x["type"] for x in want.values()}:
            break
    else:
        raise AssertionError("no space has a blog post the service account sees")
    cql = f'space = "{sp["key"]}" and type in (page, blogpost)'
    eq(v1.cql(cql, limit=10)["totalSize"], len(want), "totalSize: current pages + blog posts")
    got = cql_all(cql, limit=100)
    eq(len(got), len(search_types(got)), "no item twice")
    eq(search_types(got), {i: x["type"] for i, x in want.items()}, "current pages and blog posts, with their type")
    return f"{sp['key']}: {len(got)}"


@check("v1 cql(parent = id): direct children of every type")
def _():
    want = visible_direct_children(HOME["id"])
    ok(set(want.values()) - {"page"}, f"the home page needs a child that is not a page: {want}")
    got = cql_all(f"parent = {HOME['id']}", limit=100)
    eq(len(got), len(search_types(got)), "no item twice")
    eq(search_types(got), want, "direct children of the home page, with their type")
    return ", ".join(sorted(set(want.values())))


@check("v1 cql(parent = id and type = page)")
def _():
    got = cql_all(f"parent = {HOME['id']} and type = page", limit=100)
    eq(sorted(search_ids(got)), sorted(visible_children(HOME["id"])), "direct child pages of the home page")


@check("v1 cql(parent = folder id)")
def _():
    folders = [i for i, x in ALL_KINDS.items() if x["type"] == "folder" and visible_direct_children(i)]
    ok(folders, "the space needs a folder with content the service account sees")
    for f in folders:
        got = cql_all(f"parent = {f}", limit=100)
        eq(search_types(got), visible_direct_children(f), f"direct children of folder {f}")
    return f"{len(folders)} folders"


@check("v1 cql(ancestor = id)")
def _():
    p = PAGES["deep"]
    top = p["ancestors"][1] if len(p["ancestors"]) > 1 else p["ancestors"][0]
    got = cql_all(f"ancestor = {top} and type = page", limit=100)
    ids = search_ids(got)
    ok(p["id"] in ids, "the deep page is a descendant")
    for i in ids[:10]:
        ok(top in sim_page(i)["ancestors"], f"{i} descends from {top}")


@check('v1 cql(label = "x") agrees with v2 labels/{id}/pages')
def _():
    ok(LABEL_PAGES, "needs the v2 label check")
    got = cql_all(f'label = "{LABEL_PAGES["name"]}" and type = page', limit=200)
    eq(set(search_ids(got)), LABEL_PAGES["ids"], "pages")


@check('v1 cql(lastmodified > now("-1d")) after an edit')
def _():
    p = PAGES["labelled"]
    req = urllib.request.Request(
        f"{BASE}/_sim/pages/{p['id']}",
        data=json.dumps({"body": p["body"] + "<p>edited by the third-party check</p>"}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    urllib.request.urlopen(req, timeout=30).read()
    got = cql_all(f'space = "{BIG["key"]}" and type = page and lastmodified > now("-1d")', limit=100)
    ids = search_ids(got)
    ok(p["id"] in ids, "the page just edited")
    old = cql_all(f'space = "{BIG["key"]}" and type = page and lastmodified <= now("-1d")', limit=250)
    ok(p["id"] not in search_ids(old), "not in the complement")
    eq(len(ids) + len(old), len(BIG_IDS), "both sides add up to the space")
    return f"{len(ids)} recent"


@check('v1 cql(space = X and lastmodified > "yyyy/MM/dd HH:mm") ORDER BY lastmodified')
def _():
    since = (sim_now() - datetime.timedelta(hours=2)).strftime("%Y/%m/%d %H:%M")
    got = cql_all(f'space = "{BIG["key"]}" and lastmodified > "{since}" order by lastmodified desc', limit=50)
    ids = search_ids(got)
    ok(PAGES["labelled"]["id"] in ids, f"the edited page is newer than {since}")
    when = [r["lastModified"] for r in got]
    eq(when, sorted(when, reverse=True), "ordered by lastmodified desc")


@check("v1 get(rest/api/content/search?cql=...&expand=ancestors,version,metadata.labels,restrictions...)")
def _():
    expand = (
        "ancestors,version,metadata.labels,"
        "restrictions.read.restrictions.user,restrictions.read.restrictions.group"
    )
    out, params, calls = [], {"cql": f'space = "{BIG["key"]}" and type = page', "limit": 200, "expand": expand}, 0
    resp = v1.get("rest/api/content/search", params=params)
    while calls < 500:
        calls += 1
        out.extend(resp["results"])
        nxt = resp["_links"].get("next")
        if not nxt:
            break
        ok(nxt.startswith("/rest/api/content/search"), f"v1 next is relative to _links.base: {nxt}")
        resp = v1.get(resp["_links"]["base"] + nxt, absolute=True)
    ids = [c["id"] for c in out]
    eq(len(ids), len(set(ids)), "no page twice")
    eq(set(ids), BIG_IDS, "all pages")
    r = next(c for c in out if c["id"] == PAGES["restricted"]["id"])
    users = sorted(u["accountId"] for u in r["restrictions"]["read"]["restrictions"]["user"]["results"])
    eq(users, sorted(PAGES["restricted"]["read_restrictions"]["users"]), "restrictions expanded")
    d = next(c for c in out if c["id"] == PAGES["deep"]["id"])
    eq([a["id"] for a in d["ancestors"]], PAGES["deep"]["ancestors"], "ancestors")
    return f"{len(ids)} in {calls} calls"


@check("v1 cql(bad query) -> 400 raised as ApiValueError")
def _():
    try:
        v1.cql("space = ")
    except Exception as e:  # noqa: BLE001
        ok("cannot be parsed" in str(e), f"ApiValueError: {e}")
        return
    raise AssertionError("no error for a bad query")


print(f"RESULT {RESULTS['pass']} {RESULTS['fail']}", flush=True)
sys.exit(1 if RESULTS["fail"] else 0)
