//! Gateways: real nginx with `auth_request` to `/v1/authz`, Envoy's
//! `ext_authz` through a client built from Envoy's own protos, and the JWT
//! rules behind both (JWKS reload, algorithms, no raw token in logs).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use rescind_jwt::Algorithm;
use rescind_jwt::testing::{self, HS256_SECRET, ROGUE_RSA_PEM};
use rescind_tests::NodeProc;
use rescind_tests::cluster::eventually;
use rescind_tests::gateway::{self, ISSUER, Nginx, Upstream, base, claims, es256, gateway_node, http};
use serde_json::json;

/// The tokens every adapter must refuse, by name.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let now = gateway::now_secs();
    let mut expired = claims("alice", "jti-expired");
    expired["exp"] = json!(now - 3600);
    let mut wrong_aud = claims("alice", "jti-aud");
    wrong_aud["aud"] = json!("someone-else");
    vec![
        ("expired", es256(&expired)),
        (
            "forged",
            testing::sign_with_fixture(
                Algorithm::RS256,
                "rsa-1",
                ROGUE_RSA_PEM,
                &claims("alice", "jti-forged"),
            ),
        ),
        (
            "alg none",
            testing::unsigned(
                &json!({"alg": "none", "typ": "JWT"}),
                &claims("alice", "jti-none"),
            ),
        ),
        ("wrong audience", es256(&wrong_aud)),
        ("malformed", "eyJhbGciOiJFUzI1NiJ9.not-json.c2ln".into()),
        (
            "HS256 beside asymmetric keys",
            testing::sign(
                Algorithm::HS256,
                "",
                &testing::read_fixture(HS256_SECRET),
                &claims("alice", "jti-hs"),
            ),
        ),
    ]
}

async fn revoke(node: &NodeProc, body: serde_json::Value) {
    let resp = http()
        .post(format!("{}/v1/revocations", base(node)))
        .bearer_auth(node.admin_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// A node whose staleness is unknown: its only seed is a listener the test
/// holds open and never answers (returned, to keep it open).
fn stale_node(dir: &std::path::Path) -> (NodeProc, std::net::TcpListener) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = silent.local_addr().unwrap().to_string();
    let node = gateway_node(
        dir,
        &[
            "--cluster-key",
            "gateway-test-cluster-key-0123",
            "--peer",
            &dead,
            "--advertise-addr",
            "127.0.0.1:1",
            "--trust-jwt-authn",
            "true",
        ],
    );
    (node, silent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_lets_valid_tokens_through_and_stops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let node = gateway_node(&dir.path().join("fresh"), &["--jwt-issuer", "https://other.test"]);
    let (stale, _silent) = stale_node(&dir.path().join("stale"));
    let upstream = Upstream::start().await;
    let nginx = Nginx::start(upstream.addr, node.http.unwrap(), stale.http.unwrap());
    let client = http();
    let get = |path: &str, token: &str| {
        client
            .get(format!("http://{}{path}", nginx.addr))
            .bearer_auth(token)
            .send()
    };

    // A valid JWT reaches the upstream, with the subject and the staleness.
    let valid = es256(&claims("alice", "jti-valid"));
    let resp = get("/orders", &valid).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("subject=alice"), "{text}");
    assert!(text.contains("staleness=0"), "{text}");
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 1);

    // Revoked by (iss, jti): 401 with the RFC 6750 challenge.
    let revoked = es256(&claims("bob", "jti-revoked"));
    assert_eq!(get("/", &revoked).await.unwrap().status(), 200);
    revoke(
        &node,
        json!({"token": {"token_id": "jti-revoked", "issuer": ISSUER}, "reason": "leaked"}),
    )
    .await;
    let resp = get("/", &revoked).await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains("error_description=\"token revoked\""),
        "{challenge}"
    );
    // The same jti under another issuer's namespace is untouched.
    let mut other = claims("bob", "jti-revoked");
    other["iss"] = json!("https://other.test");
    assert_eq!(
        get("/", &es256(&other)).await.unwrap().status(),
        200,
        "same jti, another issuer"
    );
    let resp = client
        .post(format!("{}/v1/check", base(&node)))
        .json(&json!({"token_id": "jti-revoked", "issuer": "https://other.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["revoked"], false);

    // A subject cutoff stops every earlier token of the subject.
    let carol = es256(&claims("carol", "jti-carol"));
    assert_eq!(get("/", &carol).await.unwrap().status(), 200);
    revoke(
        &node,
        json!({"cutoff": {"principal_kind": "SUBJECT", "principal_id": "carol", "issuer": ISSUER}}),
    )
    .await;
    assert_eq!(get("/", &carol).await.unwrap().status(), 401);

    let before = upstream.hits.load(Ordering::SeqCst);
    for (what, token) in bad_tokens() {
        let resp = get("/", &token).await.unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        assert!(resp.headers().contains_key("www-authenticate"), "{what}");
    }
    let resp = client
        .get(format!("http://{}/", nginx.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "no token at all");
    assert_eq!(
        upstream.hits.load(Ordering::SeqCst),
        before,
        "no bad token reached the upstream"
    );

    // Fail closed: the node cannot vouch for its state, so even a valid token
    // is stopped (nginx turns the 503 of its auth subrequest into a 500).
    let resp = get("/stale/x", &valid).await.unwrap();
    assert!(resp.status().is_server_error(), "{}", resp.status());
    assert_eq!(upstream.hits.load(Ordering::SeqCst), before);
    let direct = client
        .get(format!("{}/v1/authz", base(&stale)))
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 503);
    assert_eq!(direct.headers()["x-rescind-staleness-ms"], "unknown");
    let open = client
        .get(format!("{}/v1/authz?on_stale=open", base(&stale)))
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200, "a route may fail open");
    assert_eq!(open.headers()["x-rescind-stale"], "true");
}

fn envoy_check(token: Option<&str>, extensions: &[(&str, &str)]) -> CheckRequest {
    let mut headers = HashMap::from([(":path".to_string(), "/orders".to_string())]);
    if let Some(t) = token {
        headers.insert("authorization".into(), format!("Bearer {t}"));
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/orders".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: extensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
    }
}

/// (allowed, HTTP status of a denial, headers of the answer).
fn verdict(r: &CheckResponse) -> (bool, i32, HashMap<String, String>) {
    let code = r.status.as_ref().map_or(-1, |s| s.code);
    let headers = |h: &[envoy_types::pb::envoy::config::core::v3::HeaderValueOption]| {
        h.iter()
            .filter_map(|o| o.header.as_ref())
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect()
    };
    match &r.http_response {
        Some(HttpResponse::OkResponse(ok)) => (code == 0, 200, headers(&ok.headers)),
        Some(HttpResponse::DeniedResponse(d)) => (
            false,
            d.status.as_ref().map_or(403, |s| s.code),
            headers(&d.headers),
        ),
        _ => (false, 0, HashMap::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_ext_authz_allows_or_denies_with_401() {
    let dir = tempfile::tempdir().unwrap();
    let node = gateway_node(&dir.path().join("fresh"), &["--trust-jwt-authn", "true"]);
    let (stale, _silent) = stale_node(&dir.path().join("stale"));
    let mut envoy = AuthorizationClient::connect(format!("http://{}", node.addr))
        .await
        .unwrap();
    let mut raw = envoy.clone();
    let mut check = async |req: CheckRequest| verdict(&envoy.check(req).await.unwrap().into_inner());

    let valid = es256(&claims("alice", "jti-env-valid"));
    let mut spoofed = envoy_check(Some(&valid), &[]);
    let http_req = spoofed
        .attributes
        .as_mut()
        .unwrap()
        .request
        .as_mut()
        .unwrap()
        .http
        .as_mut()
        .unwrap();
    http_req
        .headers
        .insert("x-rescind-tenant".into(), "victim".into());
    let answer = raw.check(spoofed).await.unwrap().into_inner();
    let (ok, _, headers) = verdict(&answer);
    assert!(ok);
    assert_eq!(headers["x-rescind-subject"], "alice");
    assert_eq!(headers["x-rescind-staleness-ms"], "0");
    match &answer.http_response {
        Some(HttpResponse::OkResponse(r)) => assert!(
            r.headers_to_remove.iter().any(|h| h == "x-rescind-tenant"),
            "a client's own identity header is removed: {:?}",
            r.headers_to_remove
        ),
        other => panic!("{other:?}"),
    }

    let revoked = es256(&claims("bob", "jti-env-revoked"));
    revoke(
        &node,
        json!({"token": {"token_id": "jti-env-revoked", "issuer": ISSUER}}),
    )
    .await;
    let (ok, status, headers) = check(envoy_check(Some(&revoked), &[])).await;
    assert!(!ok);
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"rescind\", error=\"invalid_token\", error_description=\"token revoked\""
    );

    let carol = es256(&claims("carol", "jti-env-carol"));
    revoke(
        &node,
        json!({"cutoff": {"principal_kind": "SUBJECT", "principal_id": "carol", "issuer": ISSUER}}),
    )
    .await;
    assert_eq!(check(envoy_check(Some(&carol), &[])).await.1, 401);
    for (what, token) in bad_tokens() {
        let (ok, status, headers) = check(envoy_check(Some(&token), &[])).await;
        assert!(!ok && status == 401, "{what}");
        assert!(headers.contains_key("www-authenticate"), "{what}");
    }
    assert_eq!(check(envoy_check(None, &[])).await.1, 401, "no token");

    // The payload Envoy's jwt_authn filter verified, when no header is passed.
    use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.into())),
    };
    let n = |v: u64| Value {
        kind: Some(Kind::NumberValue(v as f64)),
    };
    let now = gateway::now_secs();
    let payload = Struct {
        fields: [
            ("iss".to_string(), s(ISSUER)),
            ("aud".to_string(), s(gateway::AUDIENCE)),
            ("sub".to_string(), s("dave")),
            ("jti".to_string(), s("jti-env-payload")),
            ("iat".to_string(), n(now - 5)),
            ("exp".to_string(), n(now + 600)),
        ]
        .into(),
    };
    let mut req = envoy_check(None, &[]);
    let attrs = req.attributes.as_mut().unwrap();
    attrs.metadata_context = Some(envoy_types::pb::envoy::config::core::v3::Metadata {
        filter_metadata: [(
            "envoy.filters.http.jwt_authn".to_string(),
            Struct {
                fields: [(
                    "jwt_payload".to_string(),
                    Value {
                        kind: Some(Kind::StructValue(payload)),
                    },
                )]
                .into(),
            },
        )]
        .into(),
        ..Default::default()
    });
    let (ok, _, headers) = check(req.clone()).await;
    assert!(ok, "a verified payload is checked like a token");
    assert_eq!(headers["x-rescind-subject"], "dave");
    revoke(
        &node,
        json!({"token": {"token_id": "jti-env-payload", "issuer": ISSUER}}),
    )
    .await;
    assert_eq!(check(req).await.1, 401);

    // Unknown staleness: closed by default, open when the route says so.
    let mut stale_envoy = AuthorizationClient::connect(format!("http://{}", stale.addr))
        .await
        .unwrap();
    let (ok, status, _) = verdict(
        &stale_envoy
            .check(envoy_check(Some(&valid), &[]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(!ok && status == 503, "fails closed by default");
    let open = envoy_check(Some(&valid), &[("rescind_on_stale", "open")]);
    let (ok, _, headers) = verdict(&stale_envoy.check(open).await.unwrap().into_inner());
    assert!(ok, "the route's context_extensions fail open");
    assert_eq!(headers["x-rescind-stale"], "true");
    assert_eq!(headers["x-rescind-staleness-ms"], "unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_keys_reload_without_restart_and_tokens_stay_out_of_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    std::fs::create_dir_all(dir.path().join("n")).unwrap();
    let jwks = gateway::jwks_copy(&dir.path().join("n"));
    let node = {
        let clients = dir.path().join("clients");
        std::fs::write(
            &clients,
            format!("{}:{}\n", gateway::CLIENT_ID, gateway::CLIENT_SECRET),
        )
        .unwrap();
        NodeProc::start_logging(
            &dir.path().join("data"),
            &[
                "--jwks-file",
                jwks.to_str().unwrap(),
                "--jwt-refresh-interval",
                "100ms",
                "--oauth-clients-file",
                clients.to_str().unwrap(),
                "--log",
                "debug",
            ],
            Some(&log),
        )
    };
    let client = http();
    let authz = async |token: &str| {
        client
            .get(format!("{}/v1/authz", base(&node)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // RS256, ES256 and EdDSA verify; HS256 is refused beside asymmetric keys.
    let c = claims("erin", "jti-algs");
    let tokens = [gateway::rs256(&c), es256(&c), gateway::eddsa(&c)];
    for t in &tokens {
        assert_eq!(authz(t).await, 200);
    }
    let hs = testing::sign(Algorithm::HS256, "", &testing::read_fixture(HS256_SECRET), &c);
    assert_eq!(authz(&hs).await, 401);

    // A new kid added to the JWKS file is used without a restart.
    let ed2 = testing::sign_with_fixture(Algorithm::EdDSA, "ed-2", testing::ED2_PEM, &c);
    assert_eq!(authz(&ed2).await, 401, "unknown kid");
    let mut set: serde_json::Value = serde_json::from_slice(&std::fs::read(&jwks).unwrap()).unwrap();
    let key: serde_json::Value = serde_json::from_slice(&testing::read_fixture(testing::ED2_JWK)).unwrap();
    set["keys"].as_array_mut().unwrap().push(key);
    std::fs::write(&jwks, serde_json::to_vec(&set).unwrap()).unwrap();
    eventually("the new kid to verify", Duration::from_secs(20), || async {
        (authz(&ed2).await == 200).then_some(())
    })
    .await;

    // Introspection and revocation see the tokens too; then no log line
    // holds a token, or even its signature.
    let form = [("token", tokens[1].as_str())];
    let oauth = async |path: &str| {
        client
            .post(format!("{}{path}", base(&node)))
            .basic_auth(gateway::CLIENT_ID, Some(gateway::CLIENT_SECRET))
            .form(&form)
            .send()
            .await
            .unwrap()
    };
    let r: serde_json::Value = oauth("/oauth2/introspect").await.json().await.unwrap();
    assert_eq!(r["active"], true);
    assert_eq!(oauth("/oauth2/revoke").await.status(), 200);
    let r: serde_json::Value = oauth("/oauth2/introspect").await.json().await.unwrap();
    assert_eq!(r, json!({"active": false}));
    assert_eq!(authz(&tokens[1]).await, 401);
    drop(node);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("DEBUG"), "debug logging was on");
    for t in tokens.iter().chain([&hs, &ed2]) {
        let signature = t.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(t.as_str()) && !logs.contains(signature),
            "a raw token reached the logs"
        );
    }
}
