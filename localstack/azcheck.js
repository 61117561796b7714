#!/usr/bin/env node
// Signed Azure Blob requests against a local Azurite (Shared Key, no packages
// needed beyond Node.js itself).
//
// Reads AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY and
// AZURITE_BLOB_STORAGE_URL (the service URL; the account is the first path
// segment, as with the emulator).
//
//   azcheck.js ready CONTAINER [--timeout S] [--pid-file F ...]
//       Wait until a signed Get Container Properties on CONTAINER succeeds,
//       creating the container if it does not exist. Silent on success.
//   azcheck.js conditional CONTAINER [--rounds N] [--writers N]
//       Check that conditional Put Blob requests are refused: If-None-Match: *
//       on an existing blob, and If-Match with a wrong ETag. Also reports
//       whether If-Match with the right ETag is accepted quoted and unquoted,
//       and races N concurrent writers per round on a fresh blob (create-only)
//       and on one ETag (compare-and-swap): more than one winner fails.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const API_VERSION = '2023-11-03'; // the version object_store 0.14 sends

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return v;
}

const ACCOUNT = env('AZURE_STORAGE_ACCOUNT_NAME');
const KEY = Buffer.from(env('AZURE_STORAGE_ACCOUNT_KEY'), 'base64');
const SERVICE = new URL(env('AZURITE_BLOB_STORAGE_URL'));
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
function sign(method, url, headers) {
  const h = {};
  for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = String(v);
  const len = h['content-length'] && h['content-length'] !== '0' ? h['content-length'] : '';
  const std = ['content-encoding', 'content-language', null, 'content-md5', 'content-type', 'date',
    'if-modified-since', 'if-match', 'if-none-match', 'if-unmodified-since', 'range']
    .map((n) => (n === null ? len : h[n] || ''));
  const xms = Object.keys(h).filter((k) => k.startsWith('x-ms-')).sort()
    .map((k) => `${k}:${h[k].trim()}\n`).join('');
  let resource = `/${ACCOUNT}${url.pathname}`;
  const names = [...new Set([...url.searchParams.keys()])].sort();
  for (const n of names) {
    resource += `\n${n.toLowerCase()}:${url.searchParams.getAll(n).sort().join(',')}`;
  }
  const toSign = `${method}\n${std.join('\n')}\n${xms}${resource}`;
  return crypto.createHmac('sha256', KEY).update(toSign, 'utf8').digest('base64');
}

function blobUrl(container, blob, query) {
  const u = new URL(SERVICE.href);
  const base = u.pathname.replace(/\/+$/, '');
  u.pathname = `${base}/${ACCOUNT}/${container}${blob ? '/' + blob.split('/').map(encodeURIComponent).join('/') : ''}`;
  for (const [k, v] of Object.entries(query || {})) u.searchParams.set(k, v);
  return u;
}

// One signed request; resolves to {status, headers, code} (never rejects on
// HTTP errors, only on connection errors).
function request(method, url, extra = {}, body = null, timeoutMs = 10000) {
  const headers = {
    'x-ms-date': new Date().toUTCString(),
    'x-ms-version': API_VERSION,
    'Content-Length': body ? Buffer.byteLength(body) : 0,
    ...extra,
  };
  headers.Authorization = `SharedKey ${ACCOUNT}:${sign(method, url, headers)}`;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({
        status: res.statusCode,
        headers: res.headers,
        code: res.headers['x-ms-error-code'] || '',
      }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const describe = (r) => `HTTP ${r.status}${r.code ? ' ' + r.code : ''}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pidAlive(path) {
  try {
    const pid = parseInt(fs.readFileSync(path, 'utf8').trim(), 10);
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch (e) {
    return false;
  }
}

function putBlob(container, blob, body, extra = {}) {
  return request('PUT', blobUrl(container, blob), { 'x-ms-blob-type': 'BlockBlob', ...extra }, body);
}

async function cmdReady(container, opts) {
  const deadline = Date.now() + opts.timeout * 1000;
  let last = 'no attempt';
  for (;;) {
    for (const p of opts.pidFiles) {
      if (!pidAlive(p)) {
        console.error(`server process from ${p} is not running (last answer: ${last})`);
        return 2;
      }
    }
    try {
      const r = await request('GET', blobUrl(container, null, { restype: 'container' }), {}, null, 5000);
      if (r.status === 200) return 0;
      last = `Get Container Properties: ${describe(r)}`;
      if (r.status === 404) {
        const c = await request('PUT', blobUrl(container, null, { restype: 'container' }), {}, null, 5000);
        if (c.status === 201 || c.code === 'ContainerAlreadyExists') continue;
        last = `Create Container: ${describe(c)}`;
      }
    } catch (e) {
      last = e.message;
    }
    if (Date.now() >= deadline) {
      console.error(`no successful signed request on container '${container}' within ${opts.timeout} s (last answer: ${last})`);
      return 1;
    }
    await sleep(250);
  }
}

async function cmdConditional(container, opts) {
  const key = 'strata-azcheck/conditional-probe';
  let ok = true;
  const refused = (r) => r.status === 409 || r.status === 412;

  const check = async (label, expectOk, extra) => {
    const r = await putBlob(container, key, label, extra);
    const accepted = r.status === 201;
    let mark = 'info';
    if (expectOk !== null) {
      const passed = expectOk ? accepted : refused(r);
      ok = ok && passed;
      mark = passed ? 'ok  ' : 'FAIL';
    }
    console.log(`${mark} ${label}: ${describe(r)}`);
    return r;
  };
  const etagOf = async () => (await request('HEAD', blobUrl(container, key))).headers.etag;

  await request('DELETE', blobUrl(container, key));
  await check('PUT If-None-Match:* on a new blob', true, { 'If-None-Match': '*' });
  await check('PUT If-None-Match:* on an existing blob (must be refused)', false, { 'If-None-Match': '*' });
  await check('PUT If-Match with a wrong quoted ETag (must be refused)', false, { 'If-Match': '"0x8D000000000000"' });
  await check('PUT If-Match with a wrong unquoted ETag (must be refused)', false, { 'If-Match': '0x8D000000000000' });
  await check('PUT If-Match with the right ETag, quoted', null, { 'If-Match': await etagOf() });
  await check('PUT If-Match with the right ETag, unquoted', null, { 'If-Match': (await etagOf()).replace(/"/g, '') });
  await request('DELETE', blobUrl(container, key));

  // Races: every round, `writers` requests at once; exactly one may win.
  const race = async (label, prepare, headersFor) => {
    let doubles = 0;
    let none = 0;
    let maxWinners = 0;
    for (let round = 0; round < opts.rounds; round++) {
      const blob = `strata-azcheck/race-${process.pid}-${round}`;
      const pre = await prepare(blob);
      const results = await Promise.all(Array.from({ length: opts.writers }, (_, i) =>
        putBlob(container, blob, `writer ${i}`, headersFor(pre))));
      const winners = results.filter((r) => r.status === 201).length;
      const strange = results.filter((r) => r.status !== 201 && !refused(r));
      if (strange.length) {
        console.log(`FAIL ${label}: unexpected answer ${describe(strange[0])}`);
        ok = false;
        return;
      }
      if (winners > 1) doubles++;
      if (winners === 0) none++;
      maxWinners = Math.max(maxWinners, winners);
      await request('DELETE', blobUrl(container, blob));
    }
    const passed = doubles === 0 && none === 0;
    ok = ok && passed;
    console.log(`${passed ? 'ok  ' : 'FAIL'} ${label}: ${opts.rounds} rounds of ${opts.writers} writers, ` +
      `${doubles} with more than one winner (most: ${maxWinners}), ${none} with none`);
  };
  await race('race If-None-Match:* on a new blob', async () => null, () => ({ 'If-None-Match': '*' }));
  await race('race If-Match on one ETag', async (blob) => {
    await putBlob(container, blob, 'base');
    return (await request('HEAD', blobUrl(container, blob))).headers.etag;
  }, (etag) => ({ 'If-Match': etag }));

  console.log('conditional writes: ' + (ok ? 'refused as required' : 'NOT refused as required'));
  return ok ? 0 : 1;
}

function parse(argv) {
  const [cmd, container, ...rest] = argv;
  const opts = { timeout: 60, pidFiles: [], rounds: 50, writers: 8 };
  for (let i = 0; i < rest.length; i++) {
    let [name, value] = rest[i].split('=', 2);
    if (value === undefined) value = rest[++i];
    if (name === '--timeout') opts.timeout = Number(value);
    else if (name === '--pid-file') opts.pidFiles.push(value);
    else if (name === '--rounds') opts.rounds = Number(value);
    else if (name === '--writers') opts.writers = Number(value);
    else { console.error(`unknown option ${name}`); process.exit(2); }
  }
  if (!['ready', 'conditional'].includes(cmd) || !container) {
    console.error('usage: azcheck.js ready|conditional CONTAINER [options]');
    process.exit(2);
  }
  return { cmd, container, opts };
}

const { cmd, container, opts } = parse(process.argv.slice(2));
(cmd === 'ready' ? cmdReady : cmdConditional)(container, opts)
  .then((rc) => { agent.destroy(); process.exit(rc); })
  .catch((e) => { console.error(`${cmd}: ${e.message}`); process.exit(1); });
