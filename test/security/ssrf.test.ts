import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Sender, type SenderOptions } from '../../src/delivery/sender.js';
import { blockedClass, isPrivateHost } from '../../src/delivery/ssrf.js';

/**
 * The SSRF guard, proven on the wire: listeners on loopback addresses (all blocked by
 * default) count every TCP connection they accept, and must see none when the guard
 * refuses. Addresses of other classes are reached only through a lying resolver; the
 * guard must refuse them before any connection is attempted. 127.0.0.1 stands for a
 * public target where a test needs one: it is let through with ALLOWED_TARGET_CIDRS.
 */

/** A server on one loopback address that counts connections and closes each after one answer. */
class Listener {
  connections = 0;
  requests = 0;
  private constructor(
    private readonly server: Server,
    readonly host: string,
  ) {}

  static async start(host: string, reply?: (res: import('node:http').ServerResponse) => void) {
    const server = createServer((req, res) => {
      holder.listener!.requests++;
      req.resume();
      if (reply) return reply(res);
      res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' });
      res.end(`hello from ${host}`);
    });
    const holder: { listener?: Listener } = {};
    server.on('connection', () => holder.listener!.connections++);
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    holder.listener = new Listener(server, host);
    return holder.listener;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(host = this.host.includes(':') ? `[${this.host}]` : this.host): string {
    return `http://${host}:${this.port}/hook`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const REFUSED =
  /^Refused: the target address is (on a .+ network|unspecified); private targets are not allowed$/;

const senders: Sender[] = [];
function guarded(options: Partial<SenderOptions> = {}): Sender {
  const sender = new Sender({ responseCapBytes: 4096, allowPrivateTargets: false, ...options });
  senders.push(sender);
  return sender;
}
const post = (sender: Sender, url: string) =>
  sender.send({
    url,
    body: '{}',
    headers: { 'content-type': 'application/json' },
    timeoutMs: 2000,
  });

/** A resolver that answers from a table, and counts how often each name was asked. */
function fakeDns(table: Record<string, () => LookupAddress[]>) {
  const asked: string[] = [];
  const lookup = async (hostname: string) => {
    asked.push(hostname);
    const answer = table[hostname];
    if (!answer) throw Object.assign(new Error(`no such name ${hostname}`), { code: 'ENOTFOUND' });
    return answer();
  };
  return { lookup, asked };
}
const v4 = (address: string): LookupAddress => ({ address, family: 4 });
const v6 = (address: string): LookupAddress => ({ address, family: 6 });

let one: Listener; // 127.0.0.1: "public" where a test allows it
let two: Listener; // 127.0.0.2: loopback, must stay untouched
let three: Listener; // 127.0.0.3
let six: Listener | undefined; // ::1
before(async () => {
  one = await Listener.start('127.0.0.1');
  two = await Listener.start('127.0.0.2');
  three = await Listener.start('127.0.0.3');
  six = await Listener.start('::1').catch(() => undefined);
});
after(async () => {
  for (const s of senders) await s.close();
  for (const l of [one, two, three, six]) await l?.close();
});

function assertUntouched(...listeners: (Listener | undefined)[]) {
  for (const l of listeners) {
    if (!l) continue;
    assert.equal(l.connections, 0, `${l.host} accepted a connection`);
    assert.equal(l.requests, 0, `${l.host} got a request`);
  }
}

describe('address classes', () => {
  test('every blocked class is classified, wrappers by the address they carry', () => {
    const cases: [string, string | undefined][] = [
      ['127.0.0.1', 'loopback'],
      ['10.1.2.3', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.1.1', 'private'],
      ['169.254.169.254', 'link-local'],
      ['100.64.0.1', 'shared (CGNAT)'],
      ['198.18.0.1', 'benchmarking'],
      ['198.19.255.254', 'benchmarking'],
      ['224.0.0.251', 'multicast'],
      ['240.0.0.1', 'reserved'],
      ['255.255.255.255', 'reserved'],
      ['0.0.0.0', 'unspecified'],
      ['192.0.2.10', 'documentation'],
      ['::', 'unspecified'],
      ['::1', 'loopback'],
      ['fe80::1', 'link-local'],
      ['fe80::1%eth0', 'link-local'],
      ['fd00::2', 'private'],
      ['fc12::1', 'private'],
      ['ff02::1', 'multicast'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:7f00:1', 'loopback'],
      ['::ffff:a9fe:a9fe', 'link-local'],
      ['64:ff9b::a9fe:a9fe', 'link-local'],
      ['64:ff9b::10.0.0.1', 'private'],
      ['2002:7f00:1::', 'loopback'],
      ['2002:c0a8:101::1', 'private'],
      ['::7f00:1', 'reserved'],
      ['2001:db8::1', 'documentation'],
      ['2001::1', 'reserved'],
      ['fec0::1', 'reserved'],
      // public ones, and public addresses inside wrappers
      ['8.8.8.8', undefined],
      ['100.63.255.255', undefined],
      ['100.128.0.0', undefined],
      ['172.32.0.1', undefined],
      ['198.20.0.1', undefined],
      ['2606:4700:4700::1111', undefined],
      ['::ffff:8.8.8.8', undefined],
      ['64:ff9b::808:808', undefined],
      ['2002:808:808::', undefined],
    ];
    for (const [address, kind] of cases) assert.equal(blockedClass(address), kind, address);
  });

  test('odd IPv4 spellings are normalised by the URL parser to a loopback address', () => {
    for (const host of [
      '2130706433',
      '0177.0.0.1',
      '0x7f.0.0.1',
      '0x7f000001',
      '127.1',
      '017700000001',
    ]) {
      const { hostname } = new URL(`http://${host}/`);
      assert.equal(hostname, '127.0.0.1', host);
      assert.ok(isPrivateHost(hostname), host);
    }
    assert.ok(isPrivateHost('localhost.'));
    assert.ok(isPrivateHost('[::ffff:7f00:1]'));
  });
});

describe('literal addresses are refused before connecting', () => {
  test('loopback in every spelling: zero connections, one readable reason', async () => {
    const sender = guarded();
    const port = two.port;
    const urls = [
      `http://127.0.0.2:${port}/`,
      `http://2130706434:${port}/`,
      `http://0177.0.0.2:${port}/`,
      `http://0x7f.0.0.2:${port}/`,
      `http://0x7f000002:${port}/`,
      `http://[::ffff:127.0.0.2]:${port}/`,
      `http://[::ffff:7f00:2]:${port}/`,
      `https://127.0.0.2:${port}/`,
      ...(six ? [`http://[::1]:${six.port}/`, `http://[::ffff:127.0.0.1]:${one.port}/`] : []),
      `http://0.0.0.0:${one.port}/`,
      `http://127.0.0.1:${one.port}/`,
    ];
    for (const url of urls) {
      const result = await post(sender, url);
      assert.equal(result.status, null, url);
      assert.match(result.content, REFUSED, url);
    }
    assertUntouched(one, two, six);
  });

  test('other classes are refused without an attempt to connect', async () => {
    const sender = guarded();
    for (const host of [
      '10.0.0.1',
      '172.16.0.1',
      '192.168.0.1',
      '169.254.169.254',
      '100.64.0.1',
      '198.18.0.1',
      '224.0.0.1',
      '240.0.0.1',
      '[fe80::1]',
      '[fd00::1]',
      '[64:ff9b::a9fe:a9fe]',
      '[2002:a9fe:a9fe::]',
    ]) {
      const result = await post(sender, `http://${host}/latest/meta-data/`);
      assert.equal(result.status, null, host);
      assert.match(result.content, REFUSED, host);
    }
  });

  test('no port-scan oracle: an open and a closed port read the same', async () => {
    const sender = guarded();
    const closed = await Listener.start('127.0.0.2');
    const closedPort = closed.port;
    await closed.close();
    const open = await post(sender, `http://127.0.0.2:${two.port}/`);
    const shut = await post(sender, `http://127.0.0.2:${closedPort}/`);
    assert.equal(open.content, shut.content);
    assert.equal(open.status, shut.status);
    assertUntouched(two);
  });
});

describe('names are checked on the address they resolve to, at connect time', () => {
  test('a name resolving to cloud metadata, loopback or private v6 is refused; nothing connects', async () => {
    const dns = fakeDns({
      'metadata.example': () => [v4('169.254.169.254')],
      'loop.example': () => [v4('127.0.0.2')],
      'six.example': () => [v6('::1')],
      'mapped.example': () => [v6('::ffff:127.0.0.2')],
      'ula.example': () => [v6('fd00::2')],
      'localhost.example': () => [v4('127.0.0.1')],
    });
    const sender = guarded({ lookup: dns.lookup });
    for (const [name, port] of [
      ['metadata.example', 80],
      ['loop.example', two.port],
      ['six.example', six?.port ?? 9],
      ['mapped.example', two.port],
      ['ula.example', 80],
      ['localhost.example', one.port],
    ] as const) {
      const result = await post(sender, `http://${name}:${port}/`);
      assert.equal(result.status, null, name);
      assert.match(result.content, REFUSED, name);
    }
    assert.ok(
      dns.asked.includes('metadata.example'),
      'the resolver was asked: the check is at connect time',
    );
    assertUntouched(one, two, six);
  });

  test('a name with mixed allowed and blocked answers is refused as a whole', async () => {
    const dns = fakeDns({ 'mixed.example': () => [v4('127.0.0.1'), v4('169.254.169.254')] });
    const sender = guarded({ lookup: dns.lookup, allowedTargetCidrs: ['127.0.0.1/32'] });
    for (let i = 0; i < 3; i++) {
      const result = await post(sender, `http://mixed.example:${one.port}/`);
      assert.match(result.content, REFUSED);
    }
    assertUntouched(one);
  });

  test('a resolver alternating allowed and blocked answers never reaches the blocked one', async () => {
    let calls = 0;
    const dns = fakeDns({
      'flip.example': () => [v4(calls++ % 2 === 0 ? '127.0.0.1' : '127.0.0.2')],
    });
    const sender = guarded({ lookup: dns.lookup, allowedTargetCidrs: ['127.0.0.1/32'] });
    // both listeners on one port number is impossible; point the name at each one's port
    // through a second name that flips the same way, so each answer has a live target.
    const beforeOne = one.requests;
    const outcomes: (number | null)[] = [];
    for (let i = 0; i < 10; i++) {
      const port = i % 2 === 0 ? one.port : two.port;
      outcomes.push((await post(sender, `http://flip.example:${port}/`)).status);
    }
    assert.deepEqual(outcomes, [200, null, 200, null, 200, null, 200, null, 200, null]);
    assert.equal(one.requests - beforeOne, 5);
    assert.ok(dns.asked.length >= 10, 'every new connection resolved the name again');
    assertUntouched(two);
  });

  test('ALLOWED_TARGET_CIDRS permits the listed range only', async () => {
    const dns = fakeDns({
      'two.example': () => [v4('127.0.0.2')],
      'three.example': () => [v4('127.0.0.3')],
    });
    const sender = guarded({ lookup: dns.lookup, allowedTargetCidrs: ['127.0.0.2/32'] });
    const allowed = await post(sender, `http://two.example:${two.port}/`);
    assert.equal(allowed.status, 200);
    assert.equal(allowed.content, 'hello from 127.0.0.2');
    const literal = await post(sender, `http://127.0.0.2:${two.port}/`);
    assert.equal(literal.status, 200);
    const refused = await post(sender, `http://three.example:${three.port}/`);
    assert.match(refused.content, REFUSED);
    assertUntouched(three);
    two.connections = 0;
    two.requests = 0;
  });

  test('with private targets allowed, the guard is off', async () => {
    const sender = new Sender({ responseCapBytes: 4096, allowPrivateTargets: true });
    senders.push(sender);
    const before = three.requests;
    const result = await post(sender, three.url());
    assert.equal(result.status, 200);
    assert.equal(three.requests, before + 1);
    three.connections = 0;
    three.requests = 0;
  });
});

describe('redirects', () => {
  test('a redirect to cloud metadata or loopback is the outcome, never followed', async () => {
    let location = '';
    const redirector = await Listener.start('127.0.0.1', (res) => {
      res.writeHead(302, { location, connection: 'close' });
      res.end();
    });
    try {
      const sender = guarded({ allowedTargetCidrs: ['127.0.0.1/32'] });
      for (const target of ['http://169.254.169.254/latest/meta-data/', three.url(), two.url()]) {
        location = target;
        const result = await post(sender, redirector.url());
        assert.equal(result.status, 302, target);
      }
      assert.equal(redirector.requests, 3);
      assertUntouched(two, three);
    } finally {
      await redirector.close();
    }
  });
});

describe('source URLs go through the guard too', () => {
  test('a GET to a blocked source is refused before connecting', async () => {
    const sender = guarded();
    await assert.rejects(sender.fetch(two.url(), {}, 2000), (error: Error) => {
      assert.match(error.message, REFUSED);
      return true;
    });
    const dns = fakeDns({ 'src.example': () => [v4('127.0.0.3')] });
    const named = guarded({ lookup: dns.lookup });
    await assert.rejects(named.fetch(`http://src.example:${three.port}/`, {}, 2000), /Refused/);
    assertUntouched(two, three);
  });
});
