//! SPDY/3 header blocks: a count, then each name and value with a 32-bit length, compressed
//! with zlib and SPDY's preset dictionary. Each direction of a connection is one zlib stream
//! for its whole life, every block ending with a sync flush, so the codec keeps its state.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The dictionary SPDY/3 primes both directions' zlib streams with (draft 3, section
/// 2.6.10.1): common header names and values, which makes small blocks smaller.
const DICTIONARY: &[u8] = include_bytes!("header_dictionary.bin");

/// A header block larger than this, decompressed, is refused.
const MAX_BLOCK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
#[error("malformed SPDY header block: {0}")]
pub struct HeaderError(String);

/// Reads the blocks one side of a connection sends.
pub struct HeaderDecoder(Decompress);

/// Writes the blocks this side sends.
pub struct HeaderEncoder(Compress);

impl HeaderDecoder {
    pub fn new() -> HeaderDecoder {
        HeaderDecoder(Decompress::new(true))
    }

    /// The names (lowercase, as SPDY requires) and values of a received block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, HeaderError> {
        let plain = self.inflate(block)?;
        parse(&plain)
    }

    fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, HeaderError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        loop {
            let before = self.0.total_in();
            let result = self.0.decompress_vec(input, &mut out, FlushDecompress::Sync);
            input = &input[(self.0.total_in() - before) as usize..];
            match result {
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0.set_dictionary(DICTIONARY).map_err(|e| HeaderError(e.to_string()))?;
                }
                Err(e) => return Err(HeaderError(e.to_string())),
                Ok(_) if input.is_empty() && out.len() < out.capacity() => return Ok(out),
                Ok(_) if out.len() >= MAX_BLOCK => return Err(HeaderError("too large".into())),
                Ok(_) if out.len() == out.capacity() => out.reserve(out.capacity()),
                Ok(_) => return Err(HeaderError("truncated".into())),
            }
        }
    }
}

impl HeaderEncoder {
    pub fn new() -> HeaderEncoder {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate.set_dictionary(DICTIONARY).expect("a fresh zlib stream takes a dictionary");
        HeaderEncoder(deflate)
    }

    /// Compresses a block of these headers (names are lowercased).
    pub fn encode(&mut self, headers: &[(&str, &str)]) -> Bytes {
        let mut plain = Vec::new();
        plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            plain.extend_from_slice(&(name.len() as u32).to_be_bytes());
            plain.extend_from_slice(name.as_bytes());
            plain.extend_from_slice(&(value.len() as u32).to_be_bytes());
            plain.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut input = &plain[..];
        loop {
            let before = self.0.total_in();
            self.0.compress_vec(input, &mut out, FlushCompress::Sync).expect("compressing into a Vec");
            input = &input[(self.0.total_in() - before) as usize..];
            // Done once everything is in and the flush had room to finish.
            if input.is_empty() && out.len() < out.capacity() {
                return Bytes::from(out);
            }
            out.reserve(out.capacity().max(64));
        }
    }
}

fn parse(mut plain: &[u8]) -> Result<Vec<(String, String)>, HeaderError> {
    fn take<'a>(plain: &mut &'a [u8], n: usize) -> Result<&'a [u8], HeaderError> {
        if plain.len() < n {
            return Err(HeaderError("truncated".into()));
        }
        let (head, rest) = plain.split_at(n);
        *plain = rest;
        Ok(head)
    }
    fn word(plain: &mut &[u8]) -> Result<usize, HeaderError> {
        let b = take(plain, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    let count = word(&mut plain)?;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = word(&mut plain)?;
        let name = String::from_utf8_lossy(take(&mut plain, n)?).into_owned();
        let n = word(&mut plain)?;
        let value = String::from_utf8_lossy(take(&mut plain, n)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_spdy3s() {
        assert_eq!(DICTIONARY.len(), 1423);
        let adler = DICTIONARY.iter().fold((1u32, 0u32), |(a, b), &byte| {
            let a = (a + byte as u32) % 65521;
            (a, (b + a) % 65521)
        });
        assert_eq!((adler.1 << 16) | adler.0, 0xe3c6_a7c2);
    }

    #[test]
    fn blocks_round_trip_across_one_zlib_stream() {
        let (mut client, mut server) = (HeaderEncoder::new(), HeaderDecoder::new());
        for request in ["0", "1", "2"] {
            let block = client.encode(&[("streamType", "data"), ("port", "8080"), ("requestID", request)]);
            let headers = server.decode(&block).unwrap();
            let expected = [("streamtype", "data"), ("port", "8080"), ("requestid", request)];
            assert_eq!(headers, expected.map(|(n, v)| (n.to_string(), v.to_string())));
        }
    }

    #[test]
    fn a_block_as_go_writes_it_decodes() {
        // {streamtype: error} compressed as Go's spdy framer does it, at level 9: the zlib
        // header 78 f9, the dictionary's id, the block, a sync flush.
        let mut deflate = Compress::new(Compression::best(), true);
        deflate.set_dictionary(DICTIONARY).unwrap();
        let plain = [&[0, 0, 0, 1, 0, 0, 0, 10][..], b"streamtype", &[0, 0, 0, 5], b"error"].concat();
        let mut block = Vec::with_capacity(256);
        deflate.compress_vec(&plain, &mut block, FlushCompress::Sync).unwrap();
        assert_eq!(&block[..6], [0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);
        assert_eq!(&block[block.len() - 4..], [0, 0, 0xff, 0xff]);
        let headers = HeaderDecoder::new().decode(&block).unwrap();
        assert_eq!(headers, [("streamtype".to_string(), "error".to_string())]);
        assert!(HeaderDecoder::new().decode(&block[..block.len() - 6]).is_err());
    }
}
