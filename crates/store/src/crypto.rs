//! Credentials at rest: AES-256-GCM under the master key from the environment, stored as
//! nonce || ciphertext.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "no master key is configured: set SWITCHBOARD__SECURITY__MASTER_KEY to 32 random bytes in base64"
    )]
    NoKey,
    #[error("the master key must be 32 bytes in base64")]
    BadKey,
    #[error("a stored credential cannot be decrypted with this master key")]
    Decrypt,
}

#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

const NONCE: usize = 12;

impl Cipher {
    pub fn from_base64(key: &str) -> Result<Self, CryptoError> {
        if key.trim().is_empty() {
            return Err(CryptoError::NoKey);
        }
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        Ok(Self(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes))))
    }

    pub fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        let ct = self
            .0
            .encrypt(Nonce::from_slice(&nonce), plain)
            .unwrap_or_default();
        [nonce.as_slice(), &ct].concat()
    }

    pub fn decrypt(&self, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if blob.len() < NONCE {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = blob.split_at(NONCE);
        self.0
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| CryptoError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_tampering() {
        let c = Cipher::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let blob = c.encrypt(b"sk-secret");
        assert_ne!(&blob[NONCE..], b"sk-secret");
        assert_eq!(c.decrypt(&blob).unwrap(), b"sk-secret");
        let mut bad = blob.clone();
        bad[NONCE] ^= 1;
        assert_eq!(c.decrypt(&bad), Err(CryptoError::Decrypt));
        assert_eq!(Cipher::from_base64("").err(), Some(CryptoError::NoKey));
        assert_eq!(
            Cipher::from_base64("c2hvcnQ=").err(),
            Some(CryptoError::BadKey)
        );
    }
}
