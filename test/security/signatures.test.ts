import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { generateSecret, standardSignature } from '../../src/core/signature.js';
import { buildRequest } from '../../src/delivery/request.js';
import type { ClaimedEvent } from '../../src/queue/claim.js';
import { createContext, type Context } from '../helpers/context.js';

/**
 * Our signatures, verified by the public `standardwebhooks` package: what a receiver
 * would run. The package checks the timestamp against the real time, so every clock
 * here starts at Date.now().
 */

function claimed(
  body: string,
  secret: string,
  extra: Partial<ClaimedEvent['webhook']> = {},
): ClaimedEvent {
  return {
    id: 1,
    uuid: randomUUID(),
    eventType: 'package.created',
    body,
    retryCount: 0,
    maxAttempts: 3,
    webhook: {
      id: 1,
      targetUrl: 'http://127.0.0.1:9/hook',
      secretKey: secret,
      isActive: true,
      callback: null,
      additionalHeaders: {},
      config: {},
      retryCountdownConfig: { choice: 'fixed', kwargs: { seconds: 1 } },
      ...extra,
    },
  };
}

/**
 * A verifier for a secret as the README documents it: `whsec_` + base64 is the decoded
 * key (the package's own reading), anything else is the secret's UTF-8 bytes.
 */
const verifierFor = (secret: string) =>
  /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret)
    ? new Webhook(secret)
    : new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** JSON text as a publisher could send it: unicode, escapes, numbers no double can hold. */
function randomJson(rand: () => number, depth = 0): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const str = () => {
    let out = '';
    const n = Math.floor(rand() * 12);
    for (let i = 0; i < n; i++) {
      out += pick([
        () => String.fromCodePoint(0x20 + Math.floor(rand() * 0x5e)),
        () => String.fromCodePoint(0xa0 + Math.floor(rand() * 0xd000)),
        () => String.fromCodePoint(0x1f300 + Math.floor(rand() * 0x300)), // astral: surrogate pairs
        () =>
          pick([
            '\\"',
            '\\\\',
            '\\n',
            '\\t',
            '\\/',
            '\\u0000',
            '\\u00e9',
            '\\ud83d\\ude00',
            '\\u2028',
          ]),
        () => pick(['"', '\\']).replace(/(["\\])/, '\\$1'),
      ])();
    }
    return `"${out}"`;
  };
  const num = () =>
    pick([
      () => String(Math.floor(rand() * 1000)),
      () =>
        `${rand() < 0.5 ? '-' : ''}${Math.floor(rand() * 9) + 1}${'0123456789'.repeat(3).slice(0, Math.floor(rand() * 30))}`,
      () => `${(rand() * 1e6).toFixed(6)}e${Math.floor(rand() * 600) - 300}`,
      () => pick(['1.0', '-0', '0.1000000000000000055511151231257827', '9007199254740993']),
    ])();
  const kinds = depth > 3 ? [str, num] : [str, num, () => 'true', () => 'null', obj, arr];
  function obj(): string {
    const n = Math.floor(rand() * 5);
    const parts = Array.from(
      { length: n },
      () => `${str()}${pick(['', ' '])}:${randomJson(rand, depth + 1)}`,
    );
    return `{${parts.join(pick([',', ', ']))}}`;
  }
  function arr(): string {
    const n = Math.floor(rand() * 4);
    return `[${Array.from({ length: n }, () => randomJson(rand, depth + 1)).join(',')}]`;
  }
  return depth === 0
    ? `{"event": {"type": "package.created"}, "payload": ${obj()}}`
    : pick(kinds)();
}

describe('signatures, unit level', () => {
  test('the Standard Webhooks test vector', () => {
    assert.equal(
      standardSignature(
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        'msg_p5jXN8AQM9LWM0D4loKWxJek',
        1614265330,
        '{"test": 2432232314}',
      ),
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  test('10,000 random payloads signed by us verify with the standardwebhooks package', () => {
    const rand = prng(20260115);
    const secrets = [
      generateSecret(),
      generateSecret(),
      'a plain secret ✓ with unicode',
      'whsec_not base64!',
    ];
    let mismatches = 0;
    let parsedOk = 0;
    for (let i = 0; i < 10_000; i++) {
      const body = randomJson(rand);
      const secret = secrets[i % secrets.length]!;
      const req = buildRequest(claimed(body, secret), Date.now(), 1000);
      assert.equal(req.body, body);
      try {
        verifierFor(secret).verify(body, req.headers, { jsonParse: false } as never);
        parsedOk++;
      } catch {
        mismatches++;
      }
    }
    assert.equal(mismatches, 0);
    assert.equal(parsedOk, 10_000);
  });

  test('a tampered body, id or timestamp is rejected', () => {
    const secret = generateSecret();
    const body =
      '{"event": {"type": "package.created"}, "payload": {"amount": 12345678901234567890}}';
    const req = buildRequest(claimed(body, secret), Date.now(), 1000);
    const wh = verifierFor(secret);
    wh.verify(body, req.headers);
    const rejects = (payload: string, headers: Record<string, string>) =>
      assert.throws(
        () => wh.verify(payload, headers),
        (e: Error) => {
          assert.ok(e instanceof WebhookVerificationError);
          assert.equal(e.message, 'No matching signature found');
          return true;
        },
      );
    rejects(body.replace('12345678901234567890', '12345678901234567891'), req.headers);
    rejects(`${body} `, req.headers);
    rejects(body, { ...req.headers, 'webhook-id': randomUUID() });
    const ts = Number(req.headers['webhook-timestamp']);
    rejects(body, { ...req.headers, 'webhook-timestamp': String(ts - 1) });
    assert.throws(
      () => verifierFor(generateSecret()).verify(body, req.headers),
      WebhookVerificationError,
    );
  });

  test('config.signature picks the headers; the legacy one is hex HMAC of the body', () => {
    const secret = 'legacy-secret';
    const body = '{"x": 1}';
    const expected = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    const event = claimed(body, secret);
    const now = Date.now();
    const of = (signature?: string) =>
      buildRequest(
        { ...event, webhook: { ...event.webhook, config: signature ? { signature } : {} } },
        now,
        1000,
      ).headers;
    const both = of();
    assert.equal(both['x-whisperer-signature'], expected);
    assert.match(both['webhook-signature']!, /^v1,[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(of('both'), {
      ...both,
      'webhook-timestamp': of('both')['webhook-timestamp']!,
    });
    const standard = of('standard');
    assert.equal(standard['x-whisperer-signature'], undefined);
    assert.ok(standard['webhook-signature']);
    const whisperer = of('whisperer');
    assert.equal(whisperer['webhook-signature'], undefined);
    assert.equal(whisperer['x-whisperer-signature'], expected);
  });

  test('during a grace both secrets sign, the current one first; after it, only the new one', () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const body = '{"a": "b"}';
    const now = Date.now();
    const event = claimed(body, newSecret, {
      previousSecretKey: oldSecret,
      previousSecretExpiresAt: new Date(now + 60_000).toISOString(),
    });
    const during = buildRequest(event, now, 1000).headers;
    const sigs = during['webhook-signature']!.split(' ');
    assert.equal(sigs.length, 2);
    const ts = Number(during['webhook-timestamp']);
    assert.equal(sigs[0], standardSignature(newSecret, event.uuid, ts, body));
    assert.equal(sigs[1], standardSignature(oldSecret, event.uuid, ts, body));
    const afterGrace = buildRequest(event, now + 60_000, 1000).headers;
    assert.equal(afterGrace['webhook-signature']!.split(' ').length, 1);
  });
});

describe('signatures, end to end', () => {
  let ctx: Context;
  before(async () => {
    ctx = await createContext();
    ctx.clock.set(Date.now());
  });
  after(() => ctx.close());

  test('delivered events verify with the package; id stays, timestamp follows each attempt', async () => {
    const hook = await ctx.createWebhook({
      retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 10 } },
    });
    const wh = verifierFor(hook.secret_key as string);
    const rand = prng(7);
    const datas: Record<string, unknown>[] = [];
    for (let i = 0; i < 25; i++) {
      const data = JSON.parse(
        `{"n": ${i}, "text": ${JSON.stringify(randomJson(rand))}, "big": 123456789012345678901234567890}`,
      );
      datas.push(data);
      assert.equal(await ctx.publish(hook.id as number, data), 202);
    }
    const start = ctx.receiver.requests.length;
    ctx.receiver.respond(() => ({ status: 500 }));
    assert.equal(await ctx.worker.runOnce(), 25);
    ctx.clock.advance(10_000);
    ctx.receiver.respond(() => ({ status: 200 }));
    assert.equal(await ctx.worker.runOnce(), 25);
    const got = ctx.receiver.requests.slice(start);
    assert.equal(got.length, 50);
    for (const r of got) wh.verify(r.body, r.headers as Record<string, string>);
    const first = got.slice(0, 25);
    const second = got.slice(25);
    for (const r of second) {
      const earlier = first.find((f) => f.headers['webhook-id'] === r.headers['webhook-id'])!;
      assert.ok(earlier, 'the retry carries the same webhook-id');
      assert.equal(
        Number(r.headers['webhook-timestamp']) - Number(earlier.headers['webhook-timestamp']),
        10,
      );
      assert.notEqual(r.headers['webhook-signature'], earlier.headers['webhook-signature']);
    }
  });

  test('rotation: old and new secrets verify during the grace; the old one is rejected after', async () => {
    const hook = await ctx.createWebhook();
    const oldSecret = hook.secret_key as string;
    const rotated = await ctx.api({
      method: 'POST',
      url: `/api/v1/oms/webhooks/${hook.id as number}/rotate-secret/`,
      payload: { grace_hours: 0.02 }, // 72 seconds, so the package's 5-minute window still holds
    });
    assert.equal(rotated.statusCode, 200, rotated.body);
    const newSecret = rotated.json().secret_key as string;
    assert.notEqual(newSecret, oldSecret);
    assert.match(newSecret, /^whsec_/);
    const { rows } = await ctx.db.query<{ secret_key: string; previous_secret_key: string }>(
      'select secret_key, previous_secret_key from webhooks where id = $1',
      [hook.id],
    );
    assert.deepEqual(rows[0], { secret_key: newSecret, previous_secret_key: oldSecret });

    const start = ctx.receiver.requests.length;
    assert.equal(await ctx.publish(hook.id as number), 202);
    await ctx.worker.runOnce();
    const during = ctx.receiver.requests[start]!;
    verifierFor(newSecret).verify(during.body, during.headers as Record<string, string>);
    verifierFor(oldSecret).verify(during.body, during.headers as Record<string, string>);
    assert.equal(String(during.headers['webhook-signature']).split(' ').length, 2);

    ctx.clock.advance(120_000);
    assert.equal(await ctx.publish(hook.id as number), 202);
    await ctx.worker.runOnce();
    const later = ctx.receiver.requests[start + 1]!;
    verifierFor(newSecret).verify(later.body, later.headers as Record<string, string>);
    assert.throws(
      () => verifierFor(oldSecret).verify(later.body, later.headers as Record<string, string>),
      /No matching signature found/,
    );
  });

  test('rotation defaults to a 24 h grace, takes a given secret, and is the owner’s only', async () => {
    const hook = await ctx.createWebhook({}, 'alice');
    const url = `/api/v1/oms/webhooks/${hook.id as number}/rotate-secret/`;
    const bob = await ctx.api({ method: 'POST', url, as: 'bob', payload: {} });
    assert.equal(bob.statusCode, 404);
    const res = await ctx.api({
      method: 'POST',
      url,
      as: 'alice',
      payload: { secret_key: 'my-own-secret' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().secret_key, 'my-own-secret');
    const expires = Date.parse(res.json().previous_secret_expires_at as string);
    assert.equal(expires - Math.floor(ctx.clock.now()), 24 * 3600_000);
    const bad = await ctx.api({ method: 'POST', url, as: 'alice', payload: { grace_hours: -1 } });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(Object.keys(bad.json()), ['grace_hours']);
  });
});
