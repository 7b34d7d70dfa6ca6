// Runs confluence.js (unchanged, pinned in package-lock.json) against a running confluence-sim
// and checks that every call answers as Confluence Cloud would. confluence.js validates every
// response against Zod schemas derived from Atlassian's OpenAPI documents, so a call that
// returns at all has the documented shape; the checks below assert the contents.
//
// Environment (set by ../run.sh): SIM_BASE (site root, no /wiki), CONF_EMAIL, CONF_TOKEN,
// SIM_LEGACY_DOWNLOAD_401 ("1": assert the legacy download path answers 401).
//
// Expected values come from the simulator's /_sim/ control surface (plain fetch, it is not
// Confluence). Where confluence.js 3.x has no function for an endpoint (its v1 surface follows
// Atlassian's current v1 spec, which dropped GET content/{id}, child/page, label, child/attachment
// and space/{key}), the check uses the library's generic client.sendRequest(), with the
// library's own v1 schema where the endpoint answers 200.
//
// Prints one line per check (PASS/FAIL/SKIP) and a last line "RESULT <passed> <failed>".

import { createV1Client, createV2Client } from 'confluence.js';
import { createClient } from 'confluence.js/core';
import { ContentArraySchema, LabelArraySchema, SpaceSchema } from 'confluence.js/v1';

const BASE = process.env.SIM_BASE.replace(/\/$/, '');
const EMAIL = process.env.CONF_EMAIL;
const TOKEN = process.env.CONF_TOKEN;
const LEGACY_401 = process.env.SIM_LEGACY_DOWNLOAD_401 === '1';

const config = { host: BASE, auth: { type: 'basic', email: EMAIL, apiToken: TOKEN } };
const client = createClient(config);
const v2 = createV2Client(client);
const v1 = createV1Client(client);

let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    const out = await fn();
    if (out === 'skip') {
      console.log(`SKIP ${name}`);
      return;
    }
    passed += 1;
    console.log(`PASS ${name}${typeof out === 'string' && out ? ` (${out})` : ''}`);
  } catch (e) {
    failed += 1;
    let detail = `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
    if (e?.cause?.issues) detail += ` ${JSON.stringify(e.cause.issues).slice(0, 400)}`;
    console.log(`FAIL ${name}: ${detail.slice(0, 800)}`);
  }
}

function eq(a, b, what) {
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  if (ja !== jb) throw new Error(`${what}: got ${ja.slice(0, 300)}, expected ${jb.slice(0, 300)}`);
}
function ok(cond, what) {
  if (!cond) throw new Error(what);
}
const sorted = (xs) => [...xs].sort();
const setEq = (a, b, what) => eq(sorted(new Set(a)), sorted(new Set(b)), what);

async function sim(path, init) {
  const r = await fetch(`${BASE}/_sim${path}`, init);
  if (!r.ok) throw new Error(`/_sim${path}: ${r.status}`);
  return r.json();
}

/** The `cursor` query parameter of a `_links.next` link, or undefined at the end. */
function nextCursor(resp) {
  const next = resp?._links?.next;
  if (!next) return undefined;
  ok(next.startsWith('/wiki/api/v2/'), `v2 _links.next is a path from the site root: ${next}`);
  return new URL(next, BASE).searchParams.get('cursor') ?? undefined;
}

/** Calls a v2 list function until `_links.next` runs out. */
async function allV2(fn, params) {
  const out = [];
  let cursor;
  let calls = 0;
  do {
    if (calls >= 500) throw new Error('more than 500 pages of results');
    const resp = await fn({ ...params, cursor });
    calls += 1;
    out.push(...(resp.results ?? []));
    cursor = nextCursor(resp);
  } while (cursor);
  return { out, calls };
}

// --- expected values from /_sim/ ---------------------------------------------------------------
const users = await sim('/users');
const me = users.find((u) => u.email.toLowerCase() === EMAIL.toLowerCase());
const SA_ID = me.account_id;
const spaces = (await sim('/spaces')).sort((a, b) => a.id - b.id);
/** /_sim/spaces/{key}/pages: what the service account sees in the space, as parallel
 * ids/parents/statuses/types arrays. Defaults: status=current, type=page. */
const simContent = (key, params = {}) =>
  sim(`/spaces/${key}/pages?${new URLSearchParams({ visible_to: SA_ID, ...params })}`);
/** id -> {parent, status, type} of a simContent() answer. */
const index = (l) =>
  new Map(l.ids.map((id, i) => [id, { parent: l.parents[i], status: l.statuses[i], type: l.types[i] }]));
const visible = {};
for (const s of spaces) visible[s.key] = await simContent(s.key);
const BIG = spaces.reduce((a, b) => (visible[b.key].count > visible[a.key].count ? b : a));
const BIG_IDS = visible[BIG.key].ids;
// v2 page lists return current and archived pages unless given status= (v2 spec: "By default,
// current and archived are used").
const LIVE = index(await simContent(BIG.key, { status: 'current,archived' }));
const ARCHIVED_IDS = [...LIVE].filter(([, x]) => x.status === 'archived').map(([id]) => id);
// every kind of current content the service account sees (folders, blog posts, whiteboards, ...)
const ALL_KINDS = index(await simContent(BIG.key, { type: 'all' }));
/** id -> type of every current item directly below `id` the service account sees. */
const directChildren = (id) =>
  Object.fromEntries([...ALL_KINDS].filter(([, x]) => x.parent === id).map(([k, x]) => [k, x.type]));
const simPage = (id) => sim(`/pages/${id}`);
const PARENT = new Map(BIG_IDS.map((id, i) => [id, visible[BIG.key].parents[i]]));
const PAGES = {};
for (const id of BIG_IDS) {
  if (PAGES.labelled && PAGES.deep && PAGES.restricted) break;
  const p = await simPage(id);
  if (!PAGES.labelled && p.labels.length >= 2) PAGES.labelled = p;
  if (!PAGES.deep && p.ancestors.length >= 2) PAGES.deep = p;
  if (!PAGES.restricted && p.read_restrictions.users.length + p.read_restrictions.groups.length) {
    PAGES.restricted = p;
  }
}
const HOME = await simPage(BIG.homepage_id);
const childrenOf = (id) => BIG_IDS.filter((x) => PARENT.get(x) === id);
if (BIG_IDS.length <= 250) throw new Error(`the site needs a space with > 250 visible pages (${BIG_IDS.length})`);
if (!ARCHIVED_IDS.length) throw new Error('the space needs an archived page the service account sees');
let ATT; // { pageId, atts } from the v2 attachment check
let LABEL; // { name, ids } from the v2 label check

// --- v2 --------------------------------------------------------------------------------------
await check('v2 space.getSpaces({keys}) -> GET /wiki/api/v2/spaces?keys=', async () => {
  const keys = spaces.slice(0, 2).map((s) => s.key);
  const r = await v2.space.getSpaces({ keys });
  setEq(r.results.map((s) => s.key), keys, 'keys');
  for (const s of r.results) eq(s.id, String(spaces.find((x) => x.key === s.key).id), 'id');
  return `${r.results.length} spaces`;
});

await check('v2 space.getSpaceById({id}) -> GET /wiki/api/v2/spaces/{id}', async () => {
  const s = await v2.space.getSpaceById({ id: String(BIG.id) });
  eq(s.key, BIG.key, 'key');
  eq(s.homepageId, String(BIG.homepage_id), 'homepageId');
});

await check('v2 page.getPagesInSpace({bodyFormat: storage, limit: 250}) following _links.next: current and archived', async () => {
  const { out, calls } = await allV2((p) => v2.page.getPagesInSpace(p), {
    id: String(BIG.id),
    bodyFormat: 'storage',
    limit: 250,
  });
  const ids = out.map((p) => p.id);
  eq(ids.length, new Set(ids).size, 'no page twice');
  setEq(ids, [...LIVE.keys()], 'the current and archived pages /_sim/ says the service account sees');
  ok(calls >= 2, `paged (${calls} calls)`);
  for (const p of out) {
    eq(p.status, LIVE.get(p.id).status, `status of ${p.id}`);
    ok(typeof p.body?.storage?.value === 'string', `storage body of ${p.id}`);
  }
  return `${ids.length} pages (${ARCHIVED_IDS.length} archived) in ${calls} calls`;
});

await check('v2 page.getPagesInSpace({limit: 9, sort: -modified-date}) every page once', async () => {
  const { out, calls } = await allV2((p) => v2.page.getPagesInSpace(p), {
    id: String(BIG.id),
    limit: 9,
    sort: '-modified-date',
  });
  const ids = out.map((p) => p.id);
  eq(ids.length, new Set(ids).size, 'no page twice');
  setEq(ids, [...LIVE.keys()], 'all current and archived pages');
  return `${calls} calls`;
});

await check("v2 page.getPagesInSpace({status: ['current'], limit: 250}): current pages only", async () => {
  const { out, calls } = await allV2((p) => v2.page.getPagesInSpace(p), {
    id: String(BIG.id),
    status: ['current'],
    limit: 250,
  });
  const ids = out.map((p) => p.id);
  eq(ids.length, new Set(ids).size, 'no page twice');
  setEq(ids, BIG_IDS, 'the current pages /_sim/ says the service account sees');
  for (const p of out) eq(p.status, 'current', `status of ${p.id}`);
  return `${ids.length} pages in ${calls} calls`;
});

await check('v2 page.getPages({spaceId, bodyFormat: storage}) -> GET /wiki/api/v2/pages?space-id=', async () => {
  const { out } = await allV2((p) => v2.page.getPages(p), {
    spaceId: [String(BIG.id)],
    bodyFormat: 'storage',
    limit: 250,
  });
  const ids = out.map((p) => p.id);
  eq(ids.length, new Set(ids).size, 'no page twice');
  setEq(ids, [...LIVE.keys()], 'the current and archived pages of the space');
});

await check("v2 page.getPages({spaceId, status: ['archived']}) -> GET /wiki/api/v2/pages?space-id=&status=archived", async () => {
  const { out } = await allV2((p) => v2.page.getPages(p), {
    spaceId: [String(BIG.id)],
    status: ['archived'],
    limit: 250,
  });
  setEq(out.map((p) => p.id), ARCHIVED_IDS, 'the archived pages of the space');
  for (const p of out) eq(p.status, 'archived', `status of ${p.id}`);
  return `${out.length} pages`;
});

await check('v2 page.getPageById({bodyFormat: storage, includeLabels: true})', async () => {
  const want = PAGES.labelled;
  const p = await v2.page.getPageById({ id: want.id, bodyFormat: 'storage', includeLabels: true });
  eq(p.id, want.id, 'id');
  eq(p.title, want.title, 'title');
  eq(p.version.number, want.version, 'version');
  eq(p.body.storage.value, want.body, 'storage body');
  setEq(p.labels.results.map((l) => l.name), want.labels, 'labels');
});

await check('v2 label.getPageLabels({id}) -> GET /wiki/api/v2/pages/{id}/labels', async () => {
  const r = await v2.label.getPageLabels({ id: PAGES.labelled.id });
  setEq(r.results.map((l) => l.name), PAGES.labelled.labels, 'labels');
});

await check('v2 attachment.getPageAttachments({id}) -> GET /wiki/api/v2/pages/{id}/attachments', async () => {
  for (const id of BIG_IDS) {
    const { out } = await allV2((p) => v2.attachment.getPageAttachments(p), { id, limit: 50 });
    if (out.length) {
      ATT = { pageId: id, atts: out };
      break;
    }
  }
  ok(ATT, 'some page has attachments');
  for (const a of ATT.atts) {
    eq(a.pageId, ATT.pageId, 'pageId');
    ok(Number.isInteger(a.fileSize) && a.fileSize > 0, 'fileSize');
  }
  return `page ${ATT.pageId}: ${ATT.atts.length}`;
});

await check('v2 page.getLabelPages({id}) following _links.next', async () => {
  const labels = (await v2.label.getPageLabels({ id: PAGES.labelled.id })).results;
  const label = labels[0];
  const { out } = await allV2((p) => v2.page.getLabelPages(p), { id: label.id, limit: 20 });
  const ids = out.map((p) => p.id);
  eq(ids.length, new Set(ids).size, 'no page twice');
  ok(ids.includes(PAGES.labelled.id), 'the page we read the label from');
  for (const id of ids.slice(0, 5)) ok((await simPage(id)).labels.includes(label.name), `${id} has the label`);
  LABEL = { name: label.name, ids };
  return `${label.name}: ${ids.length}`;
});

// --- v1 --------------------------------------------------------------------------------------
// Atlassian removed GET content/{id} (CHANGE-864, in effect since 30 April 2026): Cloud answers
// 410 Gone with a GoneException, and confluence.js 3.x dropped it with the v1 spec.
async function expectGone(url, searchParams) {
  try {
    await client.sendRequest({ url, method: 'GET', searchParams });
  } catch (e) {
    eq(e.status, 410, `status of ${url}`);
    ok(String(e.message).includes('This deprecated endpoint has been removed'), `GoneException: ${e.message}`);
    return '410 Gone';
  }
  throw new Error(`${url} answered: the removed v1 endpoint is served`);
}

await check('v1 sendRequest(GET content/{id}?expand=body.storage,...) -> 410 Gone (removed)', () =>
  expectGone(`/wiki/rest/api/content/${PAGES.deep.id}`, { expand: 'body.storage,version,ancestors,metadata.labels' }));

await check('v1 sendRequest(GET content/{id}/child/page) paged by start/limit as ContentArraySchema', async () => {
  const ids = [];
  for (let start = 0, calls = 0; ; calls += 1) {
    if (calls >= 500) throw new Error('more than 500 pages of results');
    const r = await client.sendRequest({
      url: `/wiki/rest/api/content/${HOME.id}/child/page`,
      method: 'GET',
      searchParams: { start, limit: 5 },
      schema: ContentArraySchema,
    });
    eq(r.start, start, 'start');
    ids.push(...r.results.map((c) => c.id));
    if (!r._links?.next) break;
    start += r.size;
  }
  eq(ids.length, new Set(ids).size, 'no child twice');
  setEq(ids, childrenOf(HOME.id), 'children');
  return `${ids.length} children`;
});

await check('v1 sendRequest(GET content/{id}/label) as LabelArraySchema', async () => {
  const r = await client.sendRequest({
    url: `/wiki/rest/api/content/${PAGES.labelled.id}/label`,
    method: 'GET',
    schema: LabelArraySchema,
  });
  setEq(r.results.map((l) => l.name), PAGES.labelled.labels, 'labels');
});

await check('v1 sendRequest(GET content/{id}/child/attachment) as ContentArraySchema', async () => {
  ok(ATT, 'needs the v2 attachment check');
  const r = await client.sendRequest({
    url: `/wiki/rest/api/content/${ATT.pageId}/child/attachment`,
    method: 'GET',
    schema: ContentArraySchema,
  });
  setEq(r.results.map((a) => a.id), ATT.atts.map((a) => a.id), 'attachment ids (v1 = v2)');
});

await check('v2 children.getChildPages({id}) following _links.next', async () => {
  const { out, calls } = await allV2((p) => v2.children.getChildPages(p), { id: HOME.id, limit: 5 });
  const ids = out.map((c) => c.id);
  eq(ids.length, new Set(ids).size, 'no child twice');
  setEq(ids, childrenOf(HOME.id), 'children');
  return `${ids.length} children in ${calls} calls`;
});

await check('v1 contentAttachments.downloadAttatchment -> REST .../child/attachment/{attId}/download', async () => {
  ok(ATT, 'needs the v2 attachment check');
  for (const a of ATT.atts) {
    // fetch follows the redirect; to another origin it drops the Authorization header.
    const bytes = await v1.contentAttachments.downloadAttatchment({ id: ATT.pageId, attachmentId: a.id });
    eq(bytes.byteLength, a.fileSize, `bytes of ${a.title} = fileSize`);
  }
  return `${ATT.atts.length} files`;
});

await check('v1 legacy downloadLink (/wiki/download/attachments/...) answers 401 to API tokens', async () => {
  ok(ATT, 'needs the v2 attachment check');
  const link = ATT.atts[0].downloadLink;
  let status = 200;
  try {
    await client.sendRequest({ url: `/wiki${link}`, method: 'GET' });
  } catch (e) {
    status = e.status ?? -1;
  }
  if (!LEGACY_401) {
    console.log(`  note: legacy download answered ${status} (401 not asserted)`);
    return 'skip';
  }
  eq(status, 401, 'legacy download status');
});

await check('v1 contentRestrictions.getRestrictionsForOperation({operationKey: read})', async () => {
  const want = PAGES.restricted;
  const r = await v1.contentRestrictions.getRestrictionsForOperation({ id: want.id, operationKey: 'read' });
  eq(r.operation, 'read', 'operation');
  setEq(r.restrictions.user.results.map((u) => u.accountId), want.read_restrictions.users, 'users');
  setEq(r.restrictions.group.results.map((g) => g.id), want.read_restrictions.groups, 'groups');
});

await check('v1 contentRestrictions.getRestrictionsByOperation({id})', async () => {
  const r = await v1.contentRestrictions.getRestrictionsByOperation({ id: PAGES.restricted.id });
  ok(r.read && r.update, 'read and update');
});

await check('v1 users.getCurrentUser() -> GET /wiki/rest/api/user/current', async () => {
  const u = await v1.users.getCurrentUser();
  eq(u.accountId, SA_ID, 'accountId');
});

await check('v1 sendRequest(GET space/{key}?expand=permissions) as SpaceSchema', async () => {
  const s = await client.sendRequest({
    url: `/wiki/rest/api/space/${BIG.key}`,
    method: 'GET',
    searchParams: { expand: 'permissions' },
    schema: SpaceSchema,
  });
  eq(s.key, BIG.key, 'key');
  ok(Array.isArray(s.permissions), 'permissions expanded');
});

async function searchAll(cql, limit, useStart) {
  const ids = [];
  const types = {};
  let calls = 0;
  let params = { cql, limit };
  for (;;) {
    if (calls >= 500) throw new Error('more than 500 pages of results');
    const r = await v1.search.searchByCQL(params);
    calls += 1;
    ids.push(...r.results.map((x) => x.content.id));
    for (const x of r.results) types[x.content.id] = x.content.type;
    const next = r._links?.next;
    if (!next) break;
    ok(next.startsWith('/rest/api/search'), `v1 next is relative to _links.base: ${next}`);
    const q = new URL(next, BASE).searchParams;
    params = useStart
      ? { cql, limit, start: Number(q.get('start')) }
      : { cql, limit, cursor: q.get('cursor'), next: true };
  }
  return { ids, types, calls };
}

await check('v1 search.searchByCQL paged past 250 with _links.next cursors', async () => {
  const { ids, calls } = await searchAll(`space = "${BIG.key}" and type = page`, 100, false);
  eq(ids.length, new Set(ids).size, 'no page twice');
  setEq(ids, BIG_IDS, 'all pages');
  return `${ids.length} in ${calls} calls`;
});

await check('v1 search.searchByCQL paged past 250 with start/limit', async () => {
  const { ids } = await searchAll(`space = "${BIG.key}" and type = page`, 120, true);
  eq(ids.length, new Set(ids).size, 'no page twice');
  setEq(ids, BIG_IDS, 'all pages');
});

await check('v1 search.searchByCQL(title ~ / text ~)', async () => {
  const word = PAGES.labelled.title.split(' ')[0];
  const t = await v1.search.searchByCQL({ cql: `space = "${BIG.key}" and title ~ "${word}"`, limit: 250 });
  ok(t.results.some((r) => r.content.id === PAGES.labelled.id), 'title ~ finds the page');
  for (const r of t.results) ok(r.title.toLowerCase().includes(word.toLowerCase()), `title ${r.title}`);
  const x = await v1.search.searchByCQL({ cql: `space = "${BIG.key}" and text ~ "${word}"`, limit: 250 });
  ok(x.results.some((r) => r.content.id === PAGES.labelled.id), 'text ~ finds the page');
});

/** Object keys sorted, for comparing id -> type maps. */
const byKey = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

await check('v1 search.searchByCQL(type in (page, blogpost)): current pages and blog posts', async () => {
  // a space with a blog post the service account sees (the biggest one if it has one)
  let sp;
  let want;
  for (const s of [BIG, ...spaces.filter((x) => x.key !== BIG.key)]) {
    want = index(await simContent(s.key, { type: 'page,blogpost' }));
    if ([...want.values()].some((x) => x.type === 'blogpost')) {
      sp = s;
      break;
    }
  }
  ok(sp, 'a space has a blog post the service account sees');
  const cql = `space = "${sp.key}" and type in (page, blogpost)`;
  const t = await v1.search.searchByCQL({ cql, limit: 1 });
  eq(t.totalSize, want.size, 'totalSize: current pages + blog posts');
  const { ids, types } = await searchAll(cql, 100, false);
  eq(ids.length, new Set(ids).size, 'no item twice');
  eq(byKey(types), byKey(Object.fromEntries([...want].map(([id, x]) => [id, x.type]))), 'items and their type');
  return `${sp.key}: ${ids.length}`;
});

await check('v1 search.searchByCQL(parent = / parent = and type = page / parent = folder / ancestor =)', async () => {
  const want = directChildren(HOME.id);
  ok(Object.values(want).some((t) => t !== 'page'), `the home page needs a child that is not a page: ${JSON.stringify(want)}`);
  const { ids: kids, types } = await searchAll(`parent = ${HOME.id}`, 100, false);
  eq(kids.length, new Set(kids).size, 'no item twice');
  eq(byKey(types), byKey(want), 'parent = home: direct children of every type');
  const { ids: kidPages } = await searchAll(`parent = ${HOME.id} and type = page`, 100, false);
  setEq(kidPages, childrenOf(HOME.id), 'parent = home and type = page');
  const folders = [...ALL_KINDS].filter(([id, x]) => x.type === 'folder' && Object.keys(directChildren(id)).length);
  ok(folders.length, 'the space needs a folder with content the service account sees');
  for (const [f] of folders) {
    const { types: inFolder } = await searchAll(`parent = ${f}`, 100, false);
    eq(byKey(inFolder), byKey(directChildren(f)), `parent = folder ${f}`);
  }
  const top = PAGES.deep.ancestors[PAGES.deep.ancestors.length - 1];
  const { ids: desc } = await searchAll(`ancestor = ${top}`, 100, false);
  ok(desc.includes(PAGES.deep.id), 'ancestor = parent finds the page');
});

await check('v1 search.searchByCQL(label = x) agrees with v2 getLabelPages', async () => {
  ok(LABEL, 'needs the v2 label check');
  const { ids } = await searchAll(`label = "${LABEL.name}" and type = page`, 200, false);
  setEq(ids, LABEL.ids, 'pages');
});

await check('v1 search.searchByCQL(lastmodified > now("-1d") / > "yyyy/MM/dd HH:mm") after an edit', async () => {
  const p = PAGES.deep;
  await sim(`/pages/${p.id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: `${p.title} (edited)` }),
  });
  const { ids } = await searchAll(`space = "${BIG.key}" and lastmodified > now("-1d")`, 100, false);
  ok(ids.includes(p.id), 'the page just edited is newer than now("-1d")');
  ok(ids.length < BIG_IDS.length, 'older pages are not');
  const now = new Date((await sim('/clock')).now);
  const since = new Date(now.getTime() - 3600e3);
  const pad = (n) => String(n).padStart(2, '0');
  const lit = `${since.getUTCFullYear()}/${pad(since.getUTCMonth() + 1)}/${pad(since.getUTCDate())} ${pad(since.getUTCHours())}:${pad(since.getUTCMinutes())}`;
  const { ids: recent } = await searchAll(`space = "${BIG.key}" and lastmodified > "${lit}"`, 100, false);
  ok(recent.includes(p.id), `newer than ${lit}`);
});

await check('v1 content.searchContentByCQL(expand=ancestors,version,metadata.labels,restrictions...) following next', async () => {
  const expand = 'ancestors,version,metadata.labels,restrictions.read.restrictions.user,restrictions.read.restrictions.group';
  const cql = `space = "${BIG.key}" and type = page`;
  const out = [];
  let cursor;
  let calls = 0;
  do {
    if (calls >= 500) throw new Error('more than 500 pages of results');
    const r = await v1.content.searchContentByCQL({ cql, expand, limit: 200, cursor });
    calls += 1;
    out.push(...r.results);
    const next = r._links?.next;
    cursor = next ? new URL(next, BASE).searchParams.get('cursor') : undefined;
  } while (cursor);
  const ids = out.map((c) => c.id);
  eq(ids.length, new Set(ids).size, 'no page twice');
  setEq(ids, BIG_IDS, 'all pages');
  const r = out.find((c) => c.id === PAGES.restricted.id);
  setEq(r.restrictions.read.restrictions.user.results.map((u) => u.accountId), PAGES.restricted.read_restrictions.users, 'restrictions');
  return `${ids.length} in ${calls} calls`;
});

await check('v1 search.searchByCQL(bad query) -> 400 ApiError', async () => {
  try {
    await v1.search.searchByCQL({ cql: 'space = ' });
  } catch (e) {
    eq(e.status, 400, 'status');
    return;
  }
  throw new Error('no error for a bad query');
});

console.log(`RESULT ${passed} ${failed}`);
process.exit(failed ? 1 : 0);
