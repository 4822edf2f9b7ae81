//! The HTTP API: the JSON endpoints mirror gRPC, RFC 7009 and RFC 7662 as
//! their text says, and bad input on every endpoint gets a named 4xx.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rescind_tests::gateway::{
    self, CLIENT_ID, CLIENT_SECRET, ISSUER, base, claims, es256, gateway_node, http,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_endpoints_mirror_the_grpc_messages() {
    let dir = tempfile::tempdir().unwrap();
    let node = gateway_node(dir.path(), &[]);
    let c = http();
    let url = |p: &str| format!("{}{p}", base(&node));
    let admin = node.admin_token();

    // Writes need the admin token.
    let body = json!({"token": {"token_id": "t-1", "expires_at_ms": 0}, "reason": "test"});
    let r = c.post(url("/v1/revocations")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = c
        .post(url("/v1/revocations"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["already_revoked"], false);
    assert_eq!(out["seq"], 1);
    let token = out["consistency_token"].as_str().unwrap().to_owned();

    // A check with the consistency token, and the answer's shape.
    let r: Value = c
        .post(url("/v1/check"))
        .json(&json!({"token_id": "t-1", "consistency_token": token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["revoked"], true);
    assert_eq!(r["reason"], "REASON_TOKEN_ID");
    assert!(r["node_id"].as_str().unwrap().contains('#'));
    // A check that names nothing is refused, naming the field.
    let r = c.post(url("/v1/check")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["field"], "token_id");

    // Raise the version and leave the time: a new-version token issued just
    // before stays valid, an old-version one is revoked.
    let cutoff = json!({"cutoff": {"principal_kind": "subject", "principal_id": "alice", "min_version": 3, "version_only": true}});
    let r = c
        .post(url("/v1/revocations"))
        .bearer_auth(&admin)
        .json(&cutoff)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let now = gateway::now_secs() * 1000;
    for (version, revoked) in [(3, false), (2, true)] {
        let r: Value = c
            .post(url("/v1/check"))
            .json(&json!({"subject": "alice", "issued_at_ms": now - 1000, "token_version": version}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["revoked"], revoked, "version {version}");
    }

    // A batch: one durable write, answered in order; a repeat writes nothing.
    let batch = json!({"revocations": [
        {"token": {"token_id": "b-1"}}, {"token": {"token_id": "b-2", "issuer": ISSUER}}, {"token": {"token_id": "t-1"}}
    ]});
    let r: Value = c
        .post(url("/v1/revocations:batch"))
        .bearer_auth(&admin)
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["revoked"].as_u64(), r["already_revoked"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(r["results"][2]["already_revoked"], true);
    let bad_entry = json!({"revocations": [{"token": {"token_id": "ok"}}, {"cutoff": {"principal_kind": "PLANET", "principal_id": "x"}}]});
    let r = c
        .post(url("/v1/revocations:batch"))
        .bearer_auth(&admin)
        .json(&bad_entry)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["field"],
        "revocations[1].cutoff.principal_kind"
    );

    let status: Value = c
        .get(url("/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["deny_entries"], 3);
    assert_eq!(status["cutoffs"], 1);
    let openapi: Value = c
        .get(url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.0.3");
    for path in [
        "/v1/revocations",
        "/v1/revocations:batch",
        "/v1/check",
        "/v1/status",
        "/v1/authz",
        "/oauth2/revoke",
        "/oauth2/introspect",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "{path} is documented");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_revocation_and_introspection_follow_rfc_7009_and_7662() {
    let dir = tempfile::tempdir().unwrap();
    let node = gateway_node(&dir.path().join("a"), &[]);
    let c = http();
    let url = |p: &str| format!("{}{p}", base(&node));
    let post = |path: &str, form: Vec<(&str, String)>| {
        c.post(url(path))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&form)
            .send()
    };
    let token = es256(&claims("alice", "jti-oauth"));

    // RFC 7662: a valid token is active, with its claims.
    let r = post("/oauth2/introspect", vec![("token", token.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(
        (v["sub"].as_str(), v["iss"].as_str(), v["jti"].as_str()),
        (Some("alice"), Some(ISSUER), Some("jti-oauth"))
    );
    assert!(v["exp"].is_u64());

    // RFC 7009: form-encoded, 200 once revoked; then inactive, exactly
    // `{"active": false}`, and forward-auth refuses it.
    let r = post(
        "/oauth2/revoke",
        vec![
            ("token", token.clone()),
            ("token_type_hint", "access_token".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = post("/oauth2/introspect", vec![("token", token.clone())])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"active": false}));
    let r = c.get(url("/v1/authz")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // 200 for tokens that are unknown or invalid, and an unknown hint is ignored.
    for junk in ["not-a-jwt-at-all-but-opaque", "eyJhbGciOiJub25lIn0.e30.", "a.b.c"] {
        let r = post(
            "/oauth2/revoke",
            vec![("token", junk.into()), ("token_type_hint", "banana".into())],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{junk}");
        let v: Value = post("/oauth2/introspect", vec![("token", junk.into())])
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v, json!({"active": false}), "{junk}");
    }
    // An opaque token is revoked by its keyed hash: forward-auth refuses it now.
    let opaque = "not-a-jwt-at-all-but-opaque";
    let r = c.get(url("/v1/authz")).bearer_auth(opaque).send().await.unwrap();
    assert_eq!(r.status(), 401, "revoked above as junk");
    let fresh_opaque = "another-opaque-token-987654";
    assert_eq!(
        c.get(url("/v1/authz"))
            .bearer_auth(fresh_opaque)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("/oauth2/revoke", vec![("token", fresh_opaque.into())])
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(url("/v1/authz"))
            .bearer_auth(fresh_opaque)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // 401 on bad client authentication, with a Basic challenge.
    for auth in [
        Some((CLIENT_ID, "wrong-secret-wrong")),
        Some(("nobody", CLIENT_SECRET)),
        None,
    ] {
        let mut req = c.post(url("/oauth2/revoke")).form(&[("token", token.as_str())]);
        if let Some((id, secret)) = auth {
            req = req.basic_auth(id, Some(secret));
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
        let r = c
            .post(url("/oauth2/introspect"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "introspection needs authorization too");
    }
    // The admin bearer token is accepted as the caller's credential.
    let r = c
        .post(url("/oauth2/revoke"))
        .bearer_auth(node.admin_token())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A client may revoke only its own tokens.
    let mut theirs = claims("zed", "jti-theirs");
    theirs["client_id"] = json!("another-client");
    let r = post("/oauth2/revoke", vec![("token", es256(&theirs))])
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized_client");

    // Without a token hash key, opaque tokens cannot be revoked: unsupported_token_type.
    let plain = rescind_tests::NodeProc::start(
        &dir.path().join("b"),
        &[
            "--jwks-file",
            rescind_jwt::testing::fixture("jwks.json").to_str().unwrap(),
        ],
    );
    let r = c
        .post(format!("{}/oauth2/revoke", base(&plain)))
        .bearer_auth(plain.admin_token())
        .form(&[("token", "some-opaque-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_token_type"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_endpoint_gets_a_named_4xx_and_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let node = gateway_node(dir.path(), &["--max-http-body", "65536"]);
    let c = http();
    let admin = node.admin_token();
    let json_endpoints = ["/v1/revocations", "/v1/revocations:batch", "/v1/check"];
    let form_endpoints = ["/oauth2/revoke", "/oauth2/introspect"];
    let send = |path: &str, content_type: &str, body: Vec<u8>| {
        let req = c
            .post(format!("{}{path}", base(&node)))
            .header("content-type", content_type)
            .body(body);
        if path.starts_with("/oauth2") {
            req.basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        } else {
            req.bearer_auth(&admin)
        }
        .send()
    };
    let all: Vec<(&str, &str)> = json_endpoints
        .iter()
        .map(|p| (*p, "application/json"))
        .chain(
            form_endpoints
                .iter()
                .map(|p| (*p, "application/x-www-form-urlencoded")),
        )
        .collect();
    for (path, ctype) in &all {
        let r = send(path, ctype, vec![b'a'; 70_000]).await.unwrap();
        assert_eq!(r.status(), 413, "{path}: oversized");
        let e: Value = r.json().await.unwrap();
        assert!(e["limit"].as_str().unwrap().contains("65536"), "{path}: {e}");
        let r = send(path, "text/plain", b"token=x".to_vec()).await.unwrap();
        assert_eq!(r.status(), 415, "{path}: wrong content type");
        assert_eq!(r.json::<Value>().await.unwrap()["field"], "content-type");
    }
    // Malformed JSON names the field.
    let cases: [(&str, &str, &str); 4] = [
        (
            "/v1/revocations",
            r#"{"token": {"token_id": 5}}"#,
            "token.token_id",
        ),
        (
            "/v1/revocations",
            r#"{"token": {"token_id": "x"}, "colour": 1}"#,
            "colour",
        ),
        (
            "/v1/check",
            r#"{"token_id": "x", "issued_at_ms": "soon"}"#,
            "issued_at_ms",
        ),
        (
            "/v1/revocations:batch",
            r#"{"revocations": [{"token": {"token_id": ""}}]}"#,
            "revocations[0].token.token_id",
        ),
    ];
    for (path, body, field) in cases {
        let r = send(path, "application/json", body.as_bytes().to_vec())
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        assert_eq!(r.json::<Value>().await.unwrap()["field"], field, "{path} {body}");
    }
    let r = send("/v1/check", "application/json", b"{\"token_id\": \"x\"".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "truncated JSON");
    // Malformed form data names the field.
    let r = send(
        "/oauth2/revoke",
        "application/x-www-form-urlencoded",
        b"token_type_hint=x".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        (e["error"].as_str(), e["field"].as_str()),
        (Some("invalid_request"), Some("token"))
    );

    // Random bytes, seeded and bounded, at every endpoint: a 4xx each time.
    let seed: u64 = rand::random();
    eprintln!("random-body seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for round in 0..60 {
        for (path, ctype) in &all {
            let len = rng.random_range(0..2048);
            let body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let r = send(path, ctype, body).await.unwrap();
            assert!(
                r.status().is_client_error(),
                "seed {seed} round {round} {path}: {}",
                r.status()
            );
        }
        let garbage: String = (0..rng.random_range(0..64))
            .map(|_| rng.random_range(b'!'..=b'~') as char)
            .collect();
        let r = c
            .get(format!("{}/v1/authz?x={garbage}", base(&node)))
            .bearer_auth(&garbage)
            .send()
            .await;
        if let Ok(r) = r {
            assert!(r.status().is_client_error(), "seed {seed}: authz {}", r.status());
        }
    }
    // Still serving.
    let r: Value = c
        .get(format!("{}/v1/status", base(&node)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["node_id"].is_string());
    assert_eq!(
        c.get(format!("{}/v1/authz", base(&node)))
            .bearer_auth(es256(&claims("ok", "jti-ok")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_bound_get_429() {
    let dir = tempfile::tempdir().unwrap();
    let node = gateway_node(dir.path(), &["--max-http-requests", "1"]);
    let c = http();
    // A check waiting for a revocation this node will never see holds the
    // only slot (until max_consistency_wait, 5 s, then 503).
    let future = {
        // Revoke once to learn a real token, then ask for an op far beyond it.
        let r: Value = c
            .post(format!("{}/v1/revocations", base(&node)))
            .bearer_auth(node.admin_token())
            .json(&json!({"token": {"token_id": "first"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["consistency_token"].as_str().unwrap().to_owned()
    };
    let token = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut t = rescind_core::ConsistencyToken::decode(&b64.decode(&future).unwrap()).unwrap();
        t.dots[0].1 += 1_000;
        b64.encode(t.encode())
    };
    let waiting = {
        let c = c.clone();
        let url = format!("{}/v1/check", base(&node));
        tokio::spawn(async move {
            // Bounded: should a status probe hold the slot first, try again.
            for _ in 0..100 {
                let status = c
                    .post(&url)
                    .json(&json!({"token_id": "x", "consistency_token": token}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                if status != 429 {
                    return status;
                }
            }
            panic!("the check never got the slot");
        })
    };
    let busy = rescind_tests::cluster::eventually(
        "a 429 while the slot is held",
        Duration::from_secs(4),
        || async {
            let r = c.get(format!("{}/v1/status", base(&node))).send().await.unwrap();
            (r.status() == 429).then_some(r)
        },
    )
    .await;
    assert!(busy.headers().contains_key("retry-after"));
    let e: Value = busy.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("in flight"), "{e}");
    assert_eq!(
        waiting.await.unwrap(),
        503,
        "the held check times out as unavailable"
    );
}
