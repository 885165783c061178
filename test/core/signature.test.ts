import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import {
  generateSecret,
  signingKey,
  standardSignature,
  whispererSignature,
} from '../../src/core/signature.js';

// The test vector of the Standard Webhooks specification.
const SPEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

test('standard signature matches the Standard Webhooks spec test vector', () => {
  assert.equal(standardSignature(SPEC.secret, SPEC.id, SPEC.timestamp, SPEC.body), SPEC.signature);
});

test('standard signature equals what the standardwebhooks package signs', () => {
  const wh = new Webhook(SPEC.secret);
  assert.equal(
    wh.sign(SPEC.id, new Date(SPEC.timestamp * 1000), SPEC.body),
    standardSignature(SPEC.secret, SPEC.id, SPEC.timestamp, SPEC.body),
  );
});

test('a whsec_ signature verifies with standardwebhooks Webhook.verify', () => {
  const secret = generateSecret();
  assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  const now = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ event: { type: 'package.created' }, payload: { n: 1 } });
  const headers = {
    'webhook-id': 'evt_1',
    'webhook-timestamp': String(now),
    'webhook-signature': standardSignature(secret, 'evt_1', now, body),
  };
  assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
  // and fails for another body, id or secret
  assert.throws(() => new Webhook(secret).verify(body + ' ', headers));
  assert.throws(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'evt_2' }));
  assert.throws(() => new Webhook(generateSecret()).verify(body, headers));
});

test('a secret without whsec_ signs with its UTF-8 bytes', () => {
  const secret = 'plain-secret-ü';
  assert.deepEqual(signingKey(secret), Buffer.from(secret, 'utf8'));
  const now = Math.floor(Date.now() / 1000);
  const body = '{"a":1}';
  const signature = standardSignature(secret, 'id-1', now, body);
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`id-1.${now}.${body}`)
    .digest('base64');
  assert.equal(signature, `v1,${expected}`);
  const wh = new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });
  assert.deepEqual(
    wh.verify(body, {
      'webhook-id': 'id-1',
      'webhook-timestamp': String(now),
      'webhook-signature': signature,
    }),
    { a: 1 },
  );
});

test('the whsec_ key is the base64-decoded part after the prefix', () => {
  assert.deepEqual(
    signingKey(SPEC.secret),
    Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'),
  );
});

test('whisperer signature is sha256=<hex HMAC-SHA256(secret, body)>', () => {
  const body = '{"event": {"type": "package.created"}, "payload": {"x": 1}}';
  const hex = createHmac('sha256', 'sekret').update(body).digest('hex');
  assert.equal(whispererSignature('sekret', body), `sha256=${hex}`);
  assert.match(whispererSignature('sekret', body), /^sha256=[0-9a-f]{64}$/);
  // a whsec_ secret is used as its literal text, not decoded
  const wh = createHmac('sha256', SPEC.secret).update(body).digest('hex');
  assert.equal(whispererSignature(SPEC.secret, body), `sha256=${wh}`);
  assert.notEqual(whispererSignature('sekret', body), whispererSignature('sekret', `${body} `));
});
