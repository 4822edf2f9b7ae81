//! No input makes `verify` (or the shape helpers) panic, and no mutation of a valid token is
//! accepted.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use rescind_jwt::testing::{self, ED_PEM, sign_with_fixture};
use rescind_jwt::{Algorithm, Verifier, bearer, looks_like_jwt};
use serde_json::json;

const NOW_MS: u64 = 1_893_456_000_000;

fn verifiers() -> &'static (Verifier, Verifier) {
    static V: OnceLock<(Verifier, Verifier)> = OnceLock::new();
    V.get_or_init(|| {
        (
            Verifier::new(&testing::jwks_config()).unwrap(),
            Verifier::new(&testing::hs256_config()).unwrap(),
        )
    })
}

fn check_all(token: &str) {
    let (jwks, hs) = verifiers();
    let _ = jwks.verify(token, NOW_MS);
    let _ = hs.verify(token, NOW_MS);
    let _ = looks_like_jwt(token);
    let _ = bearer(token);
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

prop_compose! {
    fn header()(alg in prop_oneof![
        Just("RS256".to_owned()), Just("ES256".to_owned()), Just("EdDSA".to_owned()),
        Just("HS256".to_owned()), Just("none".to_owned()), Just("PS512".to_owned()), ".*"
    ], kid in prop_oneof![
        Just("rsa-1".to_owned()), Just("ec-1".to_owned()), Just("ed-1".to_owned()), Just(String::new()), ".*"
    ]) -> String {
        let h = if kid.is_empty() { json!({"alg": alg}) } else { json!({"alg": alg, "kid": kid}) };
        b64(h.to_string().as_bytes())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(s in ".*") {
        check_all(&s);
    }

    #[test]
    fn arbitrary_three_segments(
        a in "[A-Za-z0-9_=+/-]{0,64}",
        b in "[A-Za-z0-9_=+/-]{0,64}",
        c in "[A-Za-z0-9_-]{0,400}",
    ) {
        check_all(&format!("{a}.{b}.{c}"));
    }

    #[test]
    fn valid_header_arbitrary_payload_and_signature(
        h in header(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        sig in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        check_all(&format!("{h}.{}.{}", b64(&payload), b64(&sig)));
    }

    #[test]
    fn valid_header_json_payload(h in header(), exp in any::<i64>(), iat in any::<f64>(), aud in ".*") {
        let payload = json!({"exp": exp, "iat": iat, "aud": aud, "iss": aud});
        let sig = b64(&[7u8; 256]);
        check_all(&format!("{h}.{}.{sig}", b64(payload.to_string().as_bytes())));
    }

    #[test]
    fn mutated_valid_token_is_refused(pos in any::<prop::sample::Index>(), byte in b'0'..b'z') {
        static TOKEN: OnceLock<String> = OnceLock::new();
        let token = TOKEN.get_or_init(|| sign_with_fixture(
            Algorithm::EdDSA, "ed-1", ED_PEM,
            &json!({"iss": "i", "sub": "s", "exp": NOW_MS / 1000 + 600}),
        ));
        let mut bytes = token.clone().into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte && bytes[i] != b'.');
        bytes[i] = byte;
        let mutated = String::from_utf8(bytes).unwrap();
        let (jwks, _) = verifiers();
        // base64url is decoded strictly (no non-canonical trailing bits) and Ed25519 is not
        // malleable: every one-character change is refused.
        prop_assert!(jwks.verify(&mutated, NOW_MS).is_err());
    }
}
