// Benchmark client for `scripts/bench wss`: one Node `ws` client used against every server,
// so the client is the same for both sides and is not the bottleneck.
//
//   node wss_client.js --url wss://localhost:8443/ws --ca rootCA.pem --mode rtt|pipe|conn
//                      [--seconds 3] [--size 1024] [--window 64] [--concurrency 4]
//
// Prints one JSON line: {"mode":..., "count":..., "seconds":..., "rate":...}.
//   rtt:  one connection, send one message, wait for its echo, repeat (round trips/s)
//   pipe: one connection, keep --window messages in flight (echoed messages/s)
//   conn: --concurrency loops each opening a new connection (TCP + TLS + upgrade) and closing
//         it (completed connections/s); no TLS session reuse, as ws does not cache sessions.
//   hold: open --count connections (--concurrency at a time), print {"held": n} once all are
//         open, keep them idle until stdin closes (for the server's memory per idle connection)
'use strict';
const fs = require('fs');
const WebSocket = require('ws');

function parseArgs(argv) {
  const o = { seconds: 3, size: 1024, window: 64, concurrency: 4, mode: 'rtt' };
  for (let i = 2; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  o.seconds = Number(o.seconds); o.size = Number(o.size);
  o.window = Number(o.window); o.concurrency = Number(o.concurrency);
  return o;
}

const opts = parseArgs(process.argv);
const wsOpts = { perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 };
if (opts.ca) wsOpts.ca = fs.readFileSync(opts.ca);
const payload = Buffer.alloc(opts.size, 0x61);

function done(count, started) {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(JSON.stringify({ mode: opts.mode, count, seconds, rate: count / seconds }) + '\n');
  process.exit(0);
}

function fail(err) {
  process.stderr.write(`wss_client: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
}

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(opts.url, wsOpts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function rttOrPipe() {
  const ws = await open();
  ws.on('error', fail);
  // warm up
  await new Promise((resolve) => { ws.once('message', resolve); ws.send(payload); });
  const window = opts.mode === 'pipe' ? opts.window : 1;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(opts.seconds * 1e9));
  const started = process.hrtime.bigint();
  let count = 0, inflight = 0, stopping = false;
  ws.on('message', (data) => {
    if (data.length !== opts.size) fail(`echo of ${data.length} bytes, sent ${opts.size}`);
    count++; inflight--;
    if (!stopping && process.hrtime.bigint() >= deadline) stopping = true;
    if (!stopping) { ws.send(payload); inflight++; }
    else if (inflight === 0) { const c = count; ws.terminate(); done(c, started); }
  });
  for (let i = 0; i < window; i++) { ws.send(payload); inflight++; }
}

async function conn() {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(opts.seconds * 1e9));
  const started = process.hrtime.bigint();
  let count = 0;
  async function loop() {
    while (process.hrtime.bigint() < deadline) {
      const ws = await open();
      await new Promise((resolve) => { ws.once('close', resolve); ws.close(1000); });
      count++;
    }
  }
  const loops = [];
  for (let i = 0; i < opts.concurrency; i++) loops.push(loop());
  await Promise.all(loops);
  done(count, started);
}

async function hold() {
  const count = Number(opts.count || 1000);
  const held = [];
  while (held.length < count) {
    const batch = [];
    for (let i = 0; i < opts.concurrency && held.length + batch.length < count; i++) batch.push(open());
    for (const ws of await Promise.all(batch)) { ws.on('error', () => {}); held.push(ws); }
  }
  process.stdout.write(JSON.stringify({ mode: 'hold', held: held.length }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => { for (const ws of held) ws.terminate(); process.exit(0); });
}

if (opts.mode === 'hold') hold().catch(fail);
else {
  setTimeout(() => fail('timed out'), (opts.seconds + 20) * 1000).unref();
  (opts.mode === 'conn' ? conn() : rttOrPipe()).catch(fail);
}
