//! Verification against the committed fixture keys: algorithms, key selection, claim checks,
//! claim mapping and the cache.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use rescind_jwt::testing::{
    self, EC_PEM, ED_PEM, HS256_SECRET, JWKS, ROGUE_RSA_PEM, RSA_PEM, sign_with_fixture, unsigned,
};
use rescind_jwt::{Algorithm, JwkSet, JwtConfig, Rejection, Verifier};
use serde_json::{Value, json};

/// A fixed "now": 2030-01-01T00:00:00Z, in seconds and in milliseconds.
const NOW: u64 = 1_893_456_000;
const NOW_MS: u64 = NOW * 1000;

fn claims() -> Value {
    json!({"iss": "https://idp.test", "sub": "alice", "jti": "t-1", "iat": NOW - 10, "exp": NOW + 600})
}

fn verifier() -> Verifier {
    Verifier::new(&testing::jwks_config()).unwrap()
}

fn with(cfg: impl FnOnce(&mut JwtConfig)) -> Verifier {
    let mut c = testing::jwks_config();
    cfg(&mut c);
    Verifier::new(&c).unwrap()
}

#[test]
fn rs256_es256_eddsa_verify() {
    let v = verifier();
    assert_eq!(v.key_count(), 3);
    for (alg, kid, pem) in [
        (Algorithm::RS256, "rsa-1", RSA_PEM),
        (Algorithm::ES256, "ec-1", EC_PEM),
        (Algorithm::EdDSA, "ed-1", ED_PEM),
    ] {
        let token = sign_with_fixture(alg, kid, pem, &claims());
        let c = v
            .verify(&token, NOW_MS)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(c.issuer, "https://idp.test");
        assert_eq!(c.subject.as_deref(), Some("alice"));
        assert_eq!(c.token_id.as_deref(), Some("t-1"));
        assert_eq!(c.key_id.as_deref(), Some(kid));
        assert_eq!(c.expires_at_ms, Some((NOW + 600) * 1000));
        assert_eq!(c.raw.get("sub"), Some(&json!("alice")));
    }
}

#[test]
fn kid_selection_and_unknown_signers() {
    let v = verifier();
    let rogue_named = sign_with_fixture(Algorithm::RS256, "rsa-1", ROGUE_RSA_PEM, &claims());
    assert_eq!(v.verify(&rogue_named, NOW_MS), Err(Rejection::BadSignature));
    let rogue_kid = sign_with_fixture(Algorithm::RS256, "rogue", ROGUE_RSA_PEM, &claims());
    assert_eq!(v.verify(&rogue_kid, NOW_MS), Err(Rejection::UnknownKey));
    // No kid: the only RSA key is tried.
    let no_kid = sign_with_fixture(Algorithm::RS256, "", RSA_PEM, &claims());
    let c = v.verify(&no_kid, NOW_MS).unwrap();
    assert_eq!(c.key_id, None);
    let rogue_no_kid = sign_with_fixture(Algorithm::RS256, "", ROGUE_RSA_PEM, &claims());
    assert_eq!(v.verify(&rogue_no_kid, NOW_MS), Err(Rejection::BadSignature));
    // A key used with another algorithm than its own.
    let wrong_alg = sign_with_fixture(Algorithm::RS384, "rsa-1", RSA_PEM, &claims());
    assert_eq!(
        v.verify(&wrong_alg, NOW_MS),
        Err(Rejection::AlgorithmNotAllowed("RS384".into()))
    );
    // A kid naming a key of another type.
    let ec_as_ed = sign_with_fixture(Algorithm::ES256, "ed-1", EC_PEM, &claims());
    assert!(matches!(
        v.verify(&ec_as_ed, NOW_MS),
        Err(Rejection::AlgorithmNotAllowed(_))
    ));
}

#[test]
fn no_kid_with_two_candidate_keys_is_unknown() {
    let v = verifier();
    let mut set: JwkSet = serde_json::from_slice(&testing::read_fixture(JWKS)).unwrap();
    let mut second = set.keys[2].clone();
    second.common.key_id = Some("ed-1b".into());
    set.keys.push(second);
    assert_eq!(v.replace_keys(set).unwrap(), 4);
    let no_kid = sign_with_fixture(Algorithm::EdDSA, "", ED_PEM, &claims());
    assert_eq!(v.verify(&no_kid, NOW_MS), Err(Rejection::UnknownKey));
    let named = sign_with_fixture(Algorithm::EdDSA, "ed-1b", ED_PEM, &claims());
    assert!(v.verify(&named, NOW_MS).is_ok());
}

#[test]
fn alg_none_refused_in_any_case() {
    let v = verifier();
    let hs = Verifier::new(&testing::hs256_config()).unwrap();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = unsigned(&json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"}), &claims());
        let rejection = Rejection::AlgorithmNotAllowed("none".into());
        assert_eq!(rejection.to_string(), "algorithm none not allowed");
        let want = Err(rejection);
        assert_eq!(v.verify(&token, NOW_MS), want);
        assert_eq!(hs.verify(&token, NOW_MS), want);
        assert_eq!(v.verify(&format!("{token}c2ln"), NOW_MS), want);
    }
    let odd = unsigned(&json!({"alg": "XYZ\"1"}), &claims());
    assert_eq!(
        v.verify(&odd, NOW_MS),
        Err(Rejection::AlgorithmNotAllowed("XYZ1".into()))
    );
}

#[test]
fn hs256_refused_while_asymmetric_keys_configured() {
    let v = verifier();
    // The classic confusion attack: HMAC keyed with the (public) JWKS bytes.
    let public = testing::read_fixture(JWKS);
    let forged = testing::sign(Algorithm::HS256, "rsa-1", &public, &claims());
    assert_eq!(
        v.verify(&forged, NOW_MS),
        Err(Rejection::AlgorithmNotAllowed("HS256".into()))
    );
    let secret = testing::read_fixture(HS256_SECRET);
    let hs = testing::sign(Algorithm::HS256, "", &secret, &claims());
    assert_eq!(
        v.verify(&hs, NOW_MS),
        Err(Rejection::AlgorithmNotAllowed("HS256".into()))
    );
}

#[test]
fn hs256_accepted_with_only_a_secret() {
    let v = Verifier::new(&testing::hs256_config()).unwrap();
    assert_eq!(v.key_count(), 1);
    let secret = testing::read_fixture(HS256_SECRET);
    for kid in ["", "any-kid"] {
        let token = testing::sign(Algorithm::HS256, kid, &secret, &claims());
        assert_eq!(
            v.verify(&token, NOW_MS).unwrap().subject.as_deref(),
            Some("alice")
        );
    }
    let wrong = testing::sign(
        Algorithm::HS256,
        "",
        b"another-secret-of-at-least-32-bytes!",
        &claims(),
    );
    assert_eq!(v.verify(&wrong, NOW_MS), Err(Rejection::BadSignature));
    let hs512 = testing::sign(Algorithm::HS512, "", &secret, &claims());
    assert_eq!(
        v.verify(&hs512, NOW_MS),
        Err(Rejection::AlgorithmNotAllowed("HS512".into()))
    );
    let rsa = sign_with_fixture(Algorithm::RS256, "rsa-1", RSA_PEM, &claims());
    assert_eq!(
        v.verify(&rsa, NOW_MS),
        Err(Rejection::AlgorithmNotAllowed("RS256".into()))
    );
    assert!(v.replace_keys(JwkSet::default()).is_err());
}

#[test]
fn config_errors_name_fields() {
    let mut c = testing::hs256_config();
    c.jwks_file = Some(testing::fixture(JWKS));
    let e = Verifier::new(&c).unwrap_err().to_string();
    assert!(e.contains("hs256_secret_file") && e.contains("jwks_file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.secret");
    std::fs::write(&short, "too-short\n").unwrap();
    let c = JwtConfig {
        hs256_secret_file: Some(short),
        ..JwtConfig::default()
    };
    assert_eq!(Verifier::new(&c).unwrap_err().field(), "hs256_secret_file");
    let c = JwtConfig {
        jwks_file: Some(dir.path().join("missing.json")),
        ..JwtConfig::default()
    };
    let e = Verifier::new(&c).unwrap_err();
    assert_eq!(e.field(), "jwks_file");
    assert!(e.to_string().contains("missing.json"), "{e}");
}

#[test]
fn time_and_audience_and_issuer_checks() {
    let v = with(|c| {
        c.leeway = std::time::Duration::ZERO;
        c.issuers = vec!["https://idp.test".into()];
        c.audiences = vec!["api".into(), "gw".into()];
    });
    let tok = |extra: Value| {
        let mut c = claims();
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        sign_with_fixture(Algorithm::EdDSA, "ed-1", ED_PEM, &c)
    };
    assert!(v.verify(&tok(json!({"aud": "api"})), NOW_MS).is_ok());
    assert!(v.verify(&tok(json!({"aud": ["other", "gw"]})), NOW_MS).is_ok());
    assert_eq!(
        v.verify(&tok(json!({"aud": ["other"]})), NOW_MS),
        Err(Rejection::WrongAudience)
    );
    assert_eq!(
        v.verify(&tok(json!({"aud": "x"})), NOW_MS),
        Err(Rejection::WrongAudience)
    );
    assert_eq!(
        v.verify(&tok(json!({})), NOW_MS),
        Err(Rejection::MissingClaim("aud"))
    );
    assert_eq!(
        v.verify(&tok(json!({"aud": "api", "iss": "https://evil.test"})), NOW_MS),
        Err(Rejection::WrongIssuer)
    );
    assert_eq!(
        v.verify(&tok(json!({"aud": "api", "exp": NOW - 1})), NOW_MS),
        Err(Rejection::Expired)
    );
    assert_eq!(
        v.verify(&tok(json!({"aud": "api", "nbf": NOW + 5})), NOW_MS),
        Err(Rejection::NotYetValid)
    );
    assert!(v.verify(&tok(json!({"aud": "api", "nbf": NOW})), NOW_MS).is_ok());
}

#[test]
fn leeway_is_honoured() {
    let expired_20s = json!({"iss": "i", "exp": NOW - 20});
    let nbf_in_20s = json!({"iss": "i", "exp": NOW + 600, "nbf": NOW + 20});
    let default = verifier(); // 30 s
    let strict = with(|c| c.leeway = std::time::Duration::from_secs(10));
    for claims in [expired_20s, nbf_in_20s] {
        let token = sign_with_fixture(Algorithm::ES256, "ec-1", EC_PEM, &claims);
        assert!(default.verify(&token, NOW_MS).is_ok(), "{claims}");
        assert!(strict.verify(&token, NOW_MS).is_err(), "{claims}");
    }
}

#[test]
fn require_exp() {
    let token = sign_with_fixture(
        Algorithm::RS256,
        "rsa-1",
        RSA_PEM,
        &json!({"iss": "i", "sub": "s"}),
    );
    assert_eq!(
        verifier().verify(&token, NOW_MS),
        Err(Rejection::MissingClaim("exp"))
    );
    let lax = with(|c| c.require_exp = false);
    let c = lax.verify(&token, NOW_MS).unwrap();
    assert_eq!(c.expires_at_ms, None);
    assert_eq!(c.issued_at_ms, 0);
}

#[test]
fn claims_mapping() {
    let v = with(|c| {
        c.tenant_claim = Some("tenant_id".into());
        c.version_claim = Some("tv".into());
    });
    let base = json!({
        "iss": "https://idp.test", "sub": "alice", "jti": "t-9", "sid": "sess-1",
        "iat": NOW - 100, "nbf": NOW - 100, "exp": NOW + 100,
        "client_id": "cli", "azp": "party", "tenant_id": "acme", "tv": 3, "scope": "read"
    });
    let c = v
        .verify(
            &sign_with_fixture(Algorithm::EdDSA, "ed-1", ED_PEM, &base),
            NOW_MS,
        )
        .unwrap();
    assert_eq!(c.client_id.as_deref(), Some("cli"));
    assert_eq!(c.session_id.as_deref(), Some("sess-1"));
    assert_eq!(c.tenant.as_deref(), Some("acme"));
    assert_eq!(c.token_version, Some(3));
    assert_eq!(c.issued_at_ms, (NOW - 100) * 1000);
    assert_eq!(c.not_before_ms, Some((NOW - 100) * 1000));
    assert_eq!(c.key_id.as_deref(), Some("ed-1"));
    assert_eq!(c.raw.get("scope"), Some(&json!("read")));

    let mut azp = base.clone();
    let o = azp.as_object_mut().unwrap();
    o.remove("client_id");
    o.insert("tv".into(), json!("12"));
    o.insert("tenant_id".into(), json!(77));
    let c = v
        .verify(&sign_with_fixture(Algorithm::EdDSA, "ed-1", ED_PEM, &azp), NOW_MS)
        .unwrap();
    assert_eq!(c.client_id.as_deref(), Some("party"));
    assert_eq!(c.token_version, Some(12));
    assert_eq!(c.tenant.as_deref(), Some("77"));

    let mut bad = base.clone();
    bad.as_object_mut().unwrap().insert("tv".into(), json!("v3"));
    let bad = sign_with_fixture(Algorithm::EdDSA, "ed-1", ED_PEM, &bad);
    assert_eq!(v.verify(&bad, NOW_MS), Err(Rejection::InvalidClaim("version")));
}

#[test]
fn cache_hit_rechecks_time() {
    let v = with(|c| c.leeway = std::time::Duration::ZERO);
    let token = sign_with_fixture(Algorithm::RS256, "rsa-1", RSA_PEM, &claims());
    let first = v.verify(&token, NOW_MS).unwrap();
    assert_eq!(v.cached_tokens(), 1);
    let again = v.verify(&token, NOW_MS + 1000).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "second verification is a cache hit"
    );
    assert_eq!(v.verify(&token, (NOW + 600) * 1000), Err(Rejection::Expired));
    let nbf = json!({"iss": "i", "exp": NOW + 600, "nbf": NOW});
    let token = sign_with_fixture(Algorithm::RS256, "rsa-1", RSA_PEM, &nbf);
    v.verify(&token, NOW_MS).unwrap();
    assert_eq!(v.verify(&token, NOW_MS - 1000), Err(Rejection::NotYetValid));
}

#[test]
fn replace_keys_clears_cache_and_removed_key_stops_verifying() {
    let v = verifier();
    let rsa = sign_with_fixture(Algorithm::RS256, "rsa-1", RSA_PEM, &claims());
    let ec = sign_with_fixture(Algorithm::ES256, "ec-1", EC_PEM, &claims());
    v.verify(&rsa, NOW_MS).unwrap();
    v.verify(&ec, NOW_MS).unwrap();
    assert_eq!(v.cached_tokens(), 2);
    let mut set: JwkSet = serde_json::from_slice(&testing::read_fixture(JWKS)).unwrap();
    set.keys.retain(|k| k.common.key_id.as_deref() == Some("ec-1"));
    assert_eq!(v.replace_keys(set).unwrap(), 1);
    assert_eq!(v.cached_tokens(), 0);
    assert_eq!(v.verify(&rsa, NOW_MS), Err(Rejection::UnknownKey));
    assert!(v.verify(&ec, NOW_MS).is_ok());
    assert_eq!(v.replace_keys(JwkSet::default()).unwrap(), 0);
    assert_eq!(v.verify(&ec, NOW_MS), Err(Rejection::NoKeys));
}

#[test]
fn cache_disabled_still_verifies() {
    let v = with(|c| c.cache_entries = 0);
    let token = sign_with_fixture(Algorithm::EdDSA, "ed-1", ED_PEM, &claims());
    assert!(v.verify(&token, NOW_MS).is_ok());
    assert!(v.verify(&token, NOW_MS).is_ok());
    assert_eq!(v.cached_tokens(), 0);
}

#[test]
fn tampered_tokens_fail() {
    let v = verifier();
    let token = sign_with_fixture(Algorithm::EdDSA, "ed-1", ED_PEM, &claims());
    let (head, sig) = token.rsplit_once('.').unwrap();
    let (header, _) = head.split_once('.').unwrap();
    let other_payload = unsigned(
        &json!({}),
        &json!({"iss": "x", "sub": "mallory", "exp": NOW + 600}),
    );
    let other_payload = other_payload.split('.').nth(1).unwrap();
    let forged = format!("{header}.{other_payload}.{sig}");
    assert_eq!(v.verify(&forged, NOW_MS), Err(Rejection::BadSignature));
    assert_eq!(
        v.verify(&format!("{head}."), NOW_MS),
        Err(Rejection::BadSignature)
    );
    assert_eq!(v.verify(&format!("{token}.x"), NOW_MS), Err(Rejection::Malformed));
    assert_eq!(v.verify("", NOW_MS), Err(Rejection::Malformed));
    assert_eq!(v.verify(&"a".repeat(20_000), NOW_MS), Err(Rejection::Malformed));
}

#[test]
fn config_from_toml() {
    let c: JwtConfig = toml::from_str(
        r#"
        jwks_url = "https://idp.test/.well-known/jwks.json"
        issuers = ["https://idp.test"]
        leeway = "45s"
        cache_entries = 0
        tenant_claim = "tid"
        "#,
    )
    .unwrap();
    assert_eq!(c.leeway, std::time::Duration::from_secs(45));
    assert!(c.require_exp);
    assert_eq!(c.cache_entries, 0);
    assert!(toml::from_str::<JwtConfig>("jwks_fil = \"x\"").is_err());
}
