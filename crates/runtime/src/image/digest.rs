//! sha256 digests, the names of everything in the store, and a reader that computes one on
//! the way through, so content is verified while it is copied rather than read twice.

use anyhow::bail;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

/// The hex part of a `sha256:<64 lowercase hex>` digest. Anything else is refused: the hex
/// becomes a file name, so it must never hold a `/` or `..`.
pub(crate) fn hex_of(digest: &str) -> anyhow::Result<&str> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        bail!("unsupported digest {digest:?}: only sha256:<hex> digests are supported");
    };
    if !is_sha256_hex(hex) {
        bail!("malformed digest {digest:?}: expected sha256: and 64 lowercase hex digits");
    }
    Ok(hex)
}

/// Whether `hex` is 64 lowercase hex digits, the form of a sha256 digest's hex part.
fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The hex sha256 of some bytes (the tests build their digests with it).
#[cfg(test)]
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hashes (and counts) everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), len: 0 }
    }

    /// Reads what is left (a tar reader stops at the end-of-archive marker, but the digest
    /// covers the padding after it too), then gives the hex digest and the length.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((hex::encode(self.hasher.finalize()), self.len))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_form_of_digests() {
        let good = format!("sha256:{}", "a1".repeat(32));
        assert_eq!(hex_of(&good).unwrap(), "a1".repeat(32));
        for bad in ["sha256:abc", "md5:00", &format!("sha256:{}", "A1".repeat(32)), "sha256:../../../../etc"] {
            assert!(hex_of(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn hashes_everything_read_through_it() {
        let mut reader = HashingReader::new(&b"hello world"[..]);
        let mut first = [0u8; 5];
        reader.read_exact(&mut first).unwrap();
        let (hex, len) = reader.finish().unwrap();
        assert_eq!(hex, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(len, 11);
        assert_eq!(sha256_hex(b"hello world"), hex);
    }
}
