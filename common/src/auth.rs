//! The cluster's shared secret (`DFS_TOKEN`) and what is derived from it:
//! the bearer-token check of both servers' HTTP routes, the signatures the
//! naming server puts on the chunk ids it allocates, and the keyed MAC of
//! the storage nodes' peer handshake.
//!
//! A [`Token`] never shows itself: its `Debug` is redacted, and nothing
//! here puts it into an error message.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

type HmacSha256 = Hmac<Sha256>;

/// Header on `PUT /chunks/{chunk_id}` carrying the signature the naming
/// server gave the chunk id with its allocation.
pub const CHUNK_SIGNATURE_HEADER: &str = "x-dfs-chunk-signature";
/// Bytes of the HMAC kept in a chunk-id signature (sent as twice as many hex digits).
pub const CHUNK_SIGNATURE_LEN: usize = 16;
/// What a chunk-id signature is a MAC of, before the id: keeps it apart
/// from every other use of the token.
const CHUNK_ID_CONTEXT: &[u8] = b"dfs chunk id v1\0";

/// The bearer token a cluster runs with. Cheap to clone.
#[derive(Clone)]
pub struct Token(Arc<Secret>);

/// The token and its SHA-256, which every bearer check compares against.
struct Secret {
    token: Box<str>,
    digest: [u8; 32],
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The token of a `DFS_TOKEN` setting; `None` when unset or empty (a
    /// cluster without a token).
    pub fn from_setting(setting: Option<&str>) -> Option<Self> {
        setting.filter(|t| !t.is_empty()).map(|t| {
            Self(Arc::new(Secret {
                token: t.into(),
                digest: Sha256::digest(t.as_bytes()).into(),
            }))
        })
    }

    /// The token itself, to send as `Authorization: Bearer …`. Never log it.
    pub fn secret(&self) -> &str {
        &self.0.token
    }

    /// Whether an `Authorization` header value carries this token:
    /// `Bearer <token>`, the scheme in any case (RFC 9110), compared in
    /// constant time (digests of equal length, so not even the length of a
    /// guess shows in the timing).
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(bearer_credentials) else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        given.ct_eq(&self.0.digest).into()
    }

    /// HMAC-SHA256 keyed by the token over `context` ‖ `message`.
    pub fn mac(&self, context: &[u8], message: &[u8]) -> [u8; 32] {
        self.keyed(context, message).finalize().into_bytes().into()
    }

    /// Whether `tag` is [`Token::mac`] of `context` ‖ `message`, or its
    /// first `tag.len()` bytes (at least 16), compared in constant time.
    pub fn verify_mac(&self, context: &[u8], message: &[u8], tag: &[u8]) -> bool {
        tag.len() >= CHUNK_SIGNATURE_LEN
            && self
                .keyed(context, message)
                .verify_truncated_left(tag)
                .is_ok()
    }

    fn keyed(&self, context: &[u8], message: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.0.token.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(context);
        mac.update(message);
        mac
    }

    /// The signature of a chunk id the naming server allocated: the first
    /// [`CHUNK_SIGNATURE_LEN`] bytes of HMAC-SHA256(token, context ‖ id), in
    /// lower-case hex.
    pub fn sign_chunk_id(&self, chunk_id: &str) -> String {
        let mac = self.mac(CHUNK_ID_CONTEXT, chunk_id.as_bytes());
        mac[..CHUNK_SIGNATURE_LEN]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `signature` is [`Token::sign_chunk_id`] of `chunk_id`.
    pub fn verifies_chunk_id(&self, chunk_id: &str, signature: &str) -> bool {
        decode_hex(signature.trim()).is_some_and(|tag| {
            tag.len() == CHUNK_SIGNATURE_LEN
                && self.verify_mac(CHUNK_ID_CONTEXT, chunk_id.as_bytes(), &tag)
        })
    }
}

/// Adds the `bearer` security scheme (HTTP bearer authentication) to an
/// OpenAPI document; routes that need the token declare
/// `security(("bearer" = []))`. Both servers' specs use it.
#[derive(Debug, Clone, Copy)]
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The credentials of an `Authorization: Bearer <credentials>` value; the
/// scheme name is case-insensitive and may be followed by several spaces.
fn bearer_credentials(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    let credentials = rest.trim_start_matches([' ', '\t']);
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair)
                .ok()
                .filter(|d| d.len() == 2 && d.bytes().all(|b| b.is_ascii_hexdigit()))?;
            u8::from_str_radix(digits, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> Token {
        Token::from_setting(Some(text)).expect("a token")
    }

    #[test]
    fn empty_settings_mean_no_token() {
        assert!(Token::from_setting(None).is_none());
        assert!(Token::from_setting(Some("")).is_none());
        assert_eq!(format!("{:?}", token("s3cret")), "Token(<redacted>)");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_tokens_exact() {
        let t = token("s3cret");
        for ok in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "Bearer   s3cret ",
        ] {
            assert!(t.admits(Some(ok)), "{ok}");
        }
        for bad in [
            "Bearer s3cres",
            "Bearer s3cret!",
            "Bearer ",
            "Bearers3cret",
            "Basic s3cret",
            "s3cret",
            "",
        ] {
            assert!(!t.admits(Some(bad)), "{bad}");
        }
        assert!(!t.admits(None));
    }

    #[test]
    fn chunk_id_signatures() {
        let t = token("s3cret");
        let id = "0123456789abcdef-0123456789abcdef-0-deadbeef";
        let signature = t.sign_chunk_id(id);
        assert_eq!(signature.len(), 2 * CHUNK_SIGNATURE_LEN);
        assert!(t.verifies_chunk_id(id, &signature));
        assert!(t.verifies_chunk_id(id, &signature.to_uppercase()));
        assert!(!t.verifies_chunk_id(&id.replace("-0-", "-1-"), &signature));
        assert!(!token("other").verifies_chunk_id(id, &signature));
        assert!(!t.verifies_chunk_id(id, &signature[..30]));
        assert!(!t.verifies_chunk_id(id, ""));
        assert!(!t.verifies_chunk_id(id, "zz"));
        // HMAC-SHA256 test vector (RFC 4231, case 2), through `mac`.
        let jefe = token("Jefe");
        let mac = jefe.mac(b"what do ya want ", b"for nothing?");
        assert_eq!(
            mac[..4],
            [0x5b, 0xdc, 0xc1, 0x46],
            "HMAC-SHA256 of RFC 4231 case 2"
        );
        assert!(jefe.verify_mac(b"what do ya want ", b"for nothing?", &mac));
        assert!(!jefe.verify_mac(b"what do ya want ", b"for nothing!", &mac));
        assert!(!jefe.verify_mac(b"what do ya want ", b"for nothing?", &mac[..8]));
    }
}
