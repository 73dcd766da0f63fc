//! OAuth 2.1 resource-server mode end to end: JWTs signed with the fixed test keys
//! (`crates/vmcp-persona/tests/keys`), the issuer's JWKS served from 127.0.0.1 by the test, and
//! the real gateway checking signature, issuer, audience and expiry, mapping the
//! `vmcp_persona` claim to a persona that exists now, and never writing a token anywhere.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::*;

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "vmcp-test";

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../vmcp-persona/tests/keys/{name}.pem", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn encoding_key(name: &str) -> (EncodingKey, Algorithm) {
    let pem = key(name);
    if name.starts_with("ec") {
        (EncodingKey::from_ec_pem(&pem).unwrap(), Algorithm::ES256)
    } else {
        (EncodingKey::from_rsa_pem(&pem).unwrap(), Algorithm::RS256)
    }
}

/// The issuer's public keys: `rsa1` as `k1`, `ec1` as `e1` (`rsa2` is not the issuer's).
fn jwks() -> String {
    let keys = [("rsa1", "k1"), ("ec1", "e1")]
        .into_iter()
        .map(|(name, kid)| {
            let (k, alg) = encoding_key(name);
            let mut jwk = Jwk::from_encoding_key(&k, alg).unwrap();
            jwk.common.key_id = Some(kid.into());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

/// Serve `body` to every GET on a loopback port (the issuer's JWKS endpoint); the thread ends
/// with the test process.
fn serve_jwks(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/jwks.json")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A token signed with key `signer` but naming `kid`, with `claims` over sensible defaults.
fn token(signer: &str, kid: &str, claims: Value) -> String {
    let (k, alg) = encoding_key(signer);
    let mut all = json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now() + 600,
        "iat": now(), "vmcp_persona": "limited" });
    for (name, v) in claims.as_object().unwrap() {
        all[name] = v.clone();
    }
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &all, &k).unwrap()
}

/// POST one JSON-RPC message with `bearer`: (status, WWW-Authenticate, session id, body).
fn post(
    url: &str,
    bearer: &str,
    session: Option<&str>,
    body: &Value,
) -> (u16, String, Option<String>, String) {
    let auth = format!("Bearer {bearer}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(s) = session {
        headers.push(("Mcp-Session-Id", s));
    }
    let r = support::post(url, &headers, body);
    (r.status, r.www_authenticate.unwrap_or_default(), r.session, r.body)
}

/// Persona `limited` (server1 only), then the gateway on HTTP taking JWTs from [`ISSUER`],
/// whose keys a local JWKS endpoint serves.
fn start_with_limited(home: &Home) -> Server {
    for args in [&["persona", "create", "limited"][..], &["persona", "limited", "enable", "server1"]] {
        assert!(home.vmcp(args).status.success());
    }
    let jwks_url = serve_jwks(jwks());
    Server::start(
        home.path(),
        &[
            "--http",
            "127.0.0.1:0",
            "--oauth-issuer",
            ISSUER,
            "--oauth-jwks-url",
            &jwks_url,
            "--oauth-audience",
            AUDIENCE,
        ],
    )
}

fn initialize() -> Value {
    json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } })
}

fn tools_call(id: u64, name: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": name, "arguments": { "text": "via jwt" } } })
}

#[test]
fn oauth_tokens_map_to_personas_and_bad_ones_get_401_with_resource_metadata() {
    let home = Home::new()
        .server(json!({ "id": "server2", "command": FIXTURE, "args": ["--name", "server2"], "prefix": "" }))
        .fixture("server1", &[]);
    home.write_servers();
    let server = start_with_limited(&home);
    let (url, origin) = (server.url(), format!("http://{}", server.http.as_deref().unwrap()));

    // The protected resource metadata (RFC 9728) names the issuer.
    let mut meta = agent().get(format!("{origin}/.well-known/oauth-protected-resource")).call().unwrap();
    assert_eq!(meta.status().as_u16(), 200);
    let meta: Value = serde_json::from_str(&meta.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(meta["authorization_servers"], json!([ISSUER]), "{meta}");
    assert_eq!(meta["resource"], format!("{origin}/mcp"), "{meta}");

    // Valid tokens (RSA and EC) act as the persona their claim names.
    let good = token("rsa1", "k1", json!({}));
    let good_ec = token("ec1", "e1", json!({ "sub": "bob" }));
    for (what, jwt) in [("RS256", &good), ("ES256", &good_ec)] {
        let (status, _, sid, body) = post(&url, jwt, None, &initialize());
        assert_eq!(status, 200, "{what}: {body}");
        let sid = sid.expect("a session");
        let (_, _, _, ok) = post(&url, jwt, Some(&sid), &tools_call(1, "server1__echo"));
        assert!(ok.contains("via jwt"), "{what}: server1 works: {ok}");
        let (_, _, _, refused) = post(&url, jwt, Some(&sid), &tools_call(2, "echo"));
        assert!(refused.contains("\"code\":3002"), "{what}: server2 is not limited's: {refused}");
    }

    // Bad tokens: 401, `WWW-Authenticate: Bearer` with the error and where the metadata is.
    let expired = token("rsa1", "k1", json!({ "exp": now() - 3600, "iat": now() - 7200 }));
    let forged = token("rsa2", "k1", json!({}));
    let wrong_audience = token("rsa1", "k1", json!({ "aud": "another-api" }));
    let wrong_issuer = token("rsa1", "k1", json!({ "iss": "https://evil.test" }));
    let unknown_persona = token("rsa1", "k1", json!({ "vmcp_persona": "nobody" }));
    let unknown_key = token("rsa1", "k9", json!({}));
    let cases = [
        ("expired", &expired, "jwt_expired"),
        ("wrongly signed", &forged, "jwt_bad_signature"),
        ("wrong audience", &wrong_audience, "jwt_wrong_audience"),
        ("wrong issuer", &wrong_issuer, "jwt_wrong_issuer"),
        ("unknown persona", &unknown_persona, "unknown_persona"),
        ("signed by a key the JWKS lacks", &unknown_key, "jwt_unknown_key"),
    ];
    let metadata = format!("resource_metadata=\"{origin}/.well-known/oauth-protected-resource\"");
    for (what, jwt, _) in &cases {
        let (status, challenge, sid, body) = post(&url, jwt, None, &initialize());
        assert_eq!(status, 401, "{what}: {body}");
        assert!(sid.is_none());
        assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
        assert!(challenge.contains(&metadata), "{what}: {challenge}");
    }
    // The gateway writes the audit log from its own thread: a line follows its answer shortly.
    let read = || std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap_or_default();
    for (what, _, reason) in &cases {
        eventually(&format!("{what} is audited as {reason}"), || read().contains(reason));
    }
    eventually("denials name the JWT's subject", || read().contains("jwt:alice"));
    let audit = read();
    let log = server.stderr();
    for jwt in
        [&good, &good_ec, &expired, &forged, &wrong_audience, &wrong_issuer, &unknown_persona, &unknown_key]
    {
        // The signature part alone is enough to give a token away.
        let signature = jwt.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a token in the gateway log");
        assert!(!audit.contains(signature), "a token in the audit log");
    }
}

/// A persona deleted while the gateway runs: its JWTs, valid as tokens, are refused at the door
/// from the next snapshot on (401, audited as `unknown_persona`), also on a session they opened.
#[test]
fn a_jwt_for_a_persona_deleted_while_running_is_refused_from_then_on() {
    let home = Home::new().fixture("server1", &[]);
    home.write_servers();
    let server = start_with_limited(&home);
    let url = server.url();
    let jwt = token("rsa1", "k1", json!({}));
    let (status, _, sid, body) = post(&url, &jwt, None, &initialize());
    assert_eq!(status, 200, "{body}");
    let sid = sid.expect("a session");
    let (_, _, _, ok) = post(&url, &jwt, Some(&sid), &tools_call(1, "server1__echo"));
    assert!(ok.contains("via jwt"), "{ok}");

    let out = home.vmcp(&["persona", "delete", "limited"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Polls on the open session, so that no new sessions pile up meanwhile.
    eventually("the deleted persona's JWT is refused", || {
        post(&url, &jwt, Some(&sid), &tools_call(2, "server1__echo")).0 == 401
    });
    let (status, challenge, sid, body) = post(&url, &jwt, None, &initialize());
    assert_eq!(status, 401, "and cannot open a new session: {body}");
    assert!(sid.is_none());
    assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{challenge}");

    let read = || std::fs::read_to_string(home.path().join("logs/audit.log")).unwrap_or_default();
    eventually("the refusal is audited as unknown_persona", || {
        read().lines().any(|l| l.contains("\"auth_failed\"") && l.contains("\"reason\":\"unknown_persona\""))
    });
    let audit = read();
    let signature = jwt.rsplit('.').next().unwrap();
    assert!(!audit.contains(signature) && !server.stderr().contains(signature), "a token in a log");
}
