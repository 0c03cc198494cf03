//! Which chunk ids this node takes in a write (`PUT /chunks/{chunk_id}`,
//! `POST /chunks/{chunk_id}/replicate`): only ids in the form the naming
//! server makes, whatever the token, so an orphan sweep can always judge
//! them; and, when the cluster has a token, only ids whose signature from
//! the naming server checks out, so ids it never allocated cannot fill the
//! disk. Chunks pulled for a distribution assignment need no signature:
//! only a holder of the token can post one. A cluster without a token
//! trusts its network.

use dfs_common::auth::{CHUNK_SIGNATURE_HEADER, Token};
use dfs_common::ids::chunk_owner;
use thiserror::Error;

/// Why a chunk id is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AdmissionError {
    /// Not an id the naming server makes (a client's mistake: 400).
    #[error("chunk id {0:?} is not one the naming server makes (<file id>-<index>-<8 hex digits>)")]
    Malformed(String),
    /// No signature where the cluster's token requires one (403).
    #[error(
        "chunk {0} comes without a signature ({CHUNK_SIGNATURE_HEADER}); this node stores only chunk ids the naming server allocated"
    )]
    Unsigned(String),
    /// A signature the naming server did not make (403).
    #[error(
        "chunk {0} has a wrong signature; this node stores only chunk ids the naming server allocated"
    )]
    BadSignature(String),
}

/// The rule, with the cluster's token when it has one.
#[derive(Debug, Clone)]
pub struct Admission {
    token: Option<Token>,
}

impl Admission {
    /// Checks signatures against `token`; none required without one.
    pub fn new(token: Option<Token>) -> Self {
        Self { token }
    }

    /// Whether chunk `chunk_id`, written with `signature`, may be stored.
    pub fn check(&self, chunk_id: &str, signature: Option<&str>) -> Result<(), AdmissionError> {
        if chunk_owner(chunk_id).is_none() {
            return Err(AdmissionError::Malformed(chunk_id.to_owned()));
        }
        let Some(token) = &self.token else {
            return Ok(());
        };
        match signature {
            None => Err(AdmissionError::Unsigned(chunk_id.to_owned())),
            Some(signature) if token.verifies_chunk_id(chunk_id, signature) => Ok(()),
            Some(_) => Err(AdmissionError::BadSignature(chunk_id.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef-0123456789abcdef-3-0badf00d";

    #[test]
    fn ids_must_have_the_naming_servers_form() {
        let open = Admission::new(None);
        assert_eq!(open.check(ID, None), Ok(()));
        for bad in ["chunk", "0123456789abcdef-1-deadbeef", "a-b-c"] {
            assert_eq!(
                open.check(bad, None),
                Err(AdmissionError::Malformed(bad.to_owned()))
            );
        }
    }

    #[test]
    fn with_a_token_only_signed_ids_pass() {
        let token = Token::from_setting(Some("s3cret")).expect("token");
        let signature = token.sign_chunk_id(ID);
        let guarded = Admission::new(Some(token));
        assert_eq!(guarded.check(ID, Some(&signature)), Ok(()));
        assert_eq!(
            guarded.check(ID, None),
            Err(AdmissionError::Unsigned(ID.to_owned()))
        );
        let other = ID.replace("-3-", "-4-");
        assert_eq!(
            guarded.check(&other, Some(&signature)),
            Err(AdmissionError::BadSignature(other.clone()))
        );
        assert!(matches!(
            guarded.check("forged", Some(&signature)),
            Err(AdmissionError::Malformed(_))
        ));
    }
}
