"""The Segment globals: libraries, crypto, Buffer, cache, timers, URL, encoders."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import pytest

from tests.runtime.conftest import Runtime


def logs(rt: Runtime, body: str) -> list[str]:
    r = rt.run(body)
    assert r["outcome"] == "OK", r.get("error")
    result: list[str] = r["logs"]
    return result


@pytest.mark.parametrize(
    "name",
    [
        "fetch",
        "Request",
        "Response",
        "Headers",
        "FormData",
        "_",
        "btoa",
        "atob",
        "crypto",
        "Buffer",
        "URL",
        "URLSearchParams",
        "TextEncoder",
        "TextDecoder",
        "setTimeout",
        "clearTimeout",
        "setInterval",
        "clearInterval",
        "console",
        "cache",
        "moment",
        "xml",
        "xml2js",
        "jsonwebtoken",
        "OAuth",
        "uuidv5",
        "libphonenumberjslib",
        "zlib",
        "fetchretrylib",
        "Segment",
        "EventNotSupported",
        "InvalidEventPayload",
        "ValidationError",
        "RetryError",
        "DropEvent",
    ],
)
def test_global_is_defined(rt: Runtime, name: str) -> None:
    assert logs(rt, f"console.log(typeof {name})") in (["function"], ["object"])


def test_crypto_helpers_match_python(rt: Runtime) -> None:
    got = logs(
        rt,
        """
        console.log(crypto.createHmac('sha256', 'key').update('da').update('ta').digest('hex'))
        console.log(crypto.createHash('sha1').update(Buffer.from('abc')).digest('base64'))
        console.log(crypto.createHash('sha256').update('x').digest().length, crypto.randomUUID().length, crypto.randomBytes(8).length)
        console.log(crypto.timingSafeEqual(Buffer.from('a'), Buffer.from('a')), crypto.getRandomValues(new Uint8Array(4)).length)
        const sub = await crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc'));
        console.log(Buffer.from(sub).toString('hex'))
        """,
    )
    assert got == [
        hmac.new(b"key", b"data", hashlib.sha256).hexdigest(),
        base64.b64encode(hashlib.sha1(b"abc").digest()).decode(),
        "32 36 8",
        "true 4",
        hashlib.sha256(b"abc").hexdigest(),
    ]


def test_sign_verify_and_ciphers(rt: Runtime) -> None:
    got = logs(
        rt,
        """
        const { privateKey, publicKey } = await crypto.subtle.generateKey({name: 'ECDSA', namedCurve: 'P-256'}, true, ['sign', 'verify']);
        const data = new TextEncoder().encode('msg');
        const sig = await crypto.subtle.sign({name: 'ECDSA', hash: 'SHA-256'}, privateKey, data);
        console.log(await crypto.subtle.verify({name: 'ECDSA', hash: 'SHA-256'}, publicKey, sig, data), privateKey.type);
        const jwk = await crypto.subtle.exportKey('jwk', privateKey);
        const pem = crypto.createPrivateKey({key: jwk, format: 'jwk'}).export({type: 'pkcs8', format: 'pem'});
        const s = crypto.createSign('SHA256').update('hello').sign(pem, 'base64');
        console.log(crypto.createVerify('SHA256').update('hello').verify(crypto.createPublicKey(pem), s, 'base64'));
        const key = crypto.scryptSync('pw', 'salt', 32); const iv = Buffer.alloc(16, 1);
        const c = crypto.createCipheriv('aes-256-cbc', key, iv);
        const enc = c.update('secret text', 'utf8', 'hex') + c.final('hex');
        const d = crypto.createDecipheriv('aes-256-cbc', key, iv);
        console.log(d.update(enc, 'hex', 'utf8') + d.final('utf8'));
        """,
    )
    assert got == ["true private", "true", "secret text"]


def test_jsonwebtoken(rt: Runtime) -> None:
    got = logs(
        rt,
        """
        const t = jsonwebtoken.sign({sub: 'u1'}, 'shh', {algorithm: 'HS256', noTimestamp: true});
        console.log(t)
        console.log(jsonwebtoken.verify(t, 'shh').sub, jsonwebtoken.decode(t).sub)
        try { jsonwebtoken.verify(t, 'other') } catch (e) { console.log(e instanceof jsonwebtoken.JsonWebTokenError, e.name, e.message) }
        const old = jsonwebtoken.sign({sub: 'u', exp: 1000}, 'shh');
        try { jsonwebtoken.verify(old, 'shh') } catch (e) { console.log(e.name, e.expiredAt instanceof Date, e.expiredAt.getTime()) }
        jsonwebtoken.sign({a: 1}, 'k', (err, tok) => console.log(err, tok.split('.').length))
        await new Promise(r => setTimeout(r, 0))
        """,
    )
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"sub":"u1"}').rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(
        hmac.new(b"shh", f"{header}.{payload}".encode(), hashlib.sha256).digest()
    )
    assert got == [
        f"{header}.{payload}.{sig.rstrip(b'=').decode()}",
        "u1 u1",
        "true JsonWebTokenError invalid signature",
        "TokenExpiredError true 1000000",
        "null 3",
    ]


def test_buffer_and_encodings(rt: Runtime) -> None:
    got = logs(
        rt,
        """
        const b = Buffer.from('héllo');
        console.log(b.length, b.toString('hex'), b.toString('base64'), b.toString('base64url'), Buffer.isBuffer(b))
        console.log(Buffer.from('aMOpbGxv', 'base64').toString(), Buffer.concat([Buffer.from('a'), Buffer.from('b')]).toString())
        console.log(new TextDecoder().decode(new TextEncoder().encode('ü€')), btoa('hi'), atob('aGk='))
        console.log(b, JSON.stringify(Buffer.from([1, 2])))
        try { atob('*') } catch (e) { console.log(e.name) }
        """,
    )
    assert got == [
        "6 68c3a96c6c6f aMOpbGxv aMOpbGxv true",
        "héllo ab",
        "ü€ aGk= hi",
        '<Buffer 68 c3 a9 6c 6c 6f> {"type":"Buffer","data":[1,2]}',
        "InvalidCharacterError",
    ]


def test_url_and_search_params(rt: Runtime) -> None:
    got = logs(
        rt,
        """
        const u = new URL('/a b?x=1&y=%20z#h', 'https://user:pw@Example.com:8443');
        console.log(u.href, u.host, u.pathname, u.searchParams.get('y'), u.hash, u.origin)
        u.searchParams.append('q', 'a&b'); u.pathname = '/new'; console.log(u.toString(), JSON.stringify({u}))
        const p = new URLSearchParams({a: '1', b: 'x y'}); p.sort(); console.log(p.toString(), [...p.keys()].join())
        try { new URL('nope') } catch (e) { console.log(e.name, e.code) }
        """,
    )
    assert got == [
        "https://user:pw@example.com:8443/a%20b?x=1&y=%20z#h example.com:8443 /a%20b  z #h https://example.com:8443",
        'https://user:pw@example.com:8443/new?x=1&y=+z&q=a%26b#h {"u":"https://user:pw@example.com:8443/new?x=1&y=+z&q=a%26b#h"}',
        "a=1&b=x+y a,b",
        "TypeError ERR_INVALID_URL",
    ]


def test_headers_names_and_values(rt: Runtime) -> None:
    # Names are checked and lowered once per worker and then remembered: a name seen before
    # (in any case) still finds its entry, an invalid one is refused every time.
    got = logs(
        rt,
        """
        const h = new Headers({'Content-Type': ' text/plain \\t', 'X-A': 'a'});
        h.append('content-type', 'x'); h.append('X-a', '\\tb'); h.set('CONTENT-TYPE', 'y ');
        console.log(JSON.stringify([...h]), h.get('Content-Type'), h.has('x-A'), h.get('x-a'))
        for (let i = 0; i < 2; i++) {
          for (const bad of ['bad name', 'ü', '']) { try { h.get(bad); console.log('accepted', bad) } catch (e) { console.log(e.name) } }
          for (const bad of ['a\\r\\nb', 'a\\0b']) { try { h.set('x-b', bad); console.log('accepted') } catch (e) { console.log(e.name) } }
        }
        console.log(JSON.stringify(new Headers({'X-Empty': '', 'X-Sp': '  ', 'X-In': 'a  b'}).raw()))
        """,
    )
    assert got == [
        '[["content-type","y"],["x-a","a, b"]] y true a, b',
        *["TypeError"] * 10,
        '{"x-empty":[""],"x-sp":[""],"x-in":["a  b"]}',
    ]


def test_libraries(rt: Runtime) -> None:
    got = logs(
        rt,
        """
        console.log(_.sortBy([3, 1, 2]).join(), _.get({a: {b: 1}}, 'a.b'), _.camelCase('API key'))
        console.log(moment.tz('2020-06-01T12:00:00Z', 'Europe/Paris').format('YYYY-MM-DD HH:mm Z'), moment.utc(0).toISOString())
        console.log(xml([{root: [{_attr: {id: 1}}, 'text']}]))
        const parsed = await xml2js.parseStringPromise('<a><b>1</b><b>2</b></a>');
        console.log(JSON.stringify(parsed), new xml2js.Builder({headless: true, renderOpts: {pretty: false}}).buildObject({r: {x: 1}}))
        console.log(uuidv5.uuidv5('fnbox.dev', uuidv5.DNS))
        console.log(libphonenumberjslib.libphonenumberjs.parsePhoneNumber('+14155552671').formatNational())
        const oauth = OAuth({consumer: {key: 'ck', secret: 'cs'}, signature_method: 'HMAC-SHA1', hash_function: (b, k) => crypto.createHmac('sha1', k).update(b).digest('base64')});
        console.log(typeof oauth.toHeader(oauth.authorize({url: 'https://api.test/x', method: 'GET'})).Authorization)
        console.log(zlib.zlib.inflateSync(zlib.zlib.deflateSync(Buffer.from('zip me'))).toString(), zlib.zlib.gunzipSync(zlib.zlib.gzipSync('g')).toString())
        console.log(typeof fetchretrylib.fetchretry(fetch))
        """,
    )
    assert got == [
        "1,2,3 1 apiKey",
        "2020-06-01 14:00 +02:00 1970-01-01T00:00:00.000Z",
        '<root id="1">text</root>',
        '{"a":{"b":["1","2"]}} <r><x>1</x></r>',
        str(uuid.uuid5(uuid.NAMESPACE_DNS, "fnbox.dev")),
        "(415) 555-2671",
        "string",
        "zip me g",
        "function",
    ]


def test_cache_load_and_delete(rt: Runtime) -> None:
    rt.loaded(
        """
        let calls = 0;
        async function onTrack(event) {
          if (event.event === 'delete') { cache.delete('k'); return }
          const ttl = event.event === 'short' ? 1 : -1;
          const v = await cache.load('k', ttl, async () => { calls += 1; return 'v' + calls });
          if (event.event === 'short') await new Promise(r => setTimeout(r, 5));
          console.log(v, calls);
        }
        """
    )
    seq = ["keep", "keep", "delete", "keep", "keep"]
    assert [rt.event({"type": "track", "event": e})["logs"] for e in seq] == [
        ["v1 1"],
        ["v1 1"],
        [],
        ["v2 2"],
        ["v2 2"],
    ]
    rt.event({"type": "track", "event": "delete"})
    assert rt.event({"type": "track", "event": "short"})["logs"] == ["v3 3"]
    assert rt.event({"type": "track", "event": "short"})["logs"] == ["v4 4"]


def test_cache_load_failure_is_not_cached(rt: Runtime) -> None:
    body = """
    let n = 0;
    for (let i = 0; i < 2; i++) { try { await cache.load('e', 1000, async () => { n++; throw new Error('x') }) } catch (e) {} }
    const [a, b] = await Promise.all([cache.load('c', 1000, async () => ++n), cache.load('c', 1000, async () => ++n)]);
    console.log(n, a, b)
    """
    assert logs(rt, body) == ["3 3 3"]


def test_timers(rt: Runtime) -> None:
    got = logs(
        rt,
        """
        const seen = [];
        await new Promise((resolve) => {
          let n = 0;
          const id = setInterval(() => { n++; seen.push('i' + n); if (n === 3) { clearInterval(id); resolve(); } }, 1);
        });
        const t = setTimeout(() => seen.push('cleared'), 1); clearTimeout(t);
        await new Promise(r => setTimeout(r, 5, 'arg'));
        queueMicrotask(() => seen.push('micro')); await null;
        console.log(seen.join())
        """,
    )
    assert got == ["i1,i2,i3,micro"]
